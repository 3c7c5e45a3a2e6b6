import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import pg from 'pg';
import { createLogger } from '../../src/log.js';
import { jobIdFor } from '../../src/core/run.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { startAlertmanager, type PostableAlert, type RunningAlertmanager } from '../helpers/alertmanager.js';
import { DATABASE_URL } from '../helpers/pg.js';
import { freePort } from '../helpers/process.js';
import { dropPrefix, eventually, REDIS_URL, startTestService } from '../helpers/service.js';

// Reconciliation against a real Alertmanager: alerts that fired while remediator was down (or
// whose webhook never arrived) are asked from GET /api/v2/alerts and remediated once.

const TOKEN = 'test-webhook-token';
const RULE = 'breaker-open';
const WEBHOOK_GROUP_KEY = '{}:{alertname="CircuitBreakerOpen"}';

const rules = (b: FakeBreaker) => ({
  'breaker.yml': `
targets:${b.targetYaml('e2e-breaker')}
rules:
  - name: ${RULE}
    match: ['alertname="CircuitBreakerOpen"']
    action: breaker-reset
    target: e2e-breaker
    params: { verify_timeout: 5s, poll_interval: 50ms }
`,
});

const alert = (service: string, startsAt: string): PostableAlert => ({
  labels: { alertname: 'CircuitBreakerOpen', service, severity: 'critical' },
  annotations: { summary: `${service} circuit breaker open` },
  startsAt,
});

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
});

/** A schema and queue prefix that outlive one service (a restart keeps its Redis and audit). */
async function keptState() {
  const id = randomBytes(4).toString('hex');
  const keep = { schema: `rc_${id}`, prefix: `rc-${id}` };
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  cleanups.push(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${keep.schema}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, keep.prefix);
  });
  const q = async (sql: string, args: unknown[] = []) => (await pool.query(sql.replaceAll('$S', `"${keep.schema}"`), args)).rows as Record<string, any>[];
  return { keep, q };
}

async function am(webhookUrl: string): Promise<RunningAlertmanager> {
  const a = await startAlertmanager({ webhookUrl, bearerToken: TOKEN });
  cleanups.push(() => a.stop());
  return a;
}

describe('reconciliation with Alertmanager (ALERTMANAGER_URL)', () => {
  test('alerts that fired while remediator was down run once at its start; HA pair merged, a member down skipped; later cycles add nothing', async () => {
    const breaker = await new FakeBreaker().start();
    cleanups.push(() => breaker.stop());
    const { keep, q } = await keptState();
    // Both Alertmanagers deliver to a port where nothing listens: only reconciliation can find the alert.
    const dead = `http://127.0.0.1:${await freePort()}/webhooks/alertmanager`;
    const [a, b] = await Promise.all([am(dead), am(dead)]);
    // Nanoseconds, as Prometheus sends them; the API answers with milliseconds.
    const startsAt = new Date(Date.now() - 120_000).toISOString().replace('Z', '123456Z');
    await Promise.all([a.postAlerts([alert('image-gen', startsAt)]), b.postAlerts([alert('image-gen', startsAt)])]);
    const [fromApi] = await a.getAlerts();
    assert.ok(fromApi);

    const lines: { msg: string; component?: string; [k: string]: unknown }[] = [];
    const svc = await startTestService({
      rules: rules(breaker), keep,
      env: { BREAKER_TOKEN: breaker.token, ALERTMANAGER_URL: `${a.url}, ${b.url},http://127.0.0.1:${await freePort()}`, RECONCILE_INTERVAL: '1s' },
      log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l))),
    });
    cleanups.push(() => svc.close());

    const run = await eventually(async () => (await q(`SELECT * FROM $S.runs WHERE state = 'succeeded'`))[0], 'the reconciled run to succeed');
    assert.equal(run.fingerprint, fromApi.fingerprint);
    // The job id the webhook would have made: fingerprint + startsAt (to the ms) + rule.
    assert.equal(run.job_id, jobIdFor(fromApi.fingerprint, startsAt, RULE));
    assert.equal(breaker.resets, 1);
    const [received] = await q(`SELECT * FROM $S.alerts WHERE fingerprint = $1`, [fromApi.fingerprint]);
    assert.equal(received!.group_key, 'reconciled:{alertname="CircuitBreakerOpen"}');
    assert.equal(received!.receiver, 'remediate');
    assert.equal(received!.labels.service, 'image-gen');

    // Three more cycles over both Alertmanagers: the alert has its job, nothing is fed again.
    const cycles = () => lines.filter((l) => l.msg === 'reconciled with Alertmanager');
    const seen = cycles().length;
    await eventually(async () => cycles().length >= seen + 3, 'three more reconciliation cycles', 10_000);
    assert.deepEqual(cycles().slice(-1).map((l) => [l.active, l.missing, l.failed]), [[1, 0, 1]]);
    assert.equal((await q(`SELECT count(*)::int AS n FROM $S.runs`))[0]!.n, 1);
    assert.equal((await q(`SELECT count(*)::int AS n FROM $S.decisions`))[0]!.n, 1, 'no audit entry per cycle');
    assert.equal(breaker.resets, 1);
  });

  test('stop remediator, fire, start it: the new alert runs once although the webhook arrives as well', async () => {
    const breaker = await new FakeBreaker().start();
    cleanups.push(() => breaker.stop());
    const { keep, q } = await keptState();
    const port = await freePort();
    const env = { BREAKER_TOKEN: breaker.token, PORT: String(port) };
    const first = await startTestService({ rules: rules(breaker), keep, env });
    const a = await am(`${first.url}/webhooks/alertmanager`);
    await a.postAlerts([alert('before', new Date(Date.now() - 60_000).toISOString())]);
    await eventually(async () => (await q(`SELECT * FROM $S.runs WHERE state = 'succeeded'`))[0], 'the first run');
    await first.close();

    breaker.state = 'open';
    await a.postAlerts([alert('while-down', new Date(Date.now() - 30_000).toISOString())]);
    const down = (await a.getAlerts()).find((x) => x.labels.service === 'while-down')!;
    const second = await startTestService({ rules: rules(breaker), keep, env: { ...env, ALERTMANAGER_URL: a.url, RECONCILE_INTERVAL: '1s' } });
    cleanups.push(() => second.close());

    await eventually(async () => (await q(`SELECT * FROM $S.runs WHERE fingerprint = $1 AND state = 'succeeded'`, [down.fingerprint]))[0], 'the run of the alert fired while down');
    // Alertmanager's own retry of the failed notification arrives too (with its real group key).
    await eventually(
      async () => (await q(`SELECT 1 FROM $S.alerts WHERE fingerprint = $1 AND group_key = $2`, [down.fingerprint, WEBHOOK_GROUP_KEY]))[0],
      'the webhook delivery of the same alert',
      30_000,
    );
    const runs = await q(`SELECT fingerprint, state FROM $S.runs ORDER BY queued_at`);
    assert.equal(runs.length, 2, JSON.stringify(runs));
    assert.ok(runs.every((r) => r.state === 'succeeded'));
    assert.equal(breaker.resets, 2, 'one reset per firing, none twice');
  });
});
