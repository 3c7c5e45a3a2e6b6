import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { FakeBreaker } from '../fakes/breaker.js';
import { startAlertmanager, type PostableAlert, type RunningAlertmanager } from '../helpers/alertmanager.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

// A real Alertmanager 0.25 process posts to the real service (receiver + workers, real Redis and
// PostgreSQL), which resets a fake circuit breaker. Each test gets its own breaker, service
// (schema, queue prefix, rules dir) and Alertmanager(s); afterEach stops them all.

const TOKEN = 'test-webhook-token'; // startTestService's WEBHOOK_TOKEN
const GROUP_KEY = '{}:{alertname="CircuitBreakerOpen"}'; // root route, group_by [alertname]
const RULE = 'breaker-open';

function rules(breaker: FakeBreaker): Record<string, string> {
  return {
    'breaker.yml': `
targets:
  e2e-breaker:
    kind: http-breaker
    status:
      url: ${breaker.url}/api/admin/circuit-breaker-status
      token_env: E2E_BREAKER_TOKEN
    reset:
      method: POST
      url: ${breaker.url}/api/admin/reset-circuit-breaker
      token_env: E2E_BREAKER_TOKEN
    request_timeout: 2s
rules:
  - name: ${RULE}
    match: ['alertname="CircuitBreakerOpen"']
    action: breaker-reset
    target: e2e-breaker
    params: { verify_timeout: 5s, poll_interval: 100ms }
    attempts: 3
    backoff: 1s
`,
  };
}

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const c of cleanups.reverse()) await c().catch((e: unknown) => errors.push(e));
  cleanups = [];
  if (errors.length) throw errors[0];
});

async function setup(): Promise<{ breaker: FakeBreaker; svc: TestService; q: (sql: string, args?: unknown[]) => Promise<Record<string, any>[]> }> {
  const breaker = await new FakeBreaker().start();
  cleanups.push(() => breaker.stop());
  const svc = await startTestService({ rules: rules(breaker), env: { E2E_BREAKER_TOKEN: breaker.token } });
  cleanups.push(() => svc.close());
  const s = `"${svc.config.DATABASE_SCHEMA}"`;
  const q = async (sql: string, args: unknown[] = []) => (await svc.pool.query(sql.replaceAll('$S', s), args)).rows;
  return { breaker, svc, q };
}

async function alertmanager(svc: TestService, extra: { repeatInterval?: string } = {}): Promise<RunningAlertmanager> {
  const am = await startAlertmanager({ webhookUrl: `${svc.url}/webhooks/alertmanager`, bearerToken: TOKEN, ...extra });
  cleanups.push(() => am.stop());
  return am;
}

function breakerAlert(startsAt: string, endsAt?: string): PostableAlert {
  return {
    labels: { alertname: 'CircuitBreakerOpen', service: 'image-gen', severity: 'critical' },
    annotations: { summary: 'image-gen circuit breaker open for 5m' },
    startsAt,
    ...(endsAt ? { endsAt } : {}),
    generatorURL: 'http://prometheus.local/graph?g0.expr=circuit_breaker_state+%3D%3D+2',
  };
}

/** Alertmanager's log(s), appended to assertion messages. */
const logsOf = (...ams: RunningAlertmanager[]) => ams.map((am) => `\n--- alertmanager ${am.url} ---\n${am.logs().split('\n').slice(-40).join('\n')}`).join('');

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, ams: RunningAlertmanager[], timeoutMs = 15_000): Promise<T> {
  try {
    return await eventually(fn, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}${logsOf(...ams)}`);
  }
}

describe('end to end with a real Alertmanager', () => {
  test('a CircuitBreakerOpen alert resets the breaker once, is audited, and its resolution is recorded', async () => {
    const { breaker, svc, q } = await setup();
    const am = await alertmanager(svc);
    const startsAt = new Date(Date.now() - 60_000).toISOString();
    await am.postAlerts([breakerAlert(startsAt)]);
    const [amAlert] = await am.getAlerts();
    assert.ok(amAlert, `Alertmanager does not list the posted alert${logsOf(am)}`);
    const fp = amAlert.fingerprint;

    const run = await waitFor('the run to succeed', async () => (await q(`SELECT * FROM $S.runs WHERE state = 'succeeded'`))[0], [am]);
    assert.equal(breaker.resets, 1, `expected one reset${logsOf(am)}`);
    assert.equal(breaker.state, 'closed');
    assert.equal(run.attempts, 1);
    assert.equal(run.rule, RULE);
    assert.equal(run.fingerprint, fp);
    assert.equal(run.group_key, GROUP_KEY);
    assert.equal(run.starts_at.toISOString(), startsAt);

    const firing = await q(`SELECT * FROM $S.alerts WHERE fingerprint = $1 AND status = 'firing'`, [fp]);
    assert.ok(firing.length >= 1, 'the firing delivery is in alerts');
    assert.equal(firing[0]!.receiver, am.receiver);
    assert.equal(firing[0]!.group_key, GROUP_KEY);
    assert.equal(firing[0]!.alertname, 'CircuitBreakerOpen');
    // Alertmanager's default --web.external-url is http://<hostname>:<port>.
    assert.equal(new URL(firing[0]!.external_url).port, new URL(am.url).port);
    const decisions = await q(`SELECT d.* FROM $S.decisions d JOIN $S.alerts a ON a.id = d.alert_id WHERE a.id = $1`, [firing[0]!.id]);
    assert.deepEqual(
      decisions.map((d) => ({ decision: d.decision, rule: d.rule, job_id: d.job_id })),
      [{ decision: 'enqueued', rule: RULE, job_id: run.job_id }],
    );

    // Resolve it in Alertmanager: the same labels and startsAt, endsAt now.
    await am.postAlerts([breakerAlert(startsAt, new Date().toISOString())]);
    const resolved = await waitFor('the resolved delivery', async () => (await q(`SELECT * FROM $S.alerts WHERE fingerprint = $1 AND status = 'resolved'`, [fp]))[0], [am]);
    assert.equal(resolved.receiver, am.receiver);
    assert.equal(resolved.group_key, GROUP_KEY);
    assert.ok(resolved.ends_at, 'a resolved alert carries endsAt');
    const after = await waitFor('runs.alert_resolved_at', async () => (await q(`SELECT * FROM $S.runs WHERE job_id = $1 AND alert_resolved_at IS NOT NULL`, [run.job_id]))[0], [am]);
    assert.equal(after.state, 'succeeded');
    const resolvedDecisions = await q(`SELECT decision, job_id FROM $S.decisions WHERE alert_id = $1`, [resolved.id]);
    assert.deepEqual(resolvedDecisions, [{ decision: 'not_applicable', job_id: run.job_id }]);
    assert.equal(breaker.resets, 1, 'the resolution does not reset again');
    assert.equal((await q(`SELECT count(*)::int AS n FROM $S.runs`))[0]!.n, 1);
  });

  test('repeat notifications (short repeat_interval) collapse to one run and one reset', async () => {
    const { breaker, svc, q } = await setup();
    const am = await alertmanager(svc, { repeatInterval: '2s' });
    await am.postAlerts([breakerAlert(new Date(Date.now() - 60_000).toISOString())]);

    const run = await waitFor('the run to succeed', async () => (await q(`SELECT * FROM $S.runs WHERE state = 'succeeded'`))[0], [am]);
    // The positive signal that repeats arrived and went through the receiver: two more deliveries
    // recorded after the first, each decided as a duplicate of the same job.
    await waitFor(
      'two repeat deliveries',
      async () => (await q(`SELECT count(*)::int AS n FROM $S.decisions WHERE decision = 'duplicate' AND job_id = $1`, [run.job_id]))[0]!.n >= 2,
      [am],
      20_000,
    );
    const deliveries = (await q(`SELECT count(*)::int AS n FROM $S.alerts WHERE fingerprint = $1`, [run.fingerprint]))[0]!.n;
    assert.ok(deliveries >= 3, `expected >= 3 deliveries, got ${deliveries}`);
    assert.equal(breaker.resets, 1, `expected one reset${logsOf(am)}`);
    assert.equal((await q(`SELECT count(*)::int AS n FROM $S.runs`))[0]!.n, 1);
    assert.equal(run.attempts, 1);
  });

  test('two independent Alertmanagers (an HA pair) sending the same alert make one reset', async () => {
    const { breaker, svc, q } = await setup();
    const [a, b] = await Promise.all([alertmanager(svc), alertmanager(svc)]);
    const alert = breakerAlert(new Date(Date.now() - 60_000).toISOString());
    await Promise.all([a.postAlerts([alert]), b.postAlerts([alert])]);
    const [fa, fb] = await Promise.all([a.getAlerts(), b.getAlerts()]);
    assert.equal(fa[0]?.fingerprint, fb[0]?.fingerprint, 'the fingerprint is a hash of the labels');

    // Both instances delivered (their externalURLs differ) ...
    await waitFor(
      'a delivery from each Alertmanager',
      async () => (await q(`SELECT count(DISTINCT external_url)::int AS n FROM $S.alerts WHERE fingerprint = $1`, [fa[0]!.fingerprint]))[0]!.n === 2,
      [a, b],
    );
    // ... and the one job they share ran to the end.
    const run = await waitFor('the run to succeed', async () => (await q(`SELECT * FROM $S.runs WHERE state = 'succeeded'`))[0], [a, b]);
    assert.equal(breaker.resets, 1, `expected one reset${logsOf(a, b)}`);
    assert.equal(run.attempts, 1);
    assert.equal((await q(`SELECT count(*)::int AS n FROM $S.runs`))[0]!.n, 1);
    const jobs = await q(`SELECT DISTINCT job_id FROM $S.decisions WHERE job_id IS NOT NULL`);
    assert.deepEqual(jobs, [{ job_id: run.job_id }]);
  });
});
