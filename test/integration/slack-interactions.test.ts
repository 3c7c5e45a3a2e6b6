import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakeSlack } from '../fakes/slack.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/**
 * Slack interactivity requests built as Slack builds them: application/x-www-form-urlencoded with
 * a `payload` JSON field, X-Slack-Request-Timestamp, and X-Slack-Signature = v0=HMAC-SHA256 hex of
 * "v0:<timestamp>:<raw body>" with the signing secret.
 * https://api.slack.com/authentication/verifying-requests-from-slack
 */
const SIGNING_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
let breaker: FakeBreaker;
let slack: FakeSlack;
let svc: TestService;
let n = 0;
const schema = () => `"${svc.config.DATABASE_SCHEMA}"`;

function blockActions(user: string, actionId: string, value: string) {
  n++;
  return {
    type: 'block_actions',
    user: { id: user, username: 'alice', name: 'alice', team_id: 'T0001' },
    api_app_id: 'A0001',
    token: 'verification-token-unused',
    container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0001', is_ephemeral: false },
    trigger_id: `${1000 + n}.1111.${'ab'.repeat(16)}`,
    team: { id: 'T0001', domain: 'acme' },
    channel: { id: 'C0001', name: 'ops' },
    message: { type: 'message', ts: '1700000000.000100', text: 'run' },
    response_url: 'https://hooks.slack.com/actions/T0001/1/abc',
    actions: [{ action_id: actionId, block_id: 'remediator_run_actions', text: { type: 'plain_text', text: 'Pause this rule' }, value, style: 'danger', type: 'button', action_ts: `${Date.now() / 1000}` }],
  };
}

function signed(payload: unknown, o: { secret?: string; ts?: number } = {}) {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = String(o.ts ?? Math.floor(Date.now() / 1000));
  const sig = `v0=${createHmac('sha256', o.secret ?? SIGNING_SECRET).update(`v0:${ts}:${body}`).digest('hex')}`;
  return { body, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': sig } };
}
const post = (r: { body: string; headers: Record<string, string> }) => fetch(`${svc.url}/slack/interactions`, { method: 'POST', headers: r.headers, body: r.body });

const finalRun = (fingerprint: string) =>
  eventually(async () => {
    const { rows } = await svc.pool.query(`SELECT * FROM ${schema()}.runs WHERE fingerprint = $1`, [fingerprint]);
    return rows[0] && !['queued', 'running', 'retrying'].includes(rows[0].state) && rows[0];
  }, `final run of ${fingerprint}`, 20_000);
const pauses = async () => (await svc.pool.query(`SELECT kind, scope, by_whom FROM ${schema()}.operator_actions ORDER BY id`)).rows;

before(async () => {
  breaker = await new FakeBreaker().start();
  slack = await new FakeSlack().start();
  svc = await startTestService({
    env: { BREAKER_TOKEN: breaker.token, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_CHANNEL: '#ops' },
    rules: {
      'r.yml': `
targets:${breaker.targetYaml('svc')}
rules:
  - name: reset
    match: ['alertname="Clicky"']
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

describe('POST /slack/interactions', () => {
  let jobId = '';

  test('a run message carries "Pause this rule"; a signed click pauses the rule, says so in the thread, and the next run is skipped (paused)', async () => {
    breaker.state = 'open';
    assert.equal((await postWebhook(svc.url, firingWebhook('Clicky', 'c11c000000000001'))).status, 200);
    const run = await finalRun('c11c000000000001');
    jobId = run.job_id;
    const channel = slack.channelId('#ops');
    const root = await eventually(async () => slack.roots(channel).find((m) => JSON.stringify(m.blocks ?? []).includes(jobId)), 'root with the button');
    const button = (root.blocks as { type: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.type === 'actions')!.elements![0]!;
    assert.equal(button.action_id, 'remediator_pause_rule');
    assert.equal(button.value, jobId);

    const click = signed(blockActions('U123', button.action_id, button.value));
    const r = await post(click);
    assert.equal(r.status, 200, await r.clone().text());
    assert.deepEqual(await r.json(), { paused: 'rule:reset' });
    assert.deepEqual(await pauses(), [{ kind: 'pause', scope: 'rule:reset', by_whom: 'slack:U123' }]);
    await eventually(async () => slack.replies(channel, root.ts).some((m) => /Slack user U123 paused rule reset from Slack/.test(m.text)), 'thread reply');

    // A replay of the very same request, inside the 5-minute window: 401, nothing changes.
    const replay = await post(click);
    assert.equal(replay.status, 401);
    assert.equal((await pauses()).length, 1);

    breaker.state = 'open';
    assert.equal((await postWebhook(svc.url, firingWebhook('Clicky', 'c11c000000000002'))).status, 200);
    const next = await finalRun('c11c000000000002');
    assert.equal(next.state, 'skipped');
    assert.equal(next.error_reason, 'paused');
    assert.match(next.summary, /by slack:U123/);
  });

  test('bad signature, wrong secret, stale or future timestamp, missing headers: 401 and nothing changes', async () => {
    const payload = () => blockActions('U999', 'remediator_pause_rule', jobId);
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      signed(payload(), { secret: 'not-the-secret' }),
      signed(payload(), { ts: now - 6 * 60 }), // older than 5 minutes, correctly signed
      signed(payload(), { ts: now + 6 * 60 }),
      (() => { const s = signed(payload()); return { ...s, body: s.body.replace('U999', 'U998') }; })(), // body changed after signing
      (() => { const s = signed(payload()); return { ...s, headers: { 'content-type': s.headers['content-type'] } }; })(),
    ];
    for (const c of cases) assert.equal((await post(c as { body: string; headers: Record<string, string> })).status, 401);
    assert.equal((await pauses()).length, 1);
  });

  test('a signed request whose payload is not a block_actions payload is a 400 naming the field', async () => {
    const r = await post(signed({ type: 'block_actions', user: { id: 'U1' }, actions: [] }));
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: string }).error, /^payload\.trigger_id: /);
  });
});
