import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeBreaker } from '../fakes/breaker.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { FakeSlack } from '../fakes/slack.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const ROUTING_KEY = 'R0UT1NGKEY0000000000000000000002';

let breaker: FakeBreaker;
let slack: FakeSlack;
let pd: FakePagerDuty;
let svc: TestService;

before(async () => {
  breaker = await new FakeBreaker().start();
  slack = await new FakeSlack().start();
  pd = await new FakePagerDuty().start();
  svc = await startTestService({
    env: { BREAKER_TOKEN: breaker.token, SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_CHANNEL: '#ops', PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pd.url },
    rules: {
      'rules.yml': `
targets:${breaker.targetYaml('svc')}
rules:
  - name: reset
    match: ['alertname="Open"']
    action: breaker-reset
    target: svc
    params: { poll_interval: 20ms }
    notify: { pagerduty: { resolve: immediately } }
`,
    },
  });
});
after(async () => {
  await svc.close();
  await Promise.all([breaker.stop(), slack.stop(), pd.stop()]);
});

test('a Slack outage neither re-runs the remediation nor holds back PagerDuty', async () => {
  slack.fail({ kind: 'http500', count: 10_000 });
  breaker.state = 'open';
  const res = await postWebhook(svc.url, firingWebhook('Open', 'ee00000000000001'));
  assert.equal(res.status, 200);
  const s = `"${svc.config.DATABASE_SCHEMA}"`;
  await eventually(async () => (await svc.pool.query(`SELECT state FROM ${s}.runs`)).rows[0]?.state === 'succeeded', 'run succeeded');
  // PagerDuty is not blocked by Slack: acknowledge and resolve arrive.
  await eventually(async () => pd.enqueued().some((r) => r.body.event_action === 'resolve'), 'PagerDuty resolve');
  // Slack's failures are retried (counted in /metrics, not one audit row per try)...
  await eventually(async () => /remediator_notifications_failed_total\{notifier="slack",final="false"\} [1-9]/.test(await (await fetch(`${svc.url}/metrics`)).text()), 'slack retries counted');
  // ...while the remediation ran exactly once, with one attempt.
  assert.equal(breaker.resets, 1);
  const run = (await svc.pool.query(`SELECT attempts FROM ${s}.runs`)).rows[0];
  assert.equal(run.attempts, 1);
  assert.equal((await svc.pool.query(`SELECT count(*)::int AS n FROM ${s}.notifications WHERE notifier = 'slack'`)).rows[0].n, 0, 'nothing recorded while it is only being retried');
  // Slack comes back: the thread is delivered (on the notifier's own backoff) without running anything again.
  slack.faults.length = 0;
  await eventually(async () => slack.roots('#ops')[0]?.text.includes('Succeeded'), 'Slack root delivered after the outage', 60_000, 200);
  assert.equal(breaker.resets, 1);
});
