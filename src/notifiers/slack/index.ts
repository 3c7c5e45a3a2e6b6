/**
 * Slack notifier: one living thread per remediation run, brought up to date from the run journal.
 *
 * - A run's thread is one root message, edited in place as the run moves (rendered from its `runs`
 *   row), and replies telling its events (`run_events` after `posted_through`, several events per
 *   message when they came while the run waited for its turn). `failed` is broadcast to the
 *   channel; a notify-only run's root says it all (no broadcast copy).
 * - Whatever happens meanwhile, a sync posts what was not posted yet and edits the root to the
 *   run's current state: no per-event sequence, no ordering protocol, no locks (one drainer per
 *   channel, src/workers/notification.ts).
 * - Storms: when one rule queues more than `digest.after` runs in a minute, its new runs in that
 *   channel are counted in one summary message per storm (edited at most every `digest.editEveryMs`)
 *   instead of each getting a thread; a run that fails, asks for approval or needs a person still
 *   gets its own thread. When the rule is quiet again and its runs have ended, the summary says the
 *   storm is over and runs get their own threads again.
 * - Idempotency: each Slack call's result is saved right after the call, so a retried sync skips
 *   what was posted. Slack has no idempotency key for chat.postMessage: a crash between Slack's
 *   answer and that save posts the message again (at-least-once, never a lost failure notice).
 */
import { createHash } from 'node:crypto';
import type { WebClient } from '@slack/web-api';
import type { Redis } from 'ioredis';
import type { RecordedEvent } from '../../core/run.js';
import { storableDeep } from '../../core/text.js';
import type { Logger } from '../../log.js';
import type { RuleTable } from '../../rules/load.js';
import type { RuleSpec } from '../../rules/schema.js';
import type { NotifyState } from '../../store/notify-state.js';
import type { EventRow, RunAlert, RunReader, RunRow } from '../../store/runs.js';
import { guideOf, type RuleGuide } from '../guide.js';
import type { Notifier, Route, SyncContext } from '../types.js';
import { slackCall } from './client.js';
import { renderReplies, renderRoot, type RootView } from './format.js';
import { StormDigest, type DigestOptions } from './digest.js';

export interface SlackNotifierOptions {
  client: WebClient;
  /** Used when a rule's `notify.slack` names no channel. */
  defaultChannel?: string;
  runs: RunReader;
  state: NotifyState;
  /** Storm state (summaries) lives here, under the queue prefix. */
  redis: Redis;
  prefix: string;
  log?: Logger;
  /** Slack interactivity is configured (SLACK_SIGNING_SECRET): roots carry a "Pause this rule" button, approvals their buttons. */
  interactive?: boolean;
  /** PUBLIC_URL: summaries link to the status page. */
  linkBase?: string;
  digest?: Partial<DigestOptions>;
  /** The rule table: roots show the rule's runbook, impact and links (src/notifiers/guide.ts). */
  table?: () => RuleTable | undefined;
  /** Calls per second per channel, and the burst (Slack: about 1 message per second per channel). */
  pace?: { rate: number; burst: number };
}

/** Events that must not wait behind storm updates: a run's first message, and anything a person must see. */
const URGENT = new Set(['queued', 'failed', 'approval_requested', 'notified', 'expired', 'rejected']);
/**
 * A run in these states, or with these events, needs a person: it gets a thread even in a storm.
 * A notify-only run in a storm is counted in the summary (its page goes to PagerDuty): a thousand
 * threads saying "no automatic fix" would bury the one that matters.
 */
const HUMAN = new Set(['failed', 'approval_requested', 'expired']);

export function createSlackNotifier(o: SlackNotifierOptions): Notifier {
  const digest = new StormDigest({ client: o.client, runs: o.runs, state: o.state, redis: o.redis, prefix: o.prefix, linkBase: o.linkBase, ...o.digest });
  const channelOf = (rule: RuleSpec | undefined) => (rule?.notify.slack === false ? undefined : (rule?.notify.slack?.channel ?? o.defaultChannel));
  const guide = (rule: string) => guideOf(o.table?.()?.rules.find((r) => r.spec.name === rule)?.spec);

  async function syncRun(channel: string, jobId: string, ctx: SyncContext): Promise<Record<string, unknown> | void> {
    const run = await o.runs.runWithAlert(jobId);
    if (!run) return;
    let thread = await o.state.thread(jobId);
    let events = await o.runs.runEvents(jobId, thread?.posted_through);
    const human = HUMAN.has(run.state) || events.some((e) => HUMAN.has(e.state) || e.details?.page !== undefined);
    if (!thread) {
      const mode = !human && (await digest.storming(channel, run.rule, ctx)) ? 'digest' : 'thread';
      thread = await o.state.openThread(jobId, channel, mode);
    } else if (thread.mode === 'digest' && human) {
      thread = await o.state.openThread(jobId, thread.channel, 'thread');
      events = await o.runs.runEvents(jobId);
    }
    if (thread.mode === 'digest') {
      const last = events.at(-1);
      if (last) await o.state.saveThread(jobId, { posted_through: last.id });
      await ctx.mark(digest.item(run.rule), false);
      return;
    }
    const where = thread.channel;
    const sent: Record<string, unknown> = {};
    let channelId = thread.channel_id ?? where;
    let rootTs = thread.root_ts;
    let rootHash = thread.root_hash;
    if (!rootTs) {
      const root = rootBody(run, o.interactive, guide(run.rule));
      await ctx.paced();
      const r = await slackCall('chat.postMessage', () => o.client.chat.postMessage({ channel: where, ...root.body, unfurl_links: false, unfurl_media: false }));
      channelId = String(r.channel);
      rootTs = String(r.ts);
      rootHash = root.hash;
      await o.state.saveThread(jobId, { channel_id: channelId, root_ts: rootTs, root_hash: root.hash, root_state: root.state });
      sent.root_posted = true;
      if (ctx.urgent && events.length) {
        // The first message is what cannot wait; the run's story goes with the channel's other updates,
        // so a new incident's first message in a busy channel waits for roots only, not for threads.
        await ctx.mark(`run:${jobId}`, false);
        await record(jobId, run.state, { channel: channelId, root_ts: rootTs, ...sent }, ctx);
        return sent;
      }
    }
    const replies = storableDeep(renderReplies(events.map((e) => replyOf(e, run)), { interactive: o.interactive }));
    for (const r of replies) {
      await ctx.paced();
      const p = await slackCall('chat.postMessage', () => o.client.chat.postMessage({
        channel: channelId, thread_ts: rootTs!, text: r.text, blocks: r.blocks, reply_broadcast: r.broadcast, unfurl_links: false, unfurl_media: false,
      }));
      await o.state.saveThread(jobId, { posted_through: r.through });
      sent.replies = ((sent.replies as number | undefined) ?? 0) + 1;
      sent.reply_ts = String(p.ts);
    }
    if (replies.length === 0 && events.length) await o.state.saveThread(jobId, { posted_through: events.at(-1)!.id });
    const root = rootBody(run, o.interactive, guide(run.rule));
    if (root.hash !== rootHash) {
      await ctx.paced();
      await slackCall('chat.update', () => o.client.chat.update({ channel: channelId, ts: rootTs!, ...root.body }));
      await o.state.saveThread(jobId, { root_hash: root.hash, root_state: root.state });
      sent.root_updated = root.state;
    }
    if (Object.keys(sent).length) await record(jobId, events.at(-1)?.state ?? run.state, { channel: channelId, root_ts: rootTs, ...sent }, ctx);
    return sent;
  }

  /** One `notifications` row per sync that sent something. */
  async function record(jobId: string, eventType: string, detail: Record<string, unknown>, ctx: SyncContext): Promise<void> {
    await o.state.recorded({ jobId, notifier: 'slack', eventType, state: 'sent', attempt: 1, detail })
      .catch((err: Error) => ctx.log.warn('could not record a Slack notification', { error: err.message }));
  }

  return {
    name: 'slack',
    pace: o.pace ?? { rate: 1, burst: 5 },
    route(e: RecordedEvent, rule: RuleSpec | undefined): Route[] {
      const channel = channelOf(rule);
      if (!channel) return [];
      return [{ destination: `slack:${channel}`, item: `run:${e.jobId}`, urgent: URGENT.has(e.type) || e.details?.page !== undefined }];
    },
    async sync(destination, item, ctx) {
      const channel = destination.slice('slack:'.length);
      if (item.startsWith('run:')) return syncRun(channel, item.slice('run:'.length), ctx);
      if (digest.isItem(item)) return digest.sync(channel, item, ctx);
      ctx.log.warn('slack: unknown outbox item', { item });
    },
  };
}

function replyOf(e: EventRow, run: RunRow & { alert: RunAlert }) {
  return {
    id: e.id, type: e.state as RecordedEvent['type'], message: e.message, attempt: e.attempt, reason: e.reason, details: e.details,
    rule: run.rule, target: run.target, dryRun: run.dry_run, alertname: run.alert.labels.alertname ?? run.alertname,
  };
}

/** The root of a run's thread, from its row (the journal's projection) and its alert. */
export function rootView(run: RunRow & { alert: RunAlert }): RootView {
  return {
    rule: run.rule,
    action: run.action,
    target: run.target,
    dryRun: run.dry_run,
    alert: run.alert,
    externalURL: run.alert.externalURL,
    state: run.state,
    attempts: run.attempts,
    summary: run.summary,
    reason: run.error_reason,
    error: run.error_message,
    alertResolvedAt: run.alert_resolved_at,
    durationMs: run.duration_ms,
    jobId: run.job_id,
  };
}

function rootBody(run: RunRow & { alert: RunAlert }, interactive?: boolean, guide?: RuleGuide) {
  const view = rootView(run);
  const body = storableDeep(renderRoot({ ...view, interactive, guide }));
  return { body, state: `${view.state}${view.alertResolvedAt ? '+resolved' : ''}`, hash: createHash('sha256').update(JSON.stringify(body)).digest('hex') };
}
