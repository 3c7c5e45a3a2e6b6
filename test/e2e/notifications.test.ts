import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { FakeSlack } from '../fakes/slack.js';
import { startAlertmanager, type RunningAlertmanager } from '../helpers/alertmanager.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const ROUTING_KEY = 'R0UT1NGKEY0000000000000000000001'; // 32 characters, like a real integration key

/**
 * The whole outcome path with a real Alertmanager: an alert fires, remediator resets the breaker,
 * the alert resolves; the Slack thread and the PagerDuty event sequence are checked exactly.
 */
describe('e2e: Alertmanager -> remediation -> Slack thread and PagerDuty events', () => {
  let breaker: FakeBreaker;
  let slack: FakeSlack;
  let pd: FakePagerDuty;
  let svc: TestService;
  let am: RunningAlertmanager;
  const runs = async () => (await svc.pool.query(`SELECT * FROM "${svc.config.DATABASE_SCHEMA}".runs ORDER BY queued_at`)).rows;

  before(async () => {
    breaker = await new FakeBreaker().start();
    slack = await new FakeSlack().start();
    pd = await new FakePagerDuty().start();
    svc = await startTestService({
      env: {
        BREAKER_TOKEN: breaker.token,
        SLACK_BOT_TOKEN: slack.token,
        SLACK_API_URL: slack.url,
        SLACK_CHANNEL: '#ops',
        PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
        PAGERDUTY_EVENTS_URL: pd.url,
      },
      rules: {
        'rules.yml': `
targets:${breaker.targetYaml('image-gen')}
rules:
  - name: image-gen-breaker-open
    match: ['alertname="CircuitBreakerOpen"']
    action: breaker-reset
    target: image-gen
    params: { poll_interval: 20ms, verify_timeout: 2s }
    attempts: 1
    notify:
      slack: { channel: '#image-gen-ops' }
      pagerduty: { acknowledge: true, resolve: on_alert_resolved, escalate: true }
`,
      },
    });
    am = await startAlertmanager({ webhookUrl: `${svc.url}/webhooks/alertmanager`, bearerToken: 'test-webhook-token' });
  });
  after(async () => {
    await am?.stop();
    await svc?.close();
    await Promise.all([breaker?.stop(), slack?.stop(), pd?.stop()]);
  });

  test('fires, is remediated, resolves: one living Slack thread, PagerDuty acknowledge then resolve', async () => {
    breaker.state = 'open';
    const startsAt = new Date(Date.now() - 5 * 60_000).toISOString();
    const labels = { alertname: 'CircuitBreakerOpen', severity: 'critical', service: 'image-gen' };
    const annotations = { summary: 'Circuit breaker has been open for 5 minutes', runbook_url: 'https://runbooks.example/breaker' };
    await am.postAlerts([{ labels, annotations, startsAt }]);

    const run = await eventually(async () => (await runs()).find((r) => r.state === 'succeeded'), `run succeeded\n${am.logs()}`, 30_000);
    assert.equal(breaker.resets, 1);

    // PagerDuty: acknowledged with Alertmanager's own dedup key (sha256 of the group key) and the rule's routing key.
    const dedup = createHash('sha256').update(run.group_key).digest('hex');
    await eventually(async () => pd.enqueued(dedup).length >= 1, 'PagerDuty acknowledge');

    // Slack: the root is edited to the final state before the alert resolves.
    await eventually(async () => slack.roots('#image-gen-ops')[0]?.text.includes('Succeeded'), 'root shows succeeded');

    await am.postAlerts([{ labels, annotations, startsAt, endsAt: new Date().toISOString() }]);
    await eventually(async () => (await runs())[0]?.alert_resolved_at, 'resolution recorded', 30_000);
    await eventually(async () => pd.enqueued(dedup).some((r) => r.body.event_action === 'resolve'), 'PagerDuty resolve', 30_000);
    await eventually(async () => slack.roots('#image-gen-ops')[0]?.text.toLowerCase().includes('resolved'), 'root shows resolved', 30_000);

    // Exactly one thread, in the rule's channel, nothing in the default channel.
    const roots = slack.roots('#image-gen-ops');
    assert.equal(roots.length, 1);
    assert.equal(slack.roots('#ops').length, 0);
    const root = roots[0]!;
    assert.match(root.history[0]!, /CircuitBreakerOpen/);
    assert.match(root.text, /Succeeded/);
    const posts = slack.okCalls('chat.postMessage').filter((c) => !c.args.thread_ts);
    assert.equal(posts.length, 1, 'one root message');
    // Updates only after the post, and the thread's replies in order.
    const firstUpdate = slack.okCalls('chat.update')[0]!;
    assert.ok(firstUpdate.at >= posts[0]!.at);
    const expected = [/Breaker state before: open/, /Sending reset: POST/, /Reset sent: POST/, /Breaker state after: closed/, /Succeeded/, /Alert resolved/];
    // Events that came together are told in one reply: the thread tells each once, in order.
    await eventually(async () => slack.threadLines('#image-gen-ops', root.ts).length >= expected.length, 'all thread lines');
    const lines = slack.threadLines('#image-gen-ops', root.ts);
    assert.equal(lines.length, expected.length, lines.join('\n'));
    lines.forEach((t, i) => assert.match(t, expected[i]!, `line ${i}: ${t}`));
    assert.ok(slack.replies('#image-gen-ops', root.ts).every((m) => !m.reply_broadcast), 'a success is not broadcast');

    // The PagerDuty sequence is exactly acknowledge, resolve, on one key with the rule's routing key.
    const events = pd.enqueued().map((r) => ({ action: r.body.event_action, key: r.body.dedup_key, routing: r.body.routing_key, status: r.status }));
    assert.deepEqual(events, [
      { action: 'acknowledge', key: dedup, routing: ROUTING_KEY, status: 202 },
      { action: 'resolve', key: dedup, routing: ROUTING_KEY, status: 202 },
    ]);

    // Everything sent is in the audit, and no secret is.
    // (the audit row is written once the send returns: the fake may have answered a moment before)
    const audit = async () => (await svc.pool.query(`SELECT notifier, state, detail::text AS d, error FROM "${svc.config.DATABASE_SCHEMA}".notifications`)).rows;
    const sent = await eventually(async () => {
      const rows = await audit();
      return rows.filter((n) => n.notifier === 'pagerduty' && n.state === 'sent').length >= 2 ? rows : undefined;
    }, 'both PagerDuty events in the notification audit');
    assert.ok(sent.some((n) => n.notifier === 'slack' && n.state === 'sent'));
    assert.equal(sent.filter((n) => n.notifier === 'pagerduty' && n.state === 'sent').length, 2);
    for (const n of sent) {
      assert.ok(!`${n.d}${n.error}`.includes(ROUTING_KEY) && !`${n.d}${n.error}`.includes(slack.token), 'no secret in the notification audit');
    }
  });

  test('a failed fix is broadcast in Slack and pages PagerDuty with the reason', async () => {
    breaker.state = 'open';
    breaker.stuck = true;
    try {
      const labels = { alertname: 'CircuitBreakerOpen', severity: 'critical', service: 'image-gen', instance: 'b' };
      await am.postAlerts([{ labels, annotations: { summary: 'still open' } }]);
      const run = await eventually(async () => (await runs()).find((r) => r.state === 'failed'), 'run failed', 30_000);
      assert.equal(run.error_reason, 'verification_failed');
      const trigger = await eventually(async () => pd.enqueued().find((r) => r.body.event_action === 'trigger'), 'PagerDuty trigger', 30_000);
      assert.equal(trigger.body.payload.severity, 'critical');
      assert.match(trigger.body.payload.summary, /Auto-remediation failed/);
      assert.match(trigger.body.payload.summary, /still open/);
      const broadcast = await eventually(
        async () => slack.okCalls('chat.postMessage').find((c) => c.args.thread_ts && c.args.reply_broadcast === true),
        'failure broadcast in Slack',
      );
      assert.match(String(broadcast.args.text), /Remediation failed/);
    } finally {
      breaker.stuck = false;
    }
  });
});
