import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakeSlack } from '../fakes/slack.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/**
 * PagerDuty V3 webhooks as PagerDuty signs and sends them: a person acknowledging one of our
 * incidents holds automation off that alert group until the incident resolves.
 * https://developer.pagerduty.com/docs/webhooks/v3-overview/ (envelope), .../webhook-signatures/ (v1= HMAC-SHA256 hex)
 */
const SECRET = 'pd-webhook-secret-0123456789';
let breaker: FakeBreaker;
let slack: FakeSlack;
let svc: TestService;
let seq = 0;
const schema = () => `"${svc.config.DATABASE_SCHEMA}"`;

const sign = (body: string, secret = SECRET) => `v1=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** A V3 webhook event envelope for an incident, as PagerDuty sends it. */
function incidentEvent(type: 'incident.acknowledged' | 'incident.resolved', incidentKey: string, agent: 'user_reference' | 'service_reference') {
  const id = `P${(++seq).toString().padStart(6, '0')}`;
  return {
    event: {
      id: randomUUID(),
      event_type: type,
      resource_type: 'incident',
      occurred_at: new Date().toISOString(),
      agent: agent === 'user_reference'
        ? { html_url: 'https://acme.pagerduty.com/users/PUSER01', id: 'PUSER01', self: 'https://api.pagerduty.com/users/PUSER01', summary: 'Alice Oncall', type: 'user_reference' }
        : { html_url: 'https://acme.pagerduty.com/services/PSVC001', id: 'PSVC001', self: 'https://api.pagerduty.com/services/PSVC001', summary: 'Payments', type: 'service_reference' },
      client: { name: 'PagerDuty' },
      data: {
        id, type: 'incident', self: `https://api.pagerduty.com/incidents/${id}`, html_url: `https://acme.pagerduty.com/incidents/${id}`, number: 1000 + seq,
        status: type === 'incident.acknowledged' ? 'acknowledged' : 'resolved', incident_key: incidentKey, created_at: new Date().toISOString(),
        title: 'Breaker open', service: { id: 'PSVC001', type: 'service_reference', summary: 'Payments' }, assignees: [], escalation_policy: { id: 'PEP0001', type: 'escalation_policy_reference' },
        teams: [], priority: null, urgency: 'high', conference_bridge: null, resolve_reason: null,
      },
    },
  };
}

const send = (body: string, signature: string | undefined) =>
  fetch(`${svc.url}/webhooks/pagerduty`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'PagerDuty-Webhook/V3.0', ...(signature ? { 'x-pagerduty-signature': signature } : {}) },
    body,
  });

const finalRun = (fingerprint: string, startsAt: string) =>
  eventually(async () => {
    const { rows } = await svc.pool.query(`SELECT * FROM ${schema()}.runs WHERE fingerprint = $1 AND starts_at = $2`, [fingerprint, startsAt]);
    return rows[0] && !['queued', 'running', 'retrying'].includes(rows[0].state) && rows[0];
  }, `final run of ${fingerprint}`, 20_000);

before(async () => {
  breaker = await new FakeBreaker().start();
  slack = await new FakeSlack().start();
  svc = await startTestService({
    env: { BREAKER_TOKEN: breaker.token, PAGERDUTY_WEBHOOK_SECRET: SECRET, SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_CHANNEL: '#ops' },
    rules: {
      'r.yml': `
targets:${breaker.targetYaml('svc')}
rules:
  - name: reset
    match: ['alertname="Held"']
    action: breaker-reset
    target: svc
    params: { poll_interval: 20ms }
`,
    },
  });
});
after(async () => {
  await svc.close();
  await breaker.stop();
  await slack.stop();
});

describe('POST /webhooks/pagerduty', () => {
  const fingerprint = 'feed000000000001';
  const hook = (startsAt: string) => firingWebhook('Held', fingerprint, { startsAt });
  const key = createHash('sha256').update(hook('x').groupKey).digest('hex'); // sha256(groupKey): our dedup key

  test('a person acknowledges: later runs for the alert group are skipped (human_ack) and Slack hears it; resolve lifts the hold', async () => {
    breaker.state = 'open';
    const t1 = new Date().toISOString();
    assert.equal((await postWebhook(svc.url, hook(t1))).status, 200);
    const first = await finalRun(fingerprint, t1);
    assert.equal(first.state, 'succeeded');

    // remediator's own Events API acknowledgment comes back with a service agent: not a hold.
    const ours = JSON.stringify(incidentEvent('incident.acknowledged', key, 'service_reference'));
    const r0 = await send(ours, sign(ours));
    assert.equal(r0.status, 200);
    assert.match(((await r0.json()) as { ignored: string }).ignored, /not a person/);

    const ack = JSON.stringify(incidentEvent('incident.acknowledged', key, 'user_reference'));
    const r1 = await send(ack, `v1=${'0'.repeat(64)},${sign(ack)}`); // several signatures (secret rotation): one matches
    assert.equal(r1.status, 200, await r1.clone().text());
    assert.equal(((await r1.json()) as { run: string }).run, first.job_id);

    const channel = slack.channelId('#ops');
    await eventually(async () => slack.roots(channel).some((m) => slack.replies(channel, m.ts).some((r) => /Alice Oncall acknowledged PagerDuty incident #\d+: hands off/.test(r.text))), 'the hold said in the run\'s Slack thread');

    breaker.state = 'open';
    const resets = breaker.resets;
    const t2 = new Date().toISOString();
    assert.equal((await postWebhook(svc.url, hook(t2))).status, 200);
    const held = await finalRun(fingerprint, t2);
    assert.equal(held.state, 'skipped');
    assert.equal(held.error_reason, 'human_ack');
    assert.match(held.summary, /Hands off: Alice Oncall acknowledged PagerDuty incident #\d+/);
    assert.equal(breaker.resets, resets);

    const resolved = JSON.stringify(incidentEvent('incident.resolved', key, 'user_reference'));
    assert.equal((await send(resolved, sign(resolved))).status, 200);
    // A replay of the acknowledgment (valid signature, same event id) changes nothing.
    const replay = await send(ack, sign(ack));
    assert.equal(replay.status, 200);
    assert.ok(((await replay.json()) as { duplicate?: string }).duplicate);

    const t3 = new Date().toISOString();
    assert.equal((await postWebhook(svc.url, hook(t3))).status, 200);
    const again = await finalRun(fingerprint, t3);
    assert.notEqual(again.error_reason, 'human_ack');
    assert.ok(again.started_at);
    const actions = (await svc.pool.query(`SELECT kind, by_whom FROM ${schema()}.operator_actions ORDER BY id`)).rows;
    assert.deepEqual(actions.map((a) => [a.kind, a.by_whom]), [['human_ack', 'pagerduty:PUSER01'], ['human_ack_released', 'pagerduty:PUSER01']]);
  });

  test('bad, missing or wrong-secret signatures are 401 and change nothing', async () => {
    const ack = JSON.stringify(incidentEvent('incident.acknowledged', key, 'user_reference'));
    for (const sig of [undefined, 'v1=nothex', sign(ack, 'another-secret'), sign(`${ack} `), sign(ack).replace('v1=', 'v0=')]) {
      const r = await send(ack, sig);
      assert.equal(r.status, 401, String(sig));
    }
    const holds = (await svc.pool.query(`SELECT count(*)::int AS n FROM ${schema()}.operator_actions WHERE kind = 'human_ack'`)).rows[0].n;
    assert.equal(holds, 1, 'only the first test\'s acknowledgment');
  });

  test('an incident that is not ours is ignored; a malformed envelope is a 400 naming the field', async () => {
    const other = JSON.stringify(incidentEvent('incident.acknowledged', 'someone-elses-key', 'user_reference'));
    const r = await send(other, sign(other));
    assert.equal(r.status, 200);
    assert.match(((await r.json()) as { ignored: string }).ignored, /not an incident of ours/);
    const bad = JSON.stringify({ event: { id: 'x', event_type: 'incident.acknowledged' } });
    const rb = await send(bad, sign(bad));
    assert.equal(rb.status, 400);
    assert.match(((await rb.json()) as { error: string }).error, /^event\.resource_type: /);
  });
});
