import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { AuditStore, type RunState } from '../../src/store/journal-store.js';
import { silentLogger } from '../../src/log.js';
import type { EventSink, RunEvent } from '../../src/notifiers/events.js';
import { queueSink } from '../../src/notifiers/sink.js';
import { createSlackClient, createSlackNotifier } from '../../src/notifiers/slack.js';
import { NotifyNotYetError, NotifyRetryAfterError, type Notifier } from '../../src/notifiers/types.js';
import { startNotificationWorker } from '../../src/workers/notification.js';
import { makeQueue, QUEUES } from '../../src/redis/connection.js';
import type { AlertInfo } from '../../src/core/alert.js';
import type { NotifySpec } from '../../src/rules/schema.js';
import type { JobSpec } from '../../src/core/run.js';
import { FakeSlack } from '../fakes/slack.js';
import { testSchema } from '../helpers/pg.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `slacktest-${randomBytes(4).toString('hex')}`;
const DEFAULT_CHANNEL = '#remediations';
const GAP_WAIT_MS = 1500;

let db: Awaited<ReturnType<typeof testSchema>>;
let fake: FakeSlack;
let conn: Redis;
let workerConn: Redis;
let queue: Queue;
let worker: Worker;
let audit: AuditStore;
let sink: EventSink;
let notifier: Notifier;

before(async () => {
  db = await testSchema('slacktest');
  fake = await new FakeSlack().start();
  conn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  workerConn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  audit = new AuditStore(db.pool, db.schema);
  const client = createSlackClient({ token: fake.token, apiUrl: fake.url, timeoutMs: 1000 });
  notifier = createSlackNotifier({ client, defaultChannel: DEFAULT_CHANNEL, audit, pool: db.pool, schema: db.schema, gapWaitMs: GAP_WAIT_MS, pendingWaitMs: 20_000 });
  queue = makeQueue(QUEUES.notify('slack'), conn, PREFIX);
  sink = queueSink({ connection: conn, prefix: PREFIX, targets: [{ notifier, queue }] });
  worker = startNotificationWorker({ notifier, connection: workerConn, prefix: PREFIX, audit, log: silentLogger, concurrency: 4, backoff: () => 300 });
});

after(async () => {
  await worker?.close();
  await queue?.obliterate({ force: true });
  await queue?.close();
  const keys = await conn.keys(`${PREFIX}:*`);
  if (keys.length) await conn.del(...keys);
  await conn?.quit();
  await workerConn?.quit();
  await fake?.stop();
  await db?.drop();
});

/** Drives one run the way the ingest and remediation workers do: audit first, then publish. */
function newRun(o: { channel?: string; slack?: NotifySpec['slack']; dryRun?: boolean } = {}) {
  const jobId = randomBytes(20).toString('hex');
  const alert: AlertInfo = {
    fingerprint: randomBytes(8).toString('hex'), status: 'firing', startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z',
    labels: { alertname: 'HighErrorRate', severity: 'critical', namespace: 'shop', deployment: 'checkout' },
    annotations: { summary: 'checkout 5xx > 5%', runbook_url: 'https://runbooks.example/checkout' },
    generatorURL: 'http://prometheus.local/graph?g0.expr=rate',
  };
  const spec: JobSpec = {
    jobId, rule: 'restart-checkout', action: 'rollout-restart', target: 'shop-checkout', params: {}, dryRun: o.dryRun ?? false, alert,
    groupKey: '{}:{alertname="HighErrorRate"}', receiver: 'remediate', externalURL: 'http://vm:9093', receivedAt: new Date().toISOString(),
  };
  const notify: NotifySpec = { slack: o.slack ?? (o.channel ? { channel: o.channel } : {}) };
  const event = (type: RunEvent['type'], message: string, extra: Partial<RunEvent> = {}): RunEvent => ({
    type, message, jobId, rule: spec.rule, action: spec.action, target: spec.target, alert, groupKey: spec.groupKey, receiver: spec.receiver,
    externalURL: spec.externalURL, dryRun: spec.dryRun, notify, at: new Date().toISOString(), ...extra,
  });
  const end = async (state: RunState, attempt: number, summary: string, extra: { reason?: string; error?: string } = {}) => {
    await audit.runEnded(spec, { state, attempt, summary, at: new Date(), ...extra });
    await sink.publish(event(state === 'retrying' ? 'retrying' : (state as RunEvent['type']), summary, { attempt, reason: extra.reason as RunEvent['reason'] }));
  };
  return {
    jobId, spec, event,
    queued: async () => {
      await audit.recordIngest({ receivedAt: spec.receivedAt, receiver: spec.receiver, groupKey: spec.groupKey, externalURL: spec.externalURL,
        alerts: [{ alert, decisions: [{ decision: 'enqueued', rule: spec.rule, jobId, job: spec }] }] });
      await sink.publish(event('queued', `Queued by rule ${spec.rule}.`));
    },
    running: async (attempt: number) => {
      await audit.runStarted(spec, attempt, new Date(), new Date());
      await sink.publish(event('running', `Attempt ${attempt} of 3 started.`, { attempt }));
    },
    step: async (attempt: number, message: string, details?: Record<string, unknown>) => {
      await audit.addEvent(jobId, 'step', attempt, message, details);
      await sink.publish(event('step', message, { attempt, details }));
    },
    end,
    resolved: async () => {
      await audit.markAlertResolved(jobId, new Date().toISOString());
      await sink.publish(event('alert_resolved', 'Alert resolved in Alertmanager.'));
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

type NotificationRow = { seq: number; state: string; attempt: number; error: string | null; detail: Record<string, unknown> | null; event_type: string };
async function notifications(jobId: string): Promise<NotificationRow[]> {
  const { rows } = await db.pool.query<NotificationRow>(
    `SELECT seq, state, attempt, error, detail, event_type FROM "${db.schema}".notifications WHERE job_id = $1 AND notifier = 'slack' ORDER BY id`, [jobId]);
  return rows;
}
/** Waits until `n` events of the run are sent (or failed, with `final`). */
const settled = (jobId: string, n: number, states = ['sent'], ms?: number) =>
  until(`${n} ${states.join('/')} notifications for ${jobId}`, async () => {
    const rows = await notifications(jobId);
    return new Set(rows.filter((r) => states.includes(r.state)).map((r) => r.seq)).size >= n && rows;
  }, ms);
async function thread(jobId: string) {
  const { rows } = await db.pool.query<{ channel_id: string; root_ts: string }>(`SELECT channel_id, root_ts FROM "${db.schema}".slack_threads WHERE job_id = $1`, [jobId]);
  return rows[0];
}
const rank = (text: string) => ['Queued', 'Running', 'Succeeded'].findIndex((w) => text.includes(w));

describe('Slack notifier through the notification queue', () => {
  test('a run gets one root, edited in place to its final state, and its details as replies in order', async () => {
    const ch = '#happy';
    const r = newRun({ channel: ch });
    // Paced like a real run: each state change happens after the previous event reached Slack.
    let n = 0;
    const paced = async (publish: () => Promise<void>) => {
      await publish();
      await settled(r.jobId, ++n);
    };
    await paced(() => r.queued());
    await paced(() => r.running(1));
    await paced(() => r.step(1, 'Restarted deployment shop/checkout', { generation: 7 }));
    await paced(() => r.step(1, 'Rollout progress', { updated: 3, available: 3, replicas: 3 }));
    await paced(() => r.end('succeeded', 1, 'Rollout complete: 3/3 available.'));
    await paced(() => r.resolved());
    const rows = await notifications(r.jobId);
    assert.deepEqual(rows.map((x) => x.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);

    const rootPosts = fake.okCalls('chat.postMessage', ch).filter((c) => !c.args.thread_ts);
    assert.equal(rootPosts.length, 1, 'exactly one root message');
    const { channel_id, root_ts } = (await thread(r.jobId))!;
    assert.equal(rootPosts[0]!.ts, root_ts);
    const [root] = fake.roots(ch);
    assert.match(root!.text, /Succeeded/);
    assert.match(root!.text, /Alert resolved/);
    assert.match(JSON.stringify(root!.blocks), /runbooks\.example\/checkout/);
    // Posted as queued, then one chat.update per change of state (steps change nothing in the root).
    assert.deepEqual(root!.history.map((t) => [rank(t), /Alert resolved/.test(t)]), [[0, false], [1, false], [2, false], [2, true]], root!.history.join(' | '));

    const forRun = fake.calls.filter((c) => c.args.channel === ch || c.args.channel === channel_id);
    assert.equal(forRun[0], rootPosts[0], 'the root is the first call of the thread');
    const updates = fake.okCalls('chat.update', ch);
    assert.equal(updates.length, 3);
    assert.ok(updates.every((u) => u.args.ts === root_ts && u.args.channel === channel_id && u.at >= rootPosts[0]!.at));

    const replies = fake.replies(ch, root_ts);
    const expected = [/^:small_blue_diamond: Attempt 1: Restarted deployment/, /Attempt 1: Rollout progress/, /^:white_check_mark: \*Succeeded\*: Rollout complete/, /^:large_green_circle: Alert resolved/];
    assert.equal(replies.length, expected.length, replies.map((m) => m.text).join(' | '));
    replies.forEach((m, i) => assert.match(m.text, expected[i]!));
    assert.ok(replies.every((m) => !m.reply_broadcast));
    assert.match(JSON.stringify(replies[1]!.blocks), /available: `3`/);
  });

  test('lone surrogates and NUL in alert text or a step are sent as U+FFFD, not retried forever', async () => {
    const ch = '#hostile';
    const r = newRun({ channel: ch });
    r.spec.alert.labels.deployment = 'checkout\ud800';
    r.spec.alert.annotations.summary = 'bad \udfff summary \u0000';
    await r.queued();
    await r.running(1);
    await r.step(1, 'Target answered \ud83d and \u0000', { body: 'x\udc00' });
    await r.end('succeeded', 1, 'Done \ud800.');
    await settled(r.jobId, 4).catch(async (e) => assert.fail(`${e.message}: ${JSON.stringify(await notifications(r.jobId))}`));
    const rows = await notifications(r.jobId);
    assert.ok(rows.every((x) => x.state === 'sent'), JSON.stringify(rows.filter((x) => x.state !== 'sent')));
    const { root_ts } = (await thread(r.jobId))!;
    const replies = fake.replies(ch, root_ts);
    assert.match(replies[0]!.text, /Target answered \ufffd and \ufffd/);
    assert.match(fake.roots(ch)[0]!.text, /Done \ufffd\./);
    assert.doesNotMatch(JSON.stringify(fake.calls.filter((c) => c.args.channel === ch).map((c) => c.args)), /\\ud[89a-f]|\\u0000/i);
  });

  test('retries show in the thread and the final failure is broadcast to the channel', async () => {
    const ch = '#failing';
    const r = newRun({ channel: ch });
    await r.queued();
    await r.running(1);
    await r.step(1, 'Patched deployment');
    await r.end('retrying', 1, 'Attempt 1 of 2 failed: rollout stuck. Retrying.', { reason: 'timeout', error: 'rollout stuck' });
    await r.running(2);
    await r.end('failed', 2, 'Failed after 2 attempts: 403 forbidden', { reason: 'forbidden', error: '403 forbidden' });
    await settled(r.jobId, 6);
    const { root_ts } = (await thread(r.jobId))!;
    const replies = fake.replies(ch, root_ts);
    assert.equal(replies.length, 3);
    assert.match(replies[1]!.text, /Attempt 1 of 2 failed/);
    assert.match(replies[2]!.text, /Remediation failed\* for HighErrorRate on shop-checkout/);
    assert.deepEqual(replies.map((m) => m.reply_broadcast), [false, false, true]);
    assert.match(fake.roots(ch)[0]!.text, /Failed: needs a human/);
  });

  test('notify-only is escalated and broadcast; dry runs and cooldown skips say so', async () => {
    const n = newRun({ channel: '#notify' });
    await n.queued();
    await n.running(1);
    await n.end('notified', 1, 'No automatic fix for this alert: escalated to on-call.');
    const d = newRun({ channel: '#dry', dryRun: true });
    await d.queued();
    await d.running(1);
    await d.end('dry_run', 1, 'Would restart shop/checkout.');
    const k = newRun({ channel: '#cool' });
    await k.queued();
    await k.end('skipped', 1, 'Cooldown: rule already ran on shop-checkout.', { reason: 'cooldown' });
    await Promise.all([settled(n.jobId, 3), settled(d.jobId, 3), settled(k.jobId, 2)]);

    assert.match(fake.roots('#notify')[0]!.text, /No automatic fix: escalated/);
    const nr = fake.replies('#notify', (await thread(n.jobId))!.root_ts);
    assert.equal(nr.length, 1);
    assert.equal(nr[0]!.reply_broadcast, true);
    assert.match(fake.roots('#dry')[0]!.text, /Dry run: nothing was changed/);
    assert.match(JSON.stringify(fake.roots('#dry')[0]!.blocks), /\[DRY RUN\] HighErrorRate/);
    assert.match(fake.roots('#cool')[0]!.text, /Skipped \(cooldown\)/);
  });

  test('a 429 burst delays delivery but loses nothing', async () => {
    const ch = '#burst';
    fake.fail({ kind: 'ratelimited', count: 3, retryAfter: 1, channel: ch });
    const r = newRun({ channel: ch });
    await r.queued();
    await r.running(1);
    await r.step(1, 'Reset the breaker', { before: 'open', after: 'closed' });
    await r.end('succeeded', 1, 'Breaker closed.');
    const rows = await settled(r.jobId, 4, ['sent'], 30_000);
    const limited = fake.calls.filter((c) => c.status === 429 && (c.args.channel === ch || c.args.channel === fake.channelId(ch)));
    assert.equal(limited.length, 3);
    assert.ok(rows.filter((x) => x.state === 'retrying').every((x) => x.detail?.retryAfterMs === 1000));
    assert.ok(rows.some((x) => x.state === 'retrying'));
    const firstOk = fake.calls.find((c) => !c.error && c.args.channel === ch)!;
    assert.ok(firstOk.at - limited[0]!.at >= 900, 'waited for Retry-After');
    assert.equal(fake.roots(ch).length, 1);
    assert.match(fake.roots(ch)[0]!.text, /Succeeded/);
    const replies = fake.replies(ch, (await thread(r.jobId))!.root_ts);
    assert.deepEqual(replies.map((m) => /Reset the breaker|Succeeded/.exec(m.text)?.[0]), ['Reset the breaker', 'Succeeded']);
  });

  test("one channel's rate limit does not hold up another channel", async () => {
    fake.fail({ kind: 'ratelimited', count: 1, retryAfter: 3, channel: '#limited' });
    const a = newRun({ channel: '#limited' });
    const b = newRun({ channel: '#free' });
    await a.queued();
    await b.queued();
    await b.running(1);
    await b.end('succeeded', 1, 'Done.');
    await Promise.all([settled(a.jobId, 1, ['sent'], 20_000), settled(b.jobId, 3)]);
    const limitedAt = fake.calls.find((c) => c.status === 429 && c.args.channel === '#limited')!.at;
    const aFirstOk = fake.okCalls('chat.postMessage', '#limited')[0]!.at;
    const bLast = Math.max(...fake.calls.filter((c) => !c.error && fake.channelId(String(c.args.channel)) === fake.channelId('#free')).map((c) => c.at));
    assert.ok(aFirstOk - limitedAt >= 2900, 'the limited channel waited its Retry-After');
    assert.ok(bLast < aFirstOk, 'the other channel finished while the limited one waited');
  });

  test('invalid_auth is recorded as failed and not retried; the token never reaches the audit', async () => {
    const ch = '#auth';
    const saved = fake.token;
    fake.token = 'xoxb-the-other-token';
    try {
      const r = newRun({ channel: ch });
      await r.queued();
      const rows = await settled(r.jobId, 1, ['failed']);
      assert.equal(rows.length, 1);
      assert.match(rows[0]!.error!, /invalid_auth/);
      assert.equal(await queue.getJobState(`${r.jobId}-1`), 'failed');
      assert.equal(fake.calls.filter((c) => c.args.channel === ch).length, 1, 'not retried');
    } finally {
      fake.token = saved;
    }
  });

  test('channel_not_found is final, and a permanently failed event does not block the next one', async () => {
    const ch = '#gone';
    fake.missingChannels.add(ch);
    const r = newRun({ channel: ch });
    const t0 = Date.now();
    await r.queued();
    await r.running(1);
    const rows = await settled(r.jobId, 2, ['failed']);
    assert.ok(Date.now() - t0 < GAP_WAIT_MS + 5000);
    assert.deepEqual(rows.map((x) => x.state), ['failed', 'failed']);
    assert.ok(rows.every((x) => /channel_not_found/.test(x.error!) && x.detail?.error === 'channel_not_found'));
    assert.equal(fake.calls.filter((c) => c.args.channel === ch).length, 2, 'one call per event, no retry');
  });

  test('a 500 is retried until it goes through, without a duplicate', async () => {
    const ch = '#flaky';
    fake.fail({ kind: 'http500', count: 2, channel: ch });
    const r = newRun({ channel: ch });
    await r.queued();
    const rows = await settled(r.jobId, 1);
    assert.deepEqual(rows.map((x) => [x.state, x.attempt]), [['retrying', 1], ['retrying', 2], ['sent', 3]]);
    assert.match(rows[0]!.error!, /HTTP 500/);
    assert.equal(fake.roots(ch).length, 1);
  });

  test('a slow Slack times out and is retried', async () => {
    const ch = '#sluggish';
    fake.delayMs = 1500;
    try {
      const r = newRun({ channel: ch });
      await r.queued();
      await until('a slow call', async () => fake.calls.some((c) => c.args.channel === ch));
      await until('the timeout recorded', async () => (await notifications(r.jobId)).some((x) => x.state === 'retrying'));
      fake.delayMs = 0;
      const rows = await settled(r.jobId, 1);
      assert.match(rows[0]!.error!, /request failed/);
      assert.equal(fake.roots(ch).length, 1);
    } finally {
      fake.delayMs = 0;
    }
  });

  test('concurrent runs in one channel each keep their thread in order', async () => {
    const ch = '#busy';
    const runs = Array.from({ length: 4 }, () => newRun({ channel: ch }));
    await Promise.all(runs.map(async (r) => {
      await r.queued();
      await r.running(1);
      for (let i = 1; i <= 6; i++) await r.step(1, `step ${i} of 6`);
      await r.end('succeeded', 1, 'All six steps done.');
    }));
    await Promise.all(runs.map((r) => settled(r.jobId, 9, ['sent'], 30_000)));
    assert.equal(fake.roots(ch).length, 4);
    for (const r of runs) {
      const { root_ts } = (await thread(r.jobId))!;
      const texts = fake.replies(ch, root_ts).map((m) => /step \d of 6|Succeeded/.exec(m.text)?.[0]);
      assert.deepEqual(texts, [...[1, 2, 3, 4, 5, 6].map((i) => `step ${i} of 6`), 'Succeeded']);
      const root = fake.roots(ch).find((m) => m.ts === root_ts)!;
      assert.match(root.text, /Succeeded/);
      const ranks = root.history.map(rank);
      assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), `root never moves backwards: ${root.history.join(' | ')}`);
    }
  });

  test('notify.slack: false sends nothing', async () => {
    const off = newRun({ slack: false });
    await off.queued();
    await off.running(1);
    await off.end('succeeded', 1, 'Done.');
    const control = newRun(); // default channel, published after: FIFO, so `off` would have gone first
    await control.queued();
    await settled(control.jobId, 1);
    assert.equal(fake.roots(DEFAULT_CHANNEL).length, 1);
    assert.equal(await thread(off.jobId), undefined);
    assert.deepEqual(await notifications(off.jobId), []);
    assert.equal(await queue.getJob(`${off.jobId}-1`), undefined);
  });
});

describe('Slack notifier ordering and idempotency (deliver called as a retried job would)', () => {
  const ctx = { attempt: 1, log: silentLogger, signal: new AbortController().signal };
  const callsIn = (ch: string) => fake.calls.filter((c) => fake.channelId(String(c.args.channel ?? '')) === fake.channelId(ch)).length;

  test('an event waits for its predecessor, and a repeated delivery posts nothing twice', async () => {
    const ch = '#order';
    const r = newRun({ channel: ch });
    await audit.recordIngest({ receivedAt: r.spec.receivedAt, receiver: 'remediate', groupKey: r.spec.groupKey, externalURL: r.spec.externalURL,
      alerts: [{ alert: r.spec.alert, decisions: [{ decision: 'enqueued', rule: r.spec.rule, jobId: r.jobId, job: r.spec }] }] });
    const step = r.event('step', 'Terminated pids 11, 12', { seq: 2, attempt: 1, details: { pids: [11, 12] } });
    await assert.rejects(notifier.deliver(step, ctx), NotifyNotYetError);
    assert.equal(callsIn(ch), 0, 'nothing posted before the root');
    await notifier.deliver(r.event('queued', 'Queued.', { seq: 1 }), ctx);
    await notifier.deliver(step, ctx);
    const before = callsIn(ch);
    const again = await notifier.deliver(step, ctx);
    assert.equal(again?.duplicate, true);
    assert.equal(callsIn(ch), before);

    // Crash window stand-in: the reply goes out, then the root update fails; the retry must not repost the reply.
    await audit.runStarted(r.spec, 1, new Date(), new Date());
    fake.fail({ kind: 'http500', count: 1, channel: fake.channelId(ch), method: 'chat.update' });
    const step3 = r.event('step', 'Rollout 2/3', { seq: 3, attempt: 1 });
    await assert.rejects(notifier.deliver(step3, ctx), /HTTP 500/);
    await notifier.deliver(step3, ctx);
    const root = fake.roots(ch)[0]!;
    const replies = fake.replies(ch, root.ts);
    assert.equal(replies.length, 2);
    assert.match(replies[0]!.text, /Terminated pids 11, 12$/);
    assert.match(replies[1]!.text, /Rollout 2\/3$/);
    assert.match(root.text, /Running/);

    // A 429 on the reply: only a retry-after, and the root is not posted again.
    fake.fail({ kind: 'ratelimited', count: 1, retryAfter: 2, channel: fake.channelId(ch), method: 'chat.postMessage' });
    const step4 = r.event('step', 'Rollout 3/3', { seq: 4, attempt: 1 });
    await assert.rejects(notifier.deliver(step4, ctx), (e: unknown) => e instanceof NotifyRetryAfterError && e.retryAfterMs === 2000);
    await notifier.deliver(step4, ctx);
    assert.equal(fake.roots(ch).length, 1);
    assert.equal(fake.replies(ch, root.ts).length, 3);
  });

  test('two copies of one job at once (a stalled job re-run) post one root', async () => {
    const ch = '#stalled';
    const r = newRun({ channel: ch });
    const ev = r.event('queued', 'Queued.', { seq: 1 });
    fake.delayMs = 300; // keep the first delivery inside Slack while the second one starts
    try {
      const results = await Promise.allSettled([notifier.deliver(ev, ctx), notifier.deliver(ev, ctx)]);
      assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1);
      const rejected = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
      assert.ok(rejected.reason instanceof NotifyNotYetError, String(rejected.reason));
    } finally {
      fake.delayMs = 0;
    }
    assert.equal((await notifier.deliver(ev, ctx))?.duplicate, true);
    assert.equal(fake.roots(ch).length, 1);
  });

  test('a gap is waited for a bounded time, a late event is marked and cannot move the root backwards', async () => {
    const ch = '#gaps';
    const r = newRun({ channel: ch });
    await notifier.deliver(r.event('queued', 'Queued.', { seq: 1 }), ctx);
    await audit.runStarted(r.spec, 1, new Date(), new Date());
    await audit.runEnded(r.spec, { state: 'succeeded', attempt: 1, summary: 'All good.', at: new Date() });
    const done = r.event('succeeded', 'All good.', { seq: 3, attempt: 1 });
    const t0 = Date.now();
    await until('the gap to be given up', async () => {
      try {
        return (await notifier.deliver(done, ctx)) ?? {};
      } catch (err) {
        if (err instanceof NotifyNotYetError) return undefined;
        throw err;
      }
    });
    assert.ok(Date.now() - t0 >= GAP_WAIT_MS - 100, 'waited for the missing event first');
    const root = fake.roots(ch)[0]!;
    assert.match(root.text, /Succeeded/);

    const late = await notifier.deliver(r.event('step', 'Patched deployment', { seq: 2, attempt: 1 }), ctx);
    assert.equal(late?.late, true);
    const replies = fake.replies(ch, root.ts);
    assert.match(replies.at(-1)!.text, /Patched deployment/);
    assert.match(JSON.stringify(replies.at(-1)!.blocks), /delivered late/);
    assert.match(root.text, /Succeeded/, 'the root still shows the run row state');
    assert.doesNotMatch(root.history.slice(root.history.findIndex((t) => /Succeeded/.test(t))).join(' '), /Running|Queued/);

    // A predecessor whose Slack job failed for good does not hold the thread at all.
    await audit.recordNotification({ jobId: r.jobId, notifier: 'slack', eventType: 'step', seq: 4, state: 'failed', attempt: 1, error: 'msg_too_long' });
    await notifier.deliver(r.event('alert_resolved', 'Resolved.', { seq: 5 }), ctx);
    assert.match(fake.replies(ch, root.ts).at(-1)!.text, /Alert resolved/);
  });

  test('the bot token appears in no audit row', async () => {
    const { rows } = await db.pool.query(`SELECT error, detail FROM "${db.schema}".notifications`);
    assert.ok(rows.length > 10);
    assert.doesNotMatch(JSON.stringify(rows), new RegExp(fake.token));
  });
});
