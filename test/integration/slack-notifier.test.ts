import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobSpec } from '../../src/core/run.js';
import { FakeSlack } from '../fakes/slack.js';
import { notifyHarness, type NotifyHarness } from '../helpers/notify-harness.js';
import { eventually } from '../helpers/service.js';

const RULES = `
rules:
  - name: checkout-breaker
    match: ['alertname="HighErrorRate"']
    action: notify
    notify: { slack: { channel: '#checkout' }, pagerduty: false }
  - name: other-channel
    match: ['alertname="Other"']
    action: notify
    notify: { slack: { channel: '#other' }, pagerduty: false }
  - name: silent
    match: ['alertname="Silent"']
    action: notify
    notify: { slack: false, pagerduty: false }
  - name: storming
    match: ['alertname="Storm"']
    action: notify
    notify: { slack: { channel: '#storm' }, pagerduty: false }
`;

/** The Slack notifier through the journal, the outbox and the notification worker, against a fake Slack driven by the real WebClient. */
describe('Slack notifier', () => {
  let slack: FakeSlack;
  let h: NotifyHarness;
  before(async () => {
    slack = await new FakeSlack().start();
    h = await notifyHarness({ rules: RULES, slack: { url: slack.url, token: slack.token, pace: { rate: 100, burst: 100 }, digest: { after: 8, editEveryMs: 300, quietMs: 600 }, linkBase: 'https://remediator.example' } });
  });
  after(async () => {
    await h.close();
    await slack.stop();
  });
  const notifications = async (jobId: string) =>
    (await h.pool.query<{ state: string; error: string | null; detail: Record<string, unknown> | null }>(`SELECT state, error, detail FROM "${h.schema}".notifications WHERE job_id = $1 ORDER BY id`, [jobId])).rows;
  const story = async (job: JobSpec) => {
    await h.record(job, { type: 'running', attempt: 1, message: 'Attempt 1 started' });
    await h.record(job, { type: 'step', attempt: 1, message: 'Breaker state before: open' });
    await h.record(job, { type: 'step', attempt: 1, message: 'Reset sent: POST /reset', acted: true });
    await h.record(job, { type: 'succeeded', attempt: 1, message: 'Breaker closed after the reset' });
  };
  /** The root whose blocks name this alert (labels are shown in the blocks, not in the text fallback). */
  const rootOf = (channel: string, alertText: RegExp) => slack.roots(channel).find((m) => alertText.test(JSON.stringify(m.blocks)));

  test('a run gets one root, edited in place to its final state, and its events told once, in order', async () => {
    const job = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-a' } });
    await story(job);
    await h.resolve(job);
    const root = await eventually(async () => {
      const r = rootOf('#checkout', /node-a/);
      return r && /Succeeded/.test(r.text) && /resolved/i.test(r.text) && r;
    }, 'root at its final state');
    const lines = await eventually(async () => {
      const l = slack.threadLines('#checkout', root.ts);
      return l.length >= 4 && l;
    }, 'the story in the thread');
    assert.deepEqual(lines.map((l) => l.replace(/^(\S+) /, '')), [
      'Attempt 1: Breaker state before: open', 'Attempt 1: Reset sent: POST /reset', '*Succeeded*: Breaker closed after the reset', 'Alert resolved in Alertmanager.',
    ].map((l) => l), lines.join('\n'));
    assert.equal(slack.roots('#checkout').filter((m) => /node-a/.test(JSON.stringify(m.blocks))).length, 1, 'one root');
    assert.ok(slack.replies('#checkout', root.ts).every((m) => !m.reply_broadcast), 'a success is not broadcast');
    await eventually(async () => (await notifications(job.jobId)).some((n) => n.state === 'sent'), 'what was sent is recorded');
  });

  test('lone surrogates and NUL in alert text or a step are sent as U+FFFD, not retried forever', async () => {
    const job = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-\ud800-b' }, annotations: { summary: 'bad \u0000 text' } });
    await h.record(job, { type: 'step', attempt: 1, message: 'target said \udfff' });
    await h.record(job, { type: 'failed', attempt: 1, message: 'boom \u0000', reason: 'error' });
    const root = await eventually(async () => rootOf('#checkout', /node-\ufffd-b/), 'root with U+FFFD');
    await eventually(async () => slack.threadLines('#checkout', root.ts).some((l) => /target said \ufffd/.test(l)), 'step with U+FFFD');
    assert.equal(slack.calls.filter((c) => c.error && c.error !== 'ratelimited').length, 0);
  });

  test('a failure is broadcast to the channel; a retry is told in the thread', async () => {
    const job = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-c' } });
    await h.record(job, { type: 'running', attempt: 1, message: 'Attempt 1 started' });
    await h.record(job, { type: 'retrying', attempt: 1, message: 'Attempt 1 of 2 failed: HTTP 500. Retrying.', reason: 'unavailable' });
    await h.record(job, { type: 'running', attempt: 2, message: 'Attempt 2 started' });
    await h.record(job, { type: 'failed', attempt: 2, message: 'Failed after 2 attempts: HTTP 500', reason: 'unavailable' });
    const root = await eventually(async () => {
      const r = rootOf('#checkout', /node-c/);
      return r && /Failed/.test(r.text) && r;
    }, 'root failed');
    const broadcast = await eventually(async () => slack.replies('#checkout', root.ts).find((m) => m.reply_broadcast), 'broadcast failure');
    assert.match(JSON.stringify(broadcast.blocks), /Remediation failed/);
    assert.ok(slack.threadLines('#checkout', root.ts).some((l) => /Attempt 1 of 2 failed/.test(l)));
  });

  test('notify-only: the root says it (no broadcast copy of the same text); dry runs and cooldown skips say so', async () => {
    const job = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-d' } });
    await h.record(job, { type: 'running', attempt: 1, message: 'Attempt 1 started' });
    await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix for this alert. Check the provider.' });
    const root = await eventually(async () => {
      const r = rootOf('#checkout', /node-d/);
      return r && /No automatic fix/.test(r.text) && r;
    }, 'root notified');
    assert.equal(slack.replies('#checkout', root.ts).filter((m) => m.reply_broadcast).length, 0, 'said once in the channel');
    const dry = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-e' }, dryRun: true });
    await h.record(dry, { type: 'dry_run', attempt: 1, message: 'Would reset the breaker' });
    await eventually(async () => /Dry run/.test(rootOf('#checkout', /node-e/)?.text ?? ''), 'dry run root');
    const cool = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-f' } });
    await h.record(cool, { type: 'skipped', attempt: 1, message: 'Cooldown: rule already acted', reason: 'cooldown' });
    await eventually(async () => /cooldown/.test(rootOf('#checkout', /node-f/)?.text ?? ''), 'cooldown root');
  });

  test('notify.slack: false sends nothing', async () => {
    const before = slack.calls.length;
    const job = await h.fire('silent', { labels: { alertname: 'Silent' } });
    await h.record(job, { type: 'notified', attempt: 1, message: 'x' });
    // Another run after it, in a channel, goes out: the silent one would have gone first.
    const probe = await h.fire('other-channel', { labels: { alertname: 'Other', instance: 'probe-1' } });
    await eventually(async () => rootOf('#other', /probe-1/), 'probe root');
    assert.equal(slack.calls.slice(before).filter((c) => /Silent/.test(JSON.stringify(c.args))).length, 0);
    void probe;
  });

  test('a 500 or a slow answer is retried until it goes through, without a second root', async () => {
    slack.fail({ count: 2, kind: 'http500', method: 'chat.postMessage', channel: '#other' });
    const job = await h.fire('other-channel', { labels: { alertname: 'Other', instance: 'node-g' } });
    await story(job);
    const root = await eventually(async () => {
      const r = rootOf('#other', /node-g/);
      return r && /Succeeded/.test(r.text) && r;
    }, 'root after the 500s');
    assert.equal(slack.roots('#other').filter((m) => /node-g/.test(JSON.stringify(m.blocks))).length, 1, 'one root');
    await eventually(async () => slack.threadLines('#other', root.ts).length >= 3, 'replies');
    assert.equal((await notifications(job.jobId)).filter((n) => n.state !== 'sent').length, 0, 'no row per retry');
  });

  test("a 429 pauses only that channel for its Retry-After: nothing is lost, nothing is recorded per 429, another channel goes on", async () => {
    slack.fail({ count: 1, kind: 'ratelimited', retryAfter: 2, channel: '#checkout' });
    const held = await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'node-h' } });
    const t0 = Date.now();
    const free = await h.fire('other-channel', { labels: { alertname: 'Other', instance: 'node-i' } });
    await eventually(async () => rootOf('#other', /node-i/), 'the other channel is not held', 3000);
    const otherAt = Date.now() - t0;
    await eventually(async () => rootOf('#checkout', /node-h/), 'the rate-limited channel after Retry-After', 10_000);
    const heldAt = Date.now() - t0;
    assert.ok(otherAt < 1500, `other channel at ${otherAt} ms`);
    assert.ok(heldAt >= 1800, `the limited channel waited its Retry-After (${heldAt} ms)`);
    assert.equal((await notifications(held.jobId)).filter((n) => n.state !== 'sent').length, 0);
    void free;
  });

  test('invalid_auth is recorded as failed and not retried; the token never reaches the audit', async () => {
    slack.fail({ count: 1, kind: 'platform', error: 'invalid_auth', channel: '#other' });
    const job = await h.fire('other-channel', { labels: { alertname: 'Other', instance: 'node-j' } });
    const rows = await eventually(async () => {
      const r = await notifications(job.jobId);
      return r.some((x) => x.state === 'failed') && r;
    }, 'failed notification');
    assert.match(rows.find((x) => x.state === 'failed')!.error!, /invalid_auth/);
    assert.equal(slack.calls.filter((c) => c.error === 'invalid_auth').length, 1, 'called once');
    const all = (await h.pool.query(`SELECT detail::text AS d, error FROM "${h.schema}".notifications`)).rows;
    assert.ok(all.every((r) => !`${r.d}${r.error}`.includes(slack.token)));
  });

  test('concurrent runs in one channel each keep their own thread, in order', async () => {
    const jobs = await Promise.all([1, 2, 3, 4].map((i) => h.fire('other-channel', { labels: { alertname: 'Other', instance: `multi-${i}` } })));
    await Promise.all(jobs.map(story));
    for (const [i] of jobs.entries()) {
      const root = await eventually(async () => {
        const r = rootOf('#other', new RegExp(`multi-${i + 1}\\b`));
        return r && /Succeeded/.test(r.text) && r;
      }, `thread ${i + 1}`);
      const lines = await eventually(async () => {
        const l = slack.threadLines('#other', root.ts);
        return l.length >= 3 && l;
      }, `lines ${i + 1}`);
      assert.match(lines.join('\n'), /before: open[\s\S]*Reset sent[\s\S]*Succeeded/);
    }
  });

  test('a storm of one rule becomes one summary, edited at a bounded rate; a failure still gets its thread; the summary ends', async () => {
    const jobs: JobSpec[] = [];
    for (let i = 0; i < 20; i++) jobs.push(await h.fire('storming', { labels: { alertname: 'Storm', instance: `storm-${i}` } }));
    for (const j of jobs.slice(0, 19)) await h.record(j, { type: 'notified', attempt: 1, message: 'No automatic fix.' });
    await h.record(jobs[19]!, { type: 'failed', attempt: 1, message: 'Failed: boom', reason: 'error' });
    const summary = await eventually(async () => slack.roots('#storm').find((m) => /Storm over/.test(m.text)), 'storm summary ends', 15_000);
    assert.match(summary.text, /rule storming ran 20 times/);
    const roots = slack.roots('#storm');
    const threads = roots.filter((m) => /storm-\d+/.test(JSON.stringify(m.blocks)) && !/Storm/.test(m.text.slice(0, 30)));
    assert.ok(threads.length <= 9, `few runs have their own thread (${threads.length})`);
    assert.ok(threads.some((m) => /storm-19\b/.test(JSON.stringify(m.blocks))), 'the failure has its own thread');
    assert.match(JSON.stringify(summary.blocks), /Failed:/);
    assert.match(JSON.stringify(summary.blocks), /remediator\.example\/ui\/runs\?rule=storming/);
    assert.ok(summary.history.length <= 10, `summary edited at a bounded rate (${summary.history.length})`);
  });
});

/** Slack's own limit (1 message per second per channel, bursts of 5) against remediator's pacing. */
describe('Slack notifier: paced per channel, urgent first', () => {
  let slack: FakeSlack;
  let h: NotifyHarness;
  before(async () => {
    slack = await new FakeSlack().start();
    slack.limit = { rate: 1, burst: 5 };
    h = await notifyHarness({ rules: RULES, slack: { url: slack.url, token: slack.token, digest: { after: 1000, editEveryMs: 30_000, quietMs: 60_000 } } });
  });
  after(async () => {
    await h.close();
    await slack.stop();
  });

  test('a backlog in one channel is paced (no 429 storm), and a new run\'s first message goes before the backlog\'s updates', async () => {
    const jobs: JobSpec[] = [];
    for (let i = 0; i < 6; i++) jobs.push(await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: `paced-${i}` } }));
    for (const j of jobs) await h.record(j, { type: 'step', attempt: 1, message: 'working' });
    // A new incident in the same channel while the backlog waits for tokens.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await h.fire('checkout-breaker', { labels: { alertname: 'HighErrorRate', instance: 'canary' } });
    await eventually(async () => slack.roots('#checkout').find((m) => /canary/.test(JSON.stringify(m.blocks))), 'canary root', 15_000);
    const canaryAt = Date.now() - t0;
    await eventually(async () => jobs.every((_, i) => slack.roots('#checkout').some((m) => new RegExp(`paced-${i}\\b`).test(JSON.stringify(m.blocks)))), 'backlog roots', 30_000);
    assert.ok(canaryAt < 5000, `canary root after ${canaryAt} ms`);
    const limited = slack.limited('#checkout').length;
    const total = slack.calls.filter((c) => c.method.startsWith('chat.')).length;
    assert.ok(limited <= 1, `${limited} of ${total} calls answered 429`);
  });
});
