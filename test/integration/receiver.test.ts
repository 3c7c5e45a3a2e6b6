import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeBreaker } from '../fakes/breaker.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { freePort, startRedis, startRemediator, type Child } from '../helpers/process.js';

const refDir = join(import.meta.dirname, '../fixtures/alertmanager');
const payload = (name: string) => JSON.parse(readFileSync(join(refDir, name), 'utf8'));
const auth = { authorization: 'Bearer test-webhook-token' };

function rulesFor(b: FakeBreaker, extra = ''): Record<string, string> {
  return {
    'breakers.yml': `
targets:${b.targetYaml('checkout')}
rules:
  - name: checkout-breaker
    match: ['alertname="HighErrorRate"', 'deployment="checkout"']
    action: breaker-reset
    target: checkout
    params: { poll_interval: 20ms, verify_timeout: 5s }
    backoff: 100ms
${extra}`,
  };
}

async function post(url: string, body: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* keep text */
  }
  return { status: res.status, body: parsed };
}

/** One alert of the reference payload 04 shape, with our labels. */
function single(fingerprint: string, status: 'firing' | 'resolved' = 'firing') {
  const p = payload('01-firing-2alerts.json');
  p.alerts = [{ ...p.alerts[0], fingerprint, status, endsAt: status === 'resolved' ? '2026-11-22T07:45:00Z' : '0001-01-01T00:00:00Z' }];
  p.status = status;
  return p;
}

describe('receiver with real Redis, PostgreSQL and a fake breaker', () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  const runs = async () => (await svc.pool.query(`SELECT * FROM "${svc.config.DATABASE_SCHEMA}".runs ORDER BY queued_at`)).rows;

  before(async () => {
    breaker = await new FakeBreaker().start();
    svc = await startTestService({ rules: rulesFor(breaker), env: { BREAKER_TOKEN: breaker.token } });
  });
  after(async () => {
    await svc.close();
    await breaker.stop();
  });

  test('a firing alert runs one reset, audited as succeeded', async () => {
    breaker.state = 'open';
    const res = await post(svc.url, single('aaaa000000000001'));
    assert.equal(res.status, 200);
    // The answer says the delivery is in Redis; the decisions are taken by the ingest stage (audited below).
    assert.deepEqual(res.body, { status: 'accepted', alerts: 1 });
    const [run] = await eventually(async () => {
      const r = await runs();
      return r.length === 1 && r[0].state === 'succeeded' && r;
    }, 'run succeeded');
    assert.equal(breaker.resets, 1);
    assert.equal(run.fingerprint, 'aaaa000000000001');
    assert.equal(run.rule, 'checkout-breaker');
    assert.equal(run.attempts, 1);
    assert.match(run.summary, /open -> closed/);
    assert.deepEqual(run.details, { before: 'open', after: 'closed' });
    // The admin API shows it, newest first, and needs the admin token.
    const api = await fetch(`${svc.url}/api/runs?rule=checkout-breaker`, { headers: { authorization: 'Bearer test-admin-token' } });
    assert.equal(api.status, 200);
    const { runs: listed } = (await api.json()) as { runs: { job_id: string; state: string }[] };
    assert.equal(listed[0]!.job_id, run.job_id);
    assert.equal((await fetch(`${svc.url}/api/runs`)).status, 401);
    assert.equal((await fetch(`${svc.url}/api/runs?status=bogus`, { headers: { authorization: 'Bearer test-admin-token' } })).status, 400);
    // The run's whole history, in order: the ingest writer may record `queued` after the worker started.
    const detail = await eventually(async () => {
      const d = (await (await fetch(`${svc.url}/api/runs/${run.job_id}`, { headers: { authorization: 'Bearer test-admin-token' } })).json()) as { events: { state: string; message: string }[] };
      return d.events.some((e) => e.state === 'queued') && d;
    }, 'the queued event is recorded');
    assert.deepEqual(detail.events.map((e) => e.state), ['queued', 'running', 'step', 'step', 'step', 'step', 'succeeded']);
    assert.deepEqual(detail.events.map((e) => e.message.split(':')[0]), ['Queued by rule checkout-breaker', 'Attempt 1 started', 'Breaker state before', 'Sending reset', 'Reset sent', 'Breaker state after', 'Breaker on checkout reset']);
    // Every received alert and decision is in the audit.
    const decisions = (await svc.pool.query(`SELECT decision, rule FROM "${svc.config.DATABASE_SCHEMA}".decisions WHERE fingerprint = 'aaaa000000000001'`)).rows;
    assert.deepEqual(decisions, [{ decision: 'enqueued', rule: 'checkout-breaker' }]);
  });

  test('the same payload posted 5 times makes exactly one job and one reset', async () => {
    breaker.state = 'open';
    const before = breaker.resets;
    const body = single('aaaa000000000002');
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await post(svc.url, body));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
    assert.deepEqual(answers.map((a) => a.body), Array(5).fill({ status: 'accepted', alerts: 1 }));
    await eventually(async () => (await runs()).find((r) => r.fingerprint === 'aaaa000000000002' && r.state === 'succeeded'), 'run');
    // Wait until all five deliveries are audited, then check nothing else ran.
    await eventually(async () => (await svc.pool.query(`SELECT count(*)::int AS n FROM "${svc.config.DATABASE_SCHEMA}".decisions WHERE fingerprint = 'aaaa000000000002'`)).rows[0].n === 5, '5 decisions');
    assert.equal(breaker.resets - before, 1);
    const d = (await svc.pool.query(`SELECT decision, count(*)::int AS n FROM "${svc.config.DATABASE_SCHEMA}".decisions WHERE fingerprint = 'aaaa000000000002' GROUP BY decision ORDER BY decision`)).rows;
    assert.deepEqual(d, [{ decision: 'duplicate', n: 4 }, { decision: 'enqueued', n: 1 }]);
  });

  test('a resolved alert with a `when: firing` rule enqueues nothing', async () => {
    const before = breaker.resets;
    const res = await post(svc.url, single('aaaa000000000003', 'resolved'));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'accepted', alerts: 1 });
    const d = await eventually(async () => (await svc.pool.query(`SELECT decision, reason FROM "${svc.config.DATABASE_SCHEMA}".decisions WHERE fingerprint = 'aaaa000000000003'`)).rows[0], 'decision');
    assert.equal(d.decision, 'not_applicable');
    assert.match(d.reason, /acts on firing alerts, this one is resolved/);
    assert.equal((await runs()).filter((r) => r.fingerprint === 'aaaa000000000003').length, 0);
    assert.equal(breaker.resets, before);
  });

  test('a payload with firing and resolved alerts is decided per alert', async () => {
    const p = payload('02-mixed-one-resolved.json');
    p.alerts[0].fingerprint = 'aaaa000000000004';
    p.alerts[1].fingerprint = 'aaaa000000000005';
    const res = await post(svc.url, p);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'accepted', alerts: 2 });
    const d = await eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT fingerprint, decision FROM "${svc.config.DATABASE_SCHEMA}".decisions WHERE fingerprint IN ('aaaa000000000004', 'aaaa000000000005') ORDER BY fingerprint`);
      return rows.length === 2 && rows;
    }, 'both alerts decided');
    assert.deepEqual(d, [{ fingerprint: 'aaaa000000000004', decision: 'enqueued' }, { fingerprint: 'aaaa000000000005', decision: 'not_applicable' }]);
  });

  test('bad credentials get 401', async () => {
    const body = single('aaaa000000000010');
    assert.equal((await post(svc.url, body, {})).status, 401);
    assert.equal((await post(svc.url, body, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await post(svc.url, body, { authorization: 'Basic ' + Buffer.from('a:b').toString('base64') })).status, 401);
  });

  test('bad payloads get 400 with the offending field; non-JSON 400/415; too large 413', async () => {
    const wrongVersion = { ...single('aaaa000000000011'), version: '3' };
    let r = await post(svc.url, wrongVersion);
    assert.equal(r.status, 400);
    assert.match(r.body.error, /^invalid payload: version: unsupported payload version/);
    const noFingerprint = single('aaaa000000000012');
    delete noFingerprint.alerts[0].fingerprint;
    r = await post(svc.url, noFingerprint);
    assert.equal(r.status, 400);
    assert.equal(r.body.issues[0].path, 'alerts[0].fingerprint');
    const badType = single('aaaa000000000013');
    badType.alerts[0].labels = { alertname: 42 };
    r = await post(svc.url, badType);
    assert.equal(r.status, 400);
    assert.equal(r.body.issues[0].path, 'alerts[0].labels.alertname');
    r = await post(svc.url, '{"version": "4", ');
    assert.equal(r.status, 400);
    assert.match(r.body.error, /malformed JSON/);
    const text = await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST', headers: { 'content-type': 'text/plain', ...auth }, body: 'hello' });
    assert.equal(text.status, 415);
    const big = single('aaaa000000000014');
    big.alerts[0].annotations.description = 'x'.repeat(1024 * 1024 + 10);
    r = await post(svc.url, big);
    assert.equal(r.status, 413);
    // Unknown fields from newer Alertmanagers are accepted.
    const newer = { ...single('aaaa000000000015'), notification_reason: 'new alerts', routeLabels: { a: 'b' } };
    newer.alerts[0].labels = { alertname: 'Unrelated' };
    r = await post(svc.url, newer);
    assert.equal(r.status, 200);
  });

  test('health and readiness', async () => {
    const h = await fetch(`${svc.url}/healthz`);
    assert.equal(h.status, 200);
    const r = await fetch(`${svc.url}/readyz`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { checks: { redis: { ok: boolean }; postgres: { ok: boolean }; rules: { count: number } } };
    assert.equal(body.checks.redis.ok, true);
    assert.equal(body.checks.postgres.ok, true);
    assert.equal(body.checks.rules.count, 1);
  });

  test('/metrics: request codes, alerts and decisions of this process, queue depths and runs of the last 24h', async () => {
    const res = await fetch(`${svc.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    assert.ok(value('remediator_webhook_requests_total{code="200"}')! >= 9, text);
    assert.equal(value('remediator_webhook_requests_total{code="401"}'), 3);
    assert.equal(value('remediator_webhook_requests_total{code="413"}'), 1);
    assert.equal(value('remediator_decisions_total{decision="duplicate"}'), 4);
    assert.ok(value('remediator_alerts_received_total{status="resolved"}')! >= 2);
    assert.equal(value('remediator_queue_jobs{queue="remediations",state="failed"}'), 0);
    assert.ok(value('remediator_runs_last_24h{action="breaker-reset",state="succeeded",reason=""}')! >= 2);
    assert.equal(value('remediator_dependencies_up'), 1);
  });
});

describe('two receiver processes and a worker share one Redis', () => {
  let breaker: FakeBreaker;
  let worker: TestService;
  const receivers: Child[] = [];
  const urls: string[] = [];

  before(async () => {
    breaker = await new FakeBreaker().start();
    worker = await startTestService({ rules: rulesFor(breaker), env: { BREAKER_TOKEN: breaker.token, REMEDIATOR_ROLE: 'worker' } });
    for (let i = 0; i < 2; i++) {
      const c = await startRemediator({
        PORT: '0', HOST: '127.0.0.1', RULES_DIR: worker.rulesDir, REDIS_URL: worker.config.REDIS_URL,
        DATABASE_URL: worker.config.DATABASE_URL, DATABASE_SCHEMA: worker.config.DATABASE_SCHEMA, QUEUE_PREFIX: worker.config.QUEUE_PREFIX,
        WEBHOOK_TOKEN: 'test-webhook-token', BREAKER_TOKEN: breaker.token,
      }, ['--role', 'receiver']);
      assert.match(c.output(), /"role":"receiver"/);
      receivers.push(c);
      urls.push(c.url);
    }
  });
  after(async () => {
    for (const c of receivers) await c.stop();
    await worker.close();
    await breaker.stop();
  });

  test('an HA pair posting the same firing to two receivers resets once', async () => {
    breaker.state = 'open';
    const body = single('bbbb000000000001');
    const answers = await Promise.all([...urls, ...urls, ...urls].map((u) => post(u, body)));
    assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers));
    assert.ok(answers.every((a) => a.body.alerts === 1), JSON.stringify(answers));
    await eventually(async () => (await worker.pool.query(`SELECT count(*)::int AS n FROM "${worker.config.DATABASE_SCHEMA}".decisions WHERE fingerprint = 'bbbb000000000001'`)).rows[0].n === 6, 'all 6 deliveries audited');
    const rows = await eventually(async () => {
      const r = (await worker.pool.query(`SELECT state FROM "${worker.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'bbbb000000000001'`)).rows;
      return r.length === 1 && r[0].state === 'succeeded' && r;
    }, 'one succeeded run');
    assert.equal(rows.length, 1);
    assert.equal(breaker.resets, 1);
  });
});

describe('Redis outage', () => {
  let breaker: FakeBreaker;
  let redis: Child;
  let port: number;
  let svc: TestService;

  before(async () => {
    breaker = await new FakeBreaker().start();
    port = await freePort();
    redis = await startRedis(port);
    svc = await startTestService({ rules: rulesFor(breaker), env: { BREAKER_TOKEN: breaker.token, REDIS_URL: `redis://127.0.0.1:${port}` } });
  });
  after(async () => {
    await svc.close().catch(() => {});
    await redis.stop();
    await breaker.stop();
  });

  test('Redis down gives a fast 503 (Alertmanager retries); back up, the alert is accepted and run', async () => {
    assert.equal((await post(svc.url, single('cccc000000000001'))).status, 200);
    // Let the first run finish, so it cannot close the breaker the second alert is about.
    await eventually(async () => (await svc.pool.query(`SELECT state FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'cccc000000000001'`)).rows[0]?.state === 'succeeded', 'first run');
    await redis.stop();
    const t0 = Date.now();
    const down = await post(svc.url, single('cccc000000000002'));
    assert.equal(down.status, 503);
    assert.ok(Date.now() - t0 < 5000, 'answered within the Redis deadline');
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 503);
    redis = await startRedis(port);
    breaker.state = 'open';
    const back = await eventually(async () => {
      const r = await post(svc.url, single('cccc000000000002'));
      return r.status === 200 && r;
    }, 'accepted after Redis is back');
    assert.deepEqual(back.body, { status: 'accepted', alerts: 1 });
    await eventually(async () => (await svc.pool.query(`SELECT state FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'cccc000000000002'`)).rows[0]?.state === 'succeeded', 'run after outage', 30_000);
    assert.ok(breaker.resets >= 1);
  });
});
