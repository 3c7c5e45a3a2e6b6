import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { createHmac } from 'node:crypto';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakeSlack } from '../fakes/slack.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { runCli } from '../../src/cli.js';
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
let pd: FakePagerDuty;
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
const pauses = async () => (await svc.pool.query(`SELECT kind, scope, by_whom FROM ${schema()}.operator_actions WHERE kind = 'pause' ORDER BY id`)).rows;

before(async () => {
  pd = await new FakePagerDuty().start();
  breaker = await new FakeBreaker().start();
  slack = await new FakeSlack().start();
  svc = await startTestService({
    env: { PAGERDUTY_ROUTING_KEY: 'R0UT1NGKEY00000000000000000000CD', PAGERDUTY_EVENTS_URL: pd.url, BREAKER_TOKEN: breaker.token, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_CHANNEL: '#ops' },
    rules: {
      'r.yml': `
targets:${breaker.targetYaml('svc')}${breaker.targetYaml('svc2')}${breaker.targetYaml('svc3')}
rules:
  - name: guarded
    match: ['alertname="Guarded"']
    action: breaker-reset
    target: svc2
    params: { poll_interval: 20ms }
    approval: { approvers: [U0APPROVER, S0GROUP], timeout: 1m }
  - name: guarded-short
    match: ['alertname="GuardedShort"']
    action: breaker-reset
    target: svc3
    approval: { approvers: [U0APPROVER], timeout: 1s }
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
  await pd.stop();
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

describe('approval in Slack', () => {
  const waiting = (fingerprint: string) =>
    eventually(async () => {
      const { rows } = await svc.pool.query(
        `SELECT r.job_id, r.state FROM ${schema()}.runs r JOIN ${schema()}.run_events e USING (job_id) WHERE r.fingerprint = $1 AND e.message LIKE 'Approval needed%'`, [fingerprint]);
      return rows[0] as { job_id: string; state: string } | undefined;
    }, `approval request of ${fingerprint}`);

  test('the request shows what, where, why and the last runs; a non-approver is refused; a user-group member approves; the message is updated and the run acts', async () => {
    slack.userGroups.set('S0GROUP', ['U0GROUPIE']);
    breaker.state = 'open';
    const resets = breaker.resets;
    assert.equal((await postWebhook(svc.url, firingWebhook('Guarded', 'a99000000000001'))).status, 200);
    const { job_id: jobId } = await waiting('a99000000000001');
    const channel = slack.channelId('#ops');
    const reply = await eventually(async () => slack.roots(channel).flatMap((r) => slack.replies(channel, r.ts)).find((m) => m.text.includes('Approval needed')), 'approval message');
    assert.match(reply.text, /Approval needed: breaker-reset on svc2 \(rule guarded\) because: test\. Last runs: no earlier runs\. Approvers: U0APPROVER, S0GROUP\. Expires at /);
    const buttons = (reply.blocks as { type: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.type === 'actions')!.elements!;
    assert.deepEqual(buttons.map((b) => [b.action_id, b.value]), [['remediator_approve', jobId], ['remediator_reject', jobId]]);

    const container = { type: 'message', message_ts: reply.ts, channel_id: channel, is_ephemeral: false };
    const stranger = await post(signed({ ...blockActions('U0RANDOM', 'remediator_approve', jobId), container }));
    assert.equal(stranger.status, 200);
    assert.match(((await stranger.json()) as { refused: string }).refused, /U0RANDOM is not an approver/);
    assert.equal(breaker.resets, resets, 'nothing ran on a refused click');

    const ok = await post(signed({ ...blockActions('U0GROUPIE', 'remediator_approve', jobId), container }));
    assert.deepEqual(await ok.json(), { decision: 'approved' });
    const run = await finalRun('a99000000000001');
    assert.equal(run.state, 'succeeded');
    assert.ok(breaker.resets > resets);
    const updated = slack.roots(channel).flatMap((r) => slack.replies(channel, r.ts)).find((m) => m.ts === reply.ts)!;
    assert.match(updated.text, /Approved by Slack user U0GROUPIE at .*breaker-reset on svc2 \(rule guarded\)/);
    const decided = (await svc.pool.query(`SELECT kind, by_whom FROM ${schema()}.operator_actions WHERE scope = $1`, [`run:${jobId}`])).rows;
    assert.deepEqual(decided, [{ kind: 'approval_approved', by_whom: 'slack:U0GROUPIE' }]);
  });

  test('a run waiting for approval holds no worker slot and costs nothing; an approval starts it within a second, not at its expiry', async () => {
    breaker.state = 'open';
    assert.equal((await postWebhook(svc.url, firingWebhook('Guarded', 'a99000000000009'))).status, 200);
    const { job_id: jobId } = await waiting('a99000000000009');
    const queue = new Queue('remediations', { connection: { url: svc.config.REDIS_URL }, prefix: svc.config.QUEUE_PREFIX });
    try {
      await eventually(async () => (await queue.getJob(jobId))?.isDelayed(), 'the job waits as a delayed job');
      const counts = await queue.getJobCounts('active', 'delayed');
      assert.equal(counts.active, 0, 'no worker slot held while it waits');
      // Not polled: over a few seconds of waiting the job was taken by a worker once (when it asked), never again.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal((await queue.getJob(jobId))!.attemptsStarted, 1, 'the waiting run re-entered no worker');
      const r = await fetch(`${svc.url}/api/runs/${jobId}/approve`, { method: 'POST', headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' }, body: JSON.stringify({ by: 'carol' }) });
      assert.equal(r.status, 200);
      const run = await finalRun('a99000000000009');
      assert.equal(run.state, 'succeeded');
      const { rows } = await svc.pool.query(`SELECT state, at FROM ${schema()}.run_events WHERE job_id = $1 AND state IN ('approved', 'running') ORDER BY id`, [jobId]);
      const approvedAt = rows.find((e) => e.state === 'approved')!.at.getTime();
      const startedAt = rows.find((e) => e.state === 'running')!.at.getTime();
      assert.ok(startedAt - approvedAt < 1000, `started ${startedAt - approvedAt} ms after the approval`);
    } finally {
      await queue.close();
    }
  });

  test('rejected through the admin API: skipped (rejected); a second decision (CLI) is refused', async () => {
    assert.equal((await postWebhook(svc.url, firingWebhook('Guarded', 'a99000000000002'))).status, 200);
    const { job_id: jobId } = await waiting('a99000000000002');
    const r = await fetch(`${svc.url}/api/runs/${jobId}/reject`, { method: 'POST', headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' }, body: JSON.stringify({ by: 'dave' }) });
    assert.equal(r.status, 200, await r.clone().text());
    const run = await finalRun('a99000000000002');
    assert.equal(run.state, 'skipped');
    assert.equal(run.error_reason, 'rejected');
    assert.match(run.summary, /Rejected by admin-api:dave/);
    const out: string[] = [];
    const err: string[] = [];
    const env = { DATABASE_URL: svc.config.DATABASE_URL, DATABASE_SCHEMA: svc.config.DATABASE_SCHEMA, REDIS_URL: svc.config.REDIS_URL, QUEUE_PREFIX: svc.config.QUEUE_PREFIX };
    assert.equal(await runCli(['approve', jobId, '--by', 'erin'], { out: (l) => out.push(l), err: (l) => err.push(l), env }), 1);
    assert.match(err[0]!, /already rejected by admin-api:dave/);
  });

  test('nobody answers: the request expires, the run is skipped (approval_expired) and PagerDuty is triggered', async () => {
    assert.equal((await postWebhook(svc.url, firingWebhook('GuardedShort', 'a99000000000003'))).status, 200);
    const run = await finalRun('a99000000000003');
    assert.equal(run.state, 'skipped');
    assert.equal(run.error_reason, 'approval_expired');
    await eventually(async () => pd.enqueued().some((e) => e.body.event_action === 'trigger' && e.body.payload?.class === 'approval_expired'), 'expiry page');
  });
});
