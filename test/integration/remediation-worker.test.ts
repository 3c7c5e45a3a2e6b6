import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { FakeBreaker } from '../fakes/breaker.js';
import { firingWebhook } from '../helpers/webhook.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const auth = { authorization: 'Bearer test-webhook-token', 'content-type': 'application/json' };
let seq = 0;

/** A webhook with one firing alert for `alertname`, with a fresh fingerprint. */
function webhook(alertname: string, labels: Record<string, string> = {}) {
  const fingerprint = (0xd000000000000000n + BigInt(++seq)).toString(16);
  return { fingerprint, body: firingWebhook(alertname, fingerprint, { labels, startsAt: new Date(Date.now() - 60_000).toISOString() }) };
}

describe('remediation worker: retries, permanent errors, dry run, cooldown, reload, secrets', () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  const schema = () => `"${svc.config.DATABASE_SCHEMA}"`;
  const post = async (body: unknown) => {
    const r = await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
    assert.equal(r.status, 200, await r.text());
  };
  const finalRun = (fingerprint: string) =>
    eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT * FROM ${schema()}.runs WHERE fingerprint = $1`, [fingerprint]);
      return rows[0] && !['queued', 'running', 'retrying'].includes(rows[0].state) && rows[0];
    }, `final run for ${fingerprint}`, 20_000);

  before(async () => {
    breaker = await new FakeBreaker().start();
    const target = (name: string, tokenEnv: string) => breaker.targetYaml(name, tokenEnv);
    svc = await startTestService({
      // A Redis Cluster hash tag as prefix: every key remediator makes must carry it.
      env: { BREAKER_TOKEN: breaker.token, WRONG_TOKEN: 'not-the-token', QUEUE_PREFIX: `{wt-${process.pid}}` },
      rules: {
        'rules.yml': `
targets:${target('good', 'BREAKER_TOKEN')}${target('good-2', 'BREAKER_TOKEN')}${target('forbidden', 'WRONG_TOKEN')}${target('cooled', 'BREAKER_TOKEN')}
rules:
  - name: reset
    match: ['alertname="Reset"']
    action: breaker-reset
    target: good
    params: { poll_interval: 20ms, verify_timeout: 300ms }
    attempts: 2
    backoff: { type: fixed, delay: 50ms }
  - name: reset-forbidden
    match: ['alertname="Forbidden"']
    action: breaker-reset
    target: forbidden
    attempts: 5
    backoff: 50ms
  - name: reset-by-label
    match: ['alertname="ByLabel"']
    action: breaker-reset
    target: "{{ labels.service }}"
  - name: reset-dry
    match: ['alertname="Dry"']
    action: breaker-reset
    target: good-2
    dry_run: true
  - name: reset-cooldown
    match: ['alertname="Cool"']
    action: breaker-reset
    target: cooled
    params: { poll_interval: 20ms }
    cooldown: 1h
`,
      },
    });
  });
  after(async () => {
    await svc.close();
    await breaker.stop();
  });

  test('a transient failure (HTTP 500) is retried and the run succeeds on attempt 2', async () => {
    breaker.state = 'open';
    breaker.failNext = { status: 500, count: 1 };
    const { fingerprint, body } = webhook('Reset');
    await post(body);
    const run = await finalRun(fingerprint);
    assert.equal(run.state, 'succeeded');
    assert.equal(run.attempts, 2);
    const events = (await svc.pool.query(`SELECT state, attempt, message FROM ${schema()}.run_events WHERE job_id = $1 ORDER BY id`, [run.job_id])).rows;
    const retry = events.find((e) => e.state === 'retrying');
    assert.ok(retry, JSON.stringify(events));
    assert.match(retry.message, /HTTP 500/);
    assert.equal(events.at(-1).state, 'succeeded');
  });

  test('attempts exhausted: a breaker that will not close fails with the reason after 2 attempts', async () => {
    breaker.state = 'open';
    breaker.stuck = true;
    const resetsBefore = breaker.resets;
    try {
      const { fingerprint, body } = webhook('Reset');
      await post(body);
      const run = await finalRun(fingerprint);
      assert.equal(run.state, 'failed');
      assert.equal(run.attempts, 2);
      assert.equal(run.error_reason, 'verification_failed');
      assert.match(run.summary, /Failed after 2 attempts: breaker on good still open/);
      assert.equal(breaker.resets - resetsBefore, 2);
    } finally {
      breaker.stuck = false;
    }
  });

  test('a firing whose finished job was removed from Redis (retention) is not run again', async () => {
    breaker.state = 'open';
    const { fingerprint, body } = webhook('Reset');
    await post(body);
    const run = await finalRun(fingerprint);
    assert.equal(run.state, 'succeeded');
    const resets = breaker.resets;
    const queue = new Queue('remediations', { connection: { url: svc.config.REDIS_URL }, prefix: svc.config.QUEUE_PREFIX });
    try {
      await queue.remove(run.job_id);
      assert.equal(await queue.getJob(run.job_id), undefined);
      breaker.state = 'open';
      const r = await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
      assert.equal(r.status, 200);
      // The journal keeps the run after Redis forgot its job: the firing is recognised as handled, no job is made.
      await eventually(async () => {
        const { rows } = await svc.pool.query(`SELECT decision, reason FROM ${schema()}.decisions WHERE job_id = $1 ORDER BY id`, [run.job_id]);
        return rows.length === 2 && rows[1].decision === 'duplicate' && /already has a run \(succeeded\)/.test(rows[1].reason);
      }, 'second delivery recognised as a duplicate');
      assert.equal(await queue.getJob(run.job_id), undefined, 'no job made again');
      assert.equal(breaker.resets, resets);
      const after = (await svc.pool.query(`SELECT state, attempts FROM ${schema()}.runs WHERE job_id = $1`, [run.job_id])).rows[0];
      assert.deepEqual(after, { state: 'succeeded', attempts: 1 });
    } finally {
      await queue.close();
    }
  });

  test('a permanent failure (HTTP 401) fails at once, without retries', async () => {
    const callsBefore = breaker.calls.length;
    const { fingerprint, body } = webhook('Forbidden');
    await post(body);
    const run = await finalRun(fingerprint);
    assert.equal(run.state, 'failed');
    assert.equal(run.attempts, 1);
    assert.equal(run.error_reason, 'forbidden');
    assert.match(run.error_message, /HTTP 401/);
    assert.equal(breaker.calls.length - callsBefore, 1, 'one status read, no retry');
  });

  test('a label naming an undeclared target: refused in the audit, the run fails at once, nothing is called', async () => {
    const callsBefore = breaker.calls.length;
    const { fingerprint, body } = webhook('ByLabel', { service: `${breaker.url}/api/admin/reset-circuit-breaker` });
    const r = await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    const refused = await eventually(async () => (await svc.pool.query(`SELECT decision, reason FROM ${schema()}.decisions WHERE fingerprint = $1`, [fingerprint])).rows[0], 'decision audited');
    assert.equal(refused.decision, 'refused');
    assert.match(refused.reason, /is not declared/);
    const run = await finalRun(fingerprint);
    assert.equal(run.state, 'failed');
    assert.equal(run.error_reason, 'refused_target');
    assert.equal(run.attempts, 1);
    assert.equal(breaker.calls.length, callsBefore);
    const { fingerprint: fp2, body: b2 } = webhook('ByLabel', {});
    await post(b2);
    const run2 = await finalRun(fp2);
    assert.equal(run2.error_reason, 'bad_params');
    assert.match(run2.summary, /Not run: template: alert has no label service/);
  });

  test('a NUL or lone surrogate in a templated target never names a declared target, and the refusal is audited', async () => {
    const callsBefore = breaker.calls.length;
    for (const service of ['good\u0000', 'good\ud800']) {
      const { fingerprint, body } = webhook('ByLabel', { service });
      const r = await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
      assert.equal(r.status, 200);
      const run = await finalRun(fingerprint);
      const decision = await eventually(async () => (await svc.pool.query(`SELECT decision, reason FROM ${schema()}.decisions WHERE fingerprint = $1`, [fingerprint])).rows[0], 'decision audited');
      assert.equal(decision.decision, 'refused');
      assert.match(decision.reason, /good\\ufffd|good\ufffd/);
      assert.equal(run.state, 'failed');
      assert.equal(run.error_reason, 'refused_target');
      assert.equal(run.target, 'good\ufffd');
      const alertRow = await eventually(async () => (await svc.pool.query(`SELECT labels FROM ${schema()}.alerts WHERE fingerprint = $1`, [fingerprint])).rows[0], 'alert audited');
      assert.equal(alertRow.labels.service, 'good\ufffd');
    }
    assert.equal(breaker.calls.length, callsBefore, 'the target was never called');
  });

  test('a dry-run rule reads the state and mutates nothing', async () => {
    breaker.state = 'open';
    const resetsBefore = breaker.resets;
    const { fingerprint, body } = webhook('Dry');
    await post(body);
    const run = await finalRun(fingerprint);
    assert.equal(run.state, 'dry_run');
    assert.equal(run.dry_run, true);
    assert.match(run.summary, /Dry run: breaker on good-2 is open; would send POST/);
    assert.equal(breaker.resets, resetsBefore);
  });

  test('cooldown: a second alert on the same target within the cooldown is skipped with the reason', async () => {
    breaker.state = 'open';
    const first = webhook('Cool', { instance: 'a' });
    await post(first.body);
    assert.equal((await finalRun(first.fingerprint)).state, 'succeeded');
    breaker.state = 'open';
    const resetsBefore = breaker.resets;
    const second = webhook('Cool', { instance: 'b' });
    await post(second.body);
    const run = await finalRun(second.fingerprint);
    assert.equal(run.state, 'skipped');
    assert.match(run.summary, /^Cooldown: rule reset-cooldown already acted on cooled/);
    assert.equal(breaker.resets, resetsBefore);
  });

  test('a bad reload keeps the old rules; a good one replaces them', async () => {
    await svc.writeRules({ 'broken.yml': "rules:\n  - name: broken\n    match: ['a=\"1\"']\n    action: no-such-action\n" });
    assert.equal(await svc.service.reload('test'), false);
    assert.ok(svc.service.table().rules.some((r) => r.spec.name === 'reset'));
    assert.ok(!svc.service.table().rules.some((r) => r.spec.name === 'broken'));
    await svc.writeRules({ 'broken.yml': "rules:\n  - name: fixed\n    match: ['alertname=\"Fixed\"']\n    action: notify\n" });
    assert.equal(await svc.service.reload('test'), true);
    assert.ok(svc.service.table().rules.some((r) => r.spec.name === 'fixed'));
    const { fingerprint, body } = webhook('Fixed');
    await post(body);
    const run = await finalRun(fingerprint);
    assert.equal(run.state, 'notified');
  });

  test('secrets never reach the audit trail or the job data in Redis', async () => {
    const tables = ['alerts', 'decisions', 'runs', 'run_events'];
    for (const t of tables) {
      const { rows } = await svc.pool.query(`SELECT row_to_json(x)::text AS j FROM ${schema()}.${t} x`);
      assert.ok(rows.length > 0, `${t} has rows`);
      for (const r of rows) {
        assert.ok(!r.j.includes(breaker.token), `${t} leaks the breaker token`);
        assert.ok(!r.j.includes('not-the-token'), `${t} leaks a token`);
      }
    }
    const redis = new Redis(svc.config.REDIS_URL);
    try {
      const keys = await redis.keys(`${svc.config.QUEUE_PREFIX}:remediations:*`);
      let jobs = 0;
      for (const k of keys) {
        if ((await redis.type(k)) !== 'hash') continue;
        const data = await redis.hget(k, 'data');
        if (!data) continue;
        jobs++;
        assert.ok(!data.includes(breaker.token) && !data.includes('not-the-token'), `job ${k} leaks a token`);
      }
      assert.ok(jobs > 0);
      const all = await redis.keys('*');
      const ours = all.filter((k) => k.includes(`wt-${process.pid}`));
      assert.ok(ours.length > 0 && ours.every((k) => k.startsWith(`{wt-${process.pid}}:`)), `keys outside the hash tag: ${ours.filter((k) => !k.startsWith('{')).join(', ')}`);
    } finally {
      redis.disconnect();
    }
  });
});
