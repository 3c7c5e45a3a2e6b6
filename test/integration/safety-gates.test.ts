import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { runCli } from '../../src/cli.js';
import { SafetyState } from '../../src/redis/safety-state.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { startRemediator, type Child } from '../helpers/process.js';
import { dropPrefix, eventually, REDIS_URL, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/**
 * The safety gates with real Redis and PostgreSQL, across processes: this test process receives
 * webhooks (receiver role) and answers the admin API; separate remediator processes run the jobs.
 */
let breaker: FakeBreaker;
let pd: FakePagerDuty;
let receiver: TestService;
const workers: Child[] = [];
let seq = 0;
const ROUTING_KEY = 'R0UT1NGKEY00000000000000000000AB';

const rules = (b: FakeBreaker) => ({
  'rules.yml': `
targets:${b.targetYaml('svc-budget')}${b.targetYaml('svc-pause')}${b.targetYaml('svc-loop')}${b.targetYaml('svc-res')}
limits:
  actions:
    notify: { runs: 1, per: 1h }
rules:
  - name: budgeted
    match: ['alertname="Budget"']
    action: breaker-reset
    target: svc-budget
    params: { poll_interval: 20ms }
    budget: { runs: 2, per: 1h }
  - name: pausable
    match: ['alertname="Pause"']
    action: breaker-reset
    target: svc-pause
    params: { poll_interval: 20ms }
  - name: loopy
    match: ['alertname="Loop"']
    action: breaker-reset
    target: svc-loop
    params: { poll_interval: 20ms }
    verify_window: 1h
    quarantine_after: 2
  - name: late
    match: ['alertname="Late"']
    action: breaker-reset
    target: svc-res
    params: { poll_interval: 20ms }
  - name: late-anyway
    match: ['alertname="LateAnyway"']
    action: breaker-reset
    target: svc-res
    params: { poll_interval: 20ms }
    run_if_resolved: true
  - name: tell-a
    match: ['alertname="CapA"']
    action: notify
    notify: { pagerduty: false }
  - name: tell-b
    match: ['alertname="CapB"']
    action: notify
    notify: { pagerduty: false }
`,
});

const fp = () => (0xa000000000000000n + BigInt(++seq)).toString(16);
const schema = () => `"${receiver.config.DATABASE_SCHEMA}"`;
const admin = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
const io = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), env: sharedEnv() } };
};
const sharedEnv = (): Record<string, string> => ({
  PORT: '0', HOST: '127.0.0.1', RULES_DIR: receiver.rulesDir, REDIS_URL: receiver.config.REDIS_URL, DATABASE_URL: receiver.config.DATABASE_URL,
  DATABASE_SCHEMA: receiver.config.DATABASE_SCHEMA, QUEUE_PREFIX: receiver.config.QUEUE_PREFIX, BREAKER_TOKEN: breaker.token,
  PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pd.url, ADMIN_TOKEN: 'test-admin-token',
});
const startWorker = async () => {
  const w = await startRemediator({ ...sharedEnv(), REMEDIATOR_ROLE: 'worker', LOG_LEVEL: 'info' });
  workers.push(w);
  return w;
};

async function fire(alertname: string, fingerprint = fp(), startsAt = new Date(Date.now() - 1000).toISOString()) {
  const res = await postWebhook(receiver.url, firingWebhook(alertname, fingerprint, { startsAt }));
  assert.equal(res.status, 200, await res.text());
  return { fingerprint, startsAt };
}
const finalRun = (fingerprint: string, startsAt?: string) =>
  eventually(async () => {
    const { rows } = await receiver.pool.query(`SELECT * FROM ${schema()}.runs WHERE fingerprint = $1 AND ($2::timestamptz IS NULL OR starts_at = $2) ORDER BY queued_at DESC`, [fingerprint, startsAt ?? null]);
    return rows[0] && !['queued', 'running', 'retrying'].includes(rows[0].state) && rows[0];
  }, `final run of ${fingerprint}`, 30_000);

before(async () => {
  breaker = await new FakeBreaker().start();
  pd = await new FakePagerDuty().start();
  receiver = await startTestService({
    rules: rules(breaker),
    env: { BREAKER_TOKEN: breaker.token, REMEDIATOR_ROLE: 'receiver', PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pd.url },
  });
  await Promise.all([startWorker(), startWorker()]);
});
after(async () => {
  for (const w of workers) await w.stop();
  await receiver.close();
  await breaker.stop();
  await pd.stop();
});

describe('safety gates across processes', () => {
  test('budget: two processes race for the slots; exactly 2 of 6 runs act, the rest are skipped (budget), PagerDuty paged once', async () => {
    breaker.state = 'open';
    const fired = await Promise.all(Array.from({ length: 6 }, () => fire('Budget')));
    const runs = await Promise.all(fired.map((f) => finalRun(f.fingerprint)));
    const budget = runs.filter((r) => r.error_reason === 'budget');
    assert.equal(budget.length, 4, JSON.stringify(runs.map((r) => [r.state, r.error_reason])));
    assert.equal(runs.filter((r) => r.state !== 'skipped' || r.error_reason === null).length, 2);
    for (const r of budget) {
      assert.equal(r.state, 'skipped');
      assert.match(r.summary, /Budget spent: rule budgeted: 2 runs per 1h/);
    }
    const pages = await eventually(async () => {
      const p = pd.enqueued().filter((r) => r.body.event_action === 'trigger' && r.body.payload?.class === 'budget');
      return p.length > 0 && p;
    }, 'budget page');
    // Every event of these runs marked the outbox before its run ended: once PagerDuty's outbox and
    // the drain jobs are idle, no other page can come.
    let last: unknown;
    const notifyQueue = new Queue('notify', { connection: { url: REDIS_URL }, prefix: receiver.config.QUEUE_PREFIX });
    const outbox = new Redis(REDIS_URL);
    const dest = `${receiver.config.QUEUE_PREFIX}:outbox:pagerduty:PAGERDUTY_ROUTING_KEY`;
    try {
      await eventually(async () => {
        const c = await notifyQueue.getJobCounts('waiting', 'active', 'delayed');
        const items = (await outbox.zcard(`${dest}:items`)) + (await outbox.zcard(`${dest}:leases`));
        last = { ...c, items };
        return c.waiting + c.active + c.delayed === 0 && items === 0;
      }, 'the PagerDuty notifier handled every event of these runs').catch((e) => {
        throw new Error(`${e.message}: ${JSON.stringify(last)}`);
      });
    } finally {
      await notifyQueue.close();
      outbox.disconnect();
    }
    assert.equal(pd.enqueued().filter((r) => r.body.event_action === 'trigger' && r.body.payload?.class === 'budget').length, 1, JSON.stringify(pages.map((p) => p.body.payload.summary)));
    assert.match(pages[0]!.body.payload.summary, /held back: budgeted .*Budget spent/);
  });

  test('an action cap across rules: the second notify rule is skipped (budget) once the action\'s 1 per hour is spent', async () => {
    const a = await fire('CapA');
    assert.equal((await finalRun(a.fingerprint)).state, 'notified');
    const b = await fire('CapB');
    const run = await finalRun(b.fingerprint);
    assert.equal(run.state, 'skipped');
    assert.equal(run.error_reason, 'budget');
    assert.match(run.summary, /action notify \(all rules\): 1 runs per 1h/);
  });

  test('pause through the admin API holds every process; the CLI shows it and resumes; /metrics counts it', async () => {
    const r = await fetch(`${receiver.url}/api/pause`, { method: 'POST', headers: admin, body: JSON.stringify({ scope: 'rule:pausable', reason: 'db migration', by: 'alice' }) });
    assert.equal(r.status, 201, await r.text());
    breaker.state = 'open';
    const resets = breaker.resets;
    const firings = await Promise.all([fire('Pause'), fire('Pause'), fire('Pause')]);
    for (const f of firings) {
      const run = await finalRun(f.fingerprint);
      assert.equal(run.state, 'skipped');
      assert.equal(run.error_reason, 'paused');
      assert.match(run.summary, /Paused \(rule:pausable\) by admin-api:alice: db migration/);
    }
    assert.equal(breaker.resets, resets, 'nothing acted while paused');
    const st = io();
    assert.equal(await runCli(['status'], st.io), 0, st.err.join('\n'));
    assert.ok(st.out.some((l) => /rule:pausable by admin-api:alice .*db migration/.test(l)), st.out.join('\n'));
    const metrics = await (await fetch(`${receiver.url}/metrics`)).text();
    assert.match(metrics, /remediator_safety_skips_total\{reason="paused"\} 3/);

    const rs = io();
    assert.equal(await runCli(['resume', 'rule:pausable', '--by', 'bob'], rs.io), 0, rs.err.join('\n'));
    assert.match(rs.out[0]!, /resumed rule:pausable \(paused by admin-api:alice/);
    const again = await fire('Pause');
    assert.equal((await finalRun(again.fingerprint)).state, 'succeeded');
    const actions = (await receiver.pool.query(`SELECT kind, scope, by_whom FROM ${schema()}.operator_actions WHERE scope = 'rule:pausable' ORDER BY id`)).rows;
    assert.deepEqual(actions.map((a) => [a.kind, a.by_whom]), [['pause', 'admin-api:alice'], ['resume', 'cli:bob']]);
  });

  test('pause: bad input is a 400 naming the field; a wrong token is 401', async () => {
    const bad = await fetch(`${receiver.url}/api/pause`, { method: 'POST', headers: admin, body: JSON.stringify({ scope: 'everything', reason: 'x', by: 'a' }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /^scope: /);
    const past = await fetch(`${receiver.url}/api/pause`, { method: 'POST', headers: admin, body: JSON.stringify({ scope: 'all', reason: 'x', by: 'a', until: '2001-01-01T00:00:00Z' }) });
    assert.equal(past.status, 400);
    assert.match(((await past.json()) as { error: string }).error, /^until: must be in the future/);
    const noauth = await fetch(`${receiver.url}/api/pause`, { method: 'POST', headers: { ...admin, authorization: 'Bearer nope' }, body: '{}' });
    assert.equal(noauth.status, 401);
    const cli = io();
    assert.equal(await runCli(['pause', 'all'], cli.io), 2);
    assert.match(cli.err[0]!, /^reason: /);
  });

  test('resolved before it ran: skipped (resolved), unless run_if_resolved: true', async () => {
    const late = { fingerprint: fp(), startsAt: new Date(Date.now() - 5000).toISOString() };
    const anyway = { fingerprint: fp(), startsAt: late.startsAt };
    const body = (name: string, f: typeof late, status: 'firing' | 'resolved') => {
      const b = firingWebhook(name, f.fingerprint, { startsAt: f.startsAt });
      if (status === 'resolved') Object.assign(b, { status }), Object.assign(b.alerts[0]!, { status, endsAt: new Date().toISOString() });
      return b;
    };
    // Another run holds the target (its lock, set here by hand): both jobs wait while the resolved
    // notifications arrive and are recorded, then start.
    const redis = new Redis(REDIS_URL);
    const lock = `${receiver.config.QUEUE_PREFIX}:lock:breaker-reset:svc-res`;
    try {
      await redis.set(lock, 'someone-else', 'PX', 60_000);
      for (const [name, f] of [['Late', late], ['LateAnyway', anyway]] as const) {
        assert.equal((await postWebhook(receiver.url, body(name, f, 'firing'))).status, 200);
        // The resolved notification after the firing is in the audit (two ingest jobs may run in any order).
        await eventually(async () => (await receiver.pool.query(`SELECT 1 FROM ${schema()}.runs WHERE fingerprint = $1`, [f.fingerprint])).rowCount, 'run queued');
        assert.equal((await postWebhook(receiver.url, body(name, f, 'resolved'))).status, 200);
      }
      await eventually(async () => {
        const { rows } = await receiver.pool.query(`SELECT count(*)::int AS n FROM ${schema()}.runs WHERE fingerprint = ANY($1) AND alert_resolved_at IS NOT NULL AND state = 'queued'`, [[late.fingerprint, anyway.fingerprint]]);
        return rows[0].n === 2;
      }, 'both resolutions recorded before the runs start');
    } finally {
      await redis.del(lock);
      redis.disconnect();
    }
    breaker.state = 'open';
    const skipped = await finalRun(late.fingerprint);
    assert.equal(skipped.state, 'skipped');
    assert.equal(skipped.error_reason, 'resolved');
    assert.match(skipped.summary, /resolved at .* before this run started/);
    const ran = await finalRun(anyway.fingerprint);
    assert.notEqual(ran.error_reason, 'resolved');
    assert.ok(ran.started_at, 'run_if_resolved: the run started');
  });

  test('loop: 2 ineffective fixes in a row quarantine the rule on its target; it survives a restart; lifting it lets the next run act', async () => {
    const f = fp();
    // Each firing starts after the previous run (an earlier startsAt would make it a duplicate).
    const fireLoop = async () => {
      breaker.state = 'open';
      const x = await fire('Loop', f, new Date().toISOString());
      return finalRun(x.fingerprint, x.startsAt);
    };
    const first = await fireLoop();
    assert.equal(first.state, 'succeeded', JSON.stringify(first));
    const second = await fireLoop(); // fired again within verify_window: the first fix was ineffective
    assert.equal(second.state, 'succeeded', JSON.stringify(second));
    const third = await fireLoop();
    assert.equal(third.state, 'skipped');
    assert.equal(third.error_reason, 'quarantined');
    const verdicts = (await receiver.pool.query(`SELECT fix_verdict FROM ${schema()}.runs WHERE fingerprint = $1 AND state = 'succeeded' ORDER BY queued_at`, [f])).rows;
    assert.deepEqual(verdicts.map((v) => v.fix_verdict), ['ineffective', 'ineffective']);
    const said = (await receiver.pool.query(`SELECT message FROM ${schema()}.run_events WHERE job_id = $1 AND state = 'step'`, [third.job_id])).rows;
    assert.ok(said.some((s) => /was ineffective: the alert fired again .* 2 ineffective in a row \(quarantine after 2\)/.test(s.message)), JSON.stringify(said));
    await eventually(async () => pd.enqueued().some((r) => r.body.event_action === 'trigger' && r.body.payload?.class === 'quarantined'), 'quarantine page');

    // Restart every worker process: the quarantine is in Redis, not in their memory.
    for (const w of workers.splice(0)) await w.stop();
    await startWorker();
    const fourth = await fireLoop();
    assert.equal(fourth.state, 'skipped');
    assert.equal(fourth.error_reason, 'quarantined');
    const status = (await (await fetch(`${receiver.url}/api/safety`, { headers: admin })).json()) as { quarantines: { rule: string; target: string }[] };
    assert.deepEqual(status.quarantines.map((q: { rule: string; target: string }) => `${q.rule}@${q.target}`), ['loopy@svc-loop']);

    const lifted = await fetch(`${receiver.url}/api/quarantine/lift`, { method: 'POST', headers: admin, body: JSON.stringify({ quarantine: 'loopy@svc-loop', by: 'carol', reason: 'fixed the root cause' }) });
    assert.equal(lifted.status, 200, await lifted.text());
    assert.equal((await fireLoop()).state, 'succeeded');
  });
});

test('budget slots are taken atomically: two connections racing for the last slot, one wins, 50 times', async () => {
  const prefix = `safety-race-${process.pid}`;
  const a = new Redis(REDIS_URL);
  const b = new Redis(REDIS_URL);
  try {
    const sa = new SafetyState(a, prefix);
    const sb = new SafetyState(b, prefix);
    for (let i = 0; i < 50; i++) {
      const budget = [{ key: `r${i}`, runs: 1, perMs: 60_000 }];
      const [x, y] = await Promise.all([sa.takeBudget(budget, `job-a-${i}`, new Date()), sb.takeBudget(budget, `job-b-${i}`, new Date())]);
      assert.equal([x, y].filter((v) => v === undefined).length, 1, `round ${i}`);
    }
    // The winner's retry is let through (the slot is its own); a window later the slot is free again.
    const budget = [{ key: 'retry', runs: 1, perMs: 200 }];
    assert.equal(await sa.takeBudget(budget, 'job-1', new Date()), undefined);
    assert.equal(await sa.takeBudget(budget, 'job-1', new Date()), undefined);
    assert.ok(await sb.takeBudget(budget, 'job-2', new Date()));
    assert.equal(await sb.takeBudget(budget, 'job-2', new Date(Date.now() + 300)), undefined);
    // A dry run peeks: it sees the room or the spent budget but takes no slot.
    const peeked = [{ key: 'peek', runs: 1, perMs: 60_000 }];
    assert.equal(await sa.takeBudget(peeked, 'dry-1', new Date(), true), undefined);
    assert.equal(await sa.takeBudget(peeked, 'real-1', new Date()), undefined);
    assert.ok(await sa.takeBudget(peeked, 'dry-2', new Date(), true));
  } finally {
    a.disconnect();
    b.disconnect();
    await dropPrefix(REDIS_URL, prefix);
  }
});
