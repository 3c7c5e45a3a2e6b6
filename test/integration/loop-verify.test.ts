import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/** A fix whose alert does not resolve within verify_window is ineffective even when nothing fires again. */
let breaker: FakeBreaker;
let pd: FakePagerDuty;
let svc: TestService;
const s = () => `"${svc.config.DATABASE_SCHEMA}"`;

before(async () => {
  breaker = await new FakeBreaker().start();
  pd = await new FakePagerDuty().start();
  svc = await startTestService({
    env: { BREAKER_TOKEN: breaker.token, PAGERDUTY_ROUTING_KEY: 'R0UT1NGKEY00000000000000000000EF', PAGERDUTY_EVENTS_URL: pd.url },
    rules: {
      'r.yml': `
targets:${breaker.targetYaml('svc')}${breaker.targetYaml('svc-ok')}
rules:
  - name: stubborn
    match: ['alertname="Stubborn"']
    action: breaker-reset
    target: svc
    params: { poll_interval: 20ms }
    verify_window: 1s
    quarantine_after: 2
  - name: fine
    match: ['alertname="Fine"']
    action: breaker-reset
    target: svc-ok
    params: { poll_interval: 20ms }
    verify_window: 2s
`,
    },
  });
});
after(async () => {
  await svc.close();
  await breaker.stop();
  await pd.stop();
});

const fire = async (name: string, fp: string, status: 'firing' | 'resolved' = 'firing', startsAt = new Date().toISOString()) => {
  const body = firingWebhook(name, fp, { startsAt });
  if (status === 'resolved') Object.assign(body, { status }), Object.assign(body.alerts[0]!, { status, endsAt: new Date().toISOString() });
  assert.equal((await postWebhook(svc.url, body)).status, 200);
  return startsAt;
};
const run = (fp: string, startsAt: string, pred: (r: Record<string, unknown>) => boolean, what: string) =>
  eventually(async () => {
    const { rows } = await svc.pool.query(`SELECT * FROM ${s()}.runs WHERE fingerprint = $1 AND starts_at = $2`, [fp, startsAt]);
    return rows[0] && pred(rows[0]) && rows[0];
  }, what, 20_000);

test('unresolved after verify_window: ineffective, said in the run; two in a row quarantine (paged); the next firing is skipped', async () => {
  const fp = 'b10c000000000001';
  breaker.state = 'open';
  const t1 = await fire('Stubborn', fp);
  const r1 = await run(fp, t1, (r) => r.fix_verdict === 'ineffective', 'first fix judged ineffective');
  // The verdict is one event of the judged run, saying where the streak stands.
  const verdicts = (await svc.pool.query(`SELECT message FROM ${s()}.run_events WHERE job_id = $1 AND state = 'ineffective'`, [r1.job_id])).rows.map((e) => e.message as string);
  assert.deepEqual(verdicts, ['Fix ineffective: its alert did not resolve within verify_window 1s. 1 ineffective in a row (quarantine after 2).']);

  breaker.state = 'open';
  const t2 = await fire('Stubborn', fp);
  await run(fp, t2, (r) => r.fix_verdict === 'ineffective', 'second fix judged ineffective');
  await eventually(async () => pd.enqueued().some((e) => e.body.event_action === 'trigger' && /quarantined/.test(e.body.payload?.summary ?? '')), 'quarantine page');
  const t3 = await fire('Stubborn', fp);
  const r3 = await run(fp, t3, (r) => r.state === 'skipped', 'third run skipped');
  assert.equal(r3.error_reason, 'quarantined');
});

test('resolved within verify_window: the fix held (effective), no streak', async () => {
  const fp = 'b10c000000000002';
  breaker.state = 'open';
  const t1 = await fire('Fine', fp);
  await run(fp, t1, (r) => r.state === 'succeeded', 'fix succeeded');
  await fire('Fine', fp, 'resolved', t1);
  const r = await run(fp, t1, (x) => x.fix_verdict !== null, 'fix judged');
  assert.equal(r.fix_verdict, 'effective');
});
