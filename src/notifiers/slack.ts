/**
 * Slack notifier: one living thread per remediation run.
 *
 * Design
 * - One root message per run (BullMQ job id), posted by the first event of the run that reaches
 *   Slack (normally `queued`), in the rule's channel (`notify.slack.channel`) or the default one.
 *   `notify.slack: false`, or no channel at all, and the notifier does not accept the event. The
 *   thread keeps the channel it began in, even if the rule changes later.
 * - The root is edited in place (chat.update) as the run moves. It is rendered from the run row in
 *   PostgreSQL (AuditStore.getRun, plus alert_resolved_at), read under the thread lock just before
 *   each update, so a late or out-of-order event can never show an older state than the audit.
 * - Details go as thread replies: steps, retries, the final summary; `failed` and `notified` are
 *   broadcast to the channel (reply_broadcast).
 *
 * Ordering. Events carry a per-run `seq`. All deliveries of one run are serialised by a session
 * advisory lock (pg_try_advisory_lock; a job that finds it taken is re-delayed, NotifyNotYetError,
 * rather than holding a connection while it waits). `slack_threads.delivered_seq` says every
 * earlier event is done, so event n waits (NotifyNotYetError, no attempt used) until n-1 is.
 * A predecessor stops blocking when its Slack job failed for good (the `notifications` table says
 * so), when it never reached this notifier within `gapWaitMs` (seq numbers are shared with other
 * notifiers and a rule reload can turn Slack off mid-run, so gaps happen), or when it is still
 * being retried after `pendingWaitMs`. A given-up event that turns up later is still posted,
 * marked late; the root cannot go backwards because it comes from the run row.
 *
 * Idempotency and the crash window. Each Slack call's result is committed right after the call
 * (root ts on the thread row, reply ts on the event row), not at the end of the job, so a retried
 * job skips what was already posted; chat.update is idempotent anyway. Slack has no idempotency
 * key for chat.postMessage, so one window remains: a crash (or a failed DB write) between Slack's
 * answer and that commit makes the retry post the message again. We accept that rare duplicate
 * (at-least-once) rather than risk losing a failure notice (at-most-once).
 *
 * Errors: 429 -> NotifyRetryAfterError (only this job waits; the WebClient is built with
 * rejectRateLimitedCalls so it never pauses every channel); `ok:false` -> NotifyPermanentError
 * except Slack's own transient codes; network errors and 5xx -> plain errors, retried.
 * https://docs.slack.dev/apis/web-api/rate-limits
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import {
  LogLevel, WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebAPIRequestError, WebClient, type Logger as SlackLogger,
} from '@slack/web-api';
import type { AuditStore, RunRow, RunState } from '../store/journal-store.js';
import { ident } from '../store/migrate.js';
import { withClient } from '../store/tx.js';
import { storableDeep } from '../core/text.js';
import { silentLogger, type Logger } from '../log.js';
import type { RunEvent } from './events.js';
import { renderReply, renderRoot, type RootView, type SlackBlock } from './slack-format.js';
import { NotifyNotYetError, NotifyPermanentError, NotifyRetryAfterError, type Notifier } from './types.js';

export interface SlackNotifierOptions {
  client: WebClient;
  /** Used when a rule's `notify.slack` names no channel. */
  defaultChannel?: string;
  /**
   * The audit trail. The root shows its `runs` row (what AuditStore.getRun returns), read on the
   * notifier's locked connection; thread state lives in slack_threads / slack_events (004).
   */
  audit: AuditStore;
  pool: pg.Pool;
  /** remediator's schema (validated identifier): every statement is schema-qualified. */
  schema: string;
  log?: Logger;
  /** How long an event waits for a predecessor that never reached this notifier; default 60 s. */
  gapWaitMs?: number;
  /** How long an event waits for a predecessor that is still being retried; default 15 min. */
  pendingWaitMs?: number;
  /** Slack interactivity is configured (SLACK_SIGNING_SECRET): roots carry a "Pause this rule" button. */
  interactive?: boolean;
}

/** Slack's own transient `ok:false` codes; every other code is final (docs: per-method "Errors"). */
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited', 'team_added_to_org']);

/**
 * The WebClient main.ts builds: rate limits are thrown to us (WebAPIRateLimitedError) instead of
 * pausing the client's whole queue, and the SDK never retries by itself (BullMQ does).
 */
export function createSlackClient(o: { token: string; apiUrl?: string; timeoutMs?: number; log?: Logger }): WebClient {
  return new WebClient(o.token, {
    slackApiUrl: o.apiUrl ?? 'https://slack.com/api/',
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: o.timeoutMs ?? 10_000,
    logger: slackLogger(o.log ?? silentLogger),
  });
}

export function createSlackNotifier(o: SlackNotifierOptions): Notifier {
  const s = ident(o.schema);
  const log = (o.log ?? silentLogger).child({ notifier: 'slack' });
  const gapWaitMs = o.gapWaitMs ?? 60_000;
  const pendingWaitMs = o.pendingWaitMs ?? 15 * 60_000;
  const channelOf = (e: RunEvent) => (e.notify.slack === false ? undefined : (e.notify.slack?.channel ?? o.defaultChannel));

  /** One Slack call; its errors translated to the notifier taxonomy. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WebAPIRateLimitedError) {
        throw new NotifyRetryAfterError(`Slack ${what}: rate limited, retry after ${err.retryAfter}s`, Math.max(1, err.retryAfter) * 1000);
      }
      if (err instanceof WebAPIPlatformError) {
        const code = String(err.data.error);
        if (TRANSIENT.has(code)) throw new Error(`Slack ${what}: ${code}`);
        throw new NotifyPermanentError(`Slack ${what}: ${code}`, { error: code, method: what });
      }
      if (err instanceof WebAPIHTTPError) throw new Error(`Slack ${what}: HTTP ${err.statusCode}`);
      if (err instanceof WebAPIRequestError) throw new Error(`Slack ${what}: request failed: ${err.original.message}`);
      throw err;
    }
  }

  /** Decides, for events seq `from`..`to` (the predecessors of the current one), whether to wait. */
  async function settlePredecessors(c: pg.PoolClient, e: RunEvent, from: number, to: number): Promise<void> {
    const { rows } = await c.query<{ seq: number; seen: boolean; outcome: string | null; failed: boolean; waited_ms: number }>(
      `SELECT g.seq, ev.seq IS NOT NULL AS seen, ev.outcome,
         EXISTS (SELECT 1 FROM ${s}.notifications n WHERE n.job_id = $1 AND n.notifier = 'slack' AND n.seq = g.seq AND n.state = 'failed') AS failed,
         (SELECT EXTRACT(EPOCH FROM now() - me.first_seen_at) * 1000 FROM ${s}.slack_events me WHERE me.job_id = $1 AND me.seq = $4)::float8 AS waited_ms
       FROM generate_series($2::int, $3::int) AS g(seq)
       LEFT JOIN ${s}.slack_events ev ON ev.job_id = $1 AND ev.seq = g.seq
       ORDER BY g.seq`,
      [e.jobId, from, to, e.seq],
    );
    let settled = from - 1;
    let wait: string | undefined;
    let waitedMs = 0;
    for (const r of rows) {
      waitedMs = r.waited_ms ?? 0;
      let note: string | undefined;
      if (r.outcome) note = undefined;
      else if (r.failed) note = 'its Slack job failed for good';
      else if (!r.seen && waitedMs >= gapWaitMs) note = `never reached the Slack notifier within ${gapWaitMs} ms`;
      else if (r.seen && waitedMs >= pendingWaitMs) note = `still undelivered after ${pendingWaitMs} ms`;
      else {
        wait = `event ${r.seq} of this run is not delivered yet`;
        break;
      }
      if (note) {
        await c.query(
          `INSERT INTO ${s}.slack_events (job_id, seq, event_type, outcome, note, done_at) VALUES ($1, $2, 'unknown', 'given_up', $3, now())
           ON CONFLICT (job_id, seq) DO UPDATE SET outcome = 'given_up', note = $3, done_at = now()`,
          [e.jobId, r.seq, note],
        );
        log.warn('slack: gave up waiting for an earlier event', { job: e.jobId, seq: r.seq, reason: note });
      }
      settled = r.seq;
    }
    if (settled >= from) await c.query(`UPDATE ${s}.slack_threads SET delivered_seq = GREATEST(delivered_seq, $2), updated_at = now() WHERE job_id = $1`, [e.jobId, settled]);
    // Poll gently: quickly at first, at most every 5 s while a predecessor is being retried.
    if (wait) throw new NotifyNotYetError(wait, Math.min(5000, Math.max(200, Math.round(waitedMs / 4))));
  }

  async function rootBody(c: pg.PoolClient, e: RunEvent): Promise<{ body: { text: string; blocks: SlackBlock[] }; state: string; hash: string }> {
    // The row AuditStore.getRun returns, read on the locked connection: a delivery never waits for a
    // second pool connection while it holds one (with concurrency >= pool size that could stall every job).
    const run = (await c.query<RunRow>(`SELECT * FROM ${s}.runs WHERE job_id = $1`, [e.jobId])).rows[0];
    const view = rootView(e, run);
    const body = storableDeep(renderRoot({ ...view, jobId: e.jobId, interactive: o.interactive }));
    return { body, state: `${view.state}${view.alertResolvedAt ? '+resolved' : ''}`, hash: createHash('sha256').update(JSON.stringify(body)).digest('hex') };
  }

  async function deliverLocked(c: pg.PoolClient, e: RunEvent, channel: string): Promise<Record<string, unknown>> {
    // Until the root exists the channel may still change (a rule fixed after channel_not_found).
    await c.query(
      `INSERT INTO ${s}.slack_threads (job_id, channel) VALUES ($1, $2)
       ON CONFLICT (job_id) DO UPDATE SET channel = EXCLUDED.channel WHERE ${s}.slack_threads.root_ts IS NULL`,
      [e.jobId, channel],
    );
    const thread = (await c.query<{ channel: string; channel_id: string | null; root_ts: string | null; root_hash: string | null; delivered_seq: number }>(
      `SELECT channel, channel_id, root_ts, root_hash, delivered_seq FROM ${s}.slack_threads WHERE job_id = $1`, [e.jobId],
    )).rows[0]!;
    const ev = e.seq === undefined ? undefined
      : (await c.query<{ reply_ts: string | null; outcome: string | null }>(`SELECT reply_ts, outcome FROM ${s}.slack_events WHERE job_id = $1 AND seq = $2`, [e.jobId, e.seq])).rows[0];
    if (ev?.outcome === 'delivered') return { channel: thread.channel_id, root_ts: thread.root_ts, reply_ts: ev.reply_ts, duplicate: true };

    let late = false;
    if (e.seq !== undefined) {
      const next = thread.delivered_seq + 1;
      if (e.seq < next) late = true;
      else if (e.seq > next) await settlePredecessors(c, e, next, e.seq - 1);
    }

    const out: Record<string, unknown> = {};
    if (!thread.root_ts) {
      const root = await rootBody(c, e);
      const r = await call('chat.postMessage', () => o.client.chat.postMessage({ channel: thread.channel, ...root.body, unfurl_links: false, unfurl_media: false }));
      thread.channel_id = String(r.channel);
      thread.root_ts = String(r.ts);
      thread.root_hash = root.hash;
      await c.query(`UPDATE ${s}.slack_threads SET channel_id = $2, root_ts = $3, root_hash = $4, root_state = $5, updated_at = now() WHERE job_id = $1`,
        [e.jobId, thread.channel_id, thread.root_ts, root.hash, root.state]);
      out.root_posted = true;
    }
    const channelId = thread.channel_id ?? thread.channel;
    const rootTs = thread.root_ts;

    // Error messages and step details come from targets: make them sendable (src/core/text.ts).
    const reply = storableDeep(renderReply(e, { late, interactive: o.interactive }));
    if (reply && !ev?.reply_ts) {
      const r = await call('chat.postMessage', () => o.client.chat.postMessage({
        channel: channelId, thread_ts: rootTs, text: reply.text, blocks: reply.blocks, reply_broadcast: reply.broadcast, unfurl_links: false, unfurl_media: false,
      }));
      out.reply_ts = String(r.ts);
      if (e.seq !== undefined) await c.query(`UPDATE ${s}.slack_events SET reply_ts = $3 WHERE job_id = $1 AND seq = $2`, [e.jobId, e.seq, out.reply_ts]);
    } else if (ev?.reply_ts) {
      out.reply_ts = ev.reply_ts;
    }

    // Re-read the run now (posting took time): the root shows the freshest state of the audit.
    const root = await rootBody(c, e);
    if (root.hash !== thread.root_hash) {
      await call('chat.update', () => o.client.chat.update({ channel: channelId, ts: rootTs, ...root.body }));
      await c.query(`UPDATE ${s}.slack_threads SET root_hash = $2, root_state = $3, updated_at = now() WHERE job_id = $1`, [e.jobId, root.hash, root.state]);
      out.root_updated = root.state;
    }

    if (e.seq !== undefined) {
      await c.query(`UPDATE ${s}.slack_events SET outcome = 'delivered', note = $3, done_at = now() WHERE job_id = $1 AND seq = $2`,
        [e.jobId, e.seq, late ? 'delivered late (after later events)' : null]);
      await c.query(`UPDATE ${s}.slack_threads SET delivered_seq = GREATEST(delivered_seq, $2), updated_at = now() WHERE job_id = $1`, [e.jobId, e.seq]);
    }
    return { channel: channelId, root_ts: rootTs, ...out, ...(late ? { late: true } : {}) };
  }

  return {
    name: 'slack',
    accepts: (e) => channelOf(e) !== undefined,
    async deliver(e, ctx) {
      const channel = channelOf(e);
      if (!channel) throw new NotifyPermanentError('no Slack channel: the rule names none and SLACK_CHANNEL is not set');
      // Seen: successors now know this event exists and wait for it (see settlePredecessors).
      if (e.seq !== undefined) {
        await o.pool.query(
          `INSERT INTO ${s}.slack_events (job_id, seq, event_type) VALUES ($1, $2, $3)
           ON CONFLICT (job_id, seq) DO UPDATE SET event_type = EXCLUDED.event_type WHERE ${s}.slack_events.event_type = 'unknown'`,
          [e.jobId, e.seq, e.type],
        );
      }
      const lockArgs = [`slack-thread:${o.schema}`, e.jobId];
      return withClient(o.pool, async (c, discard) => {
        let locked = false;
        try {
          locked = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', lockArgs)).rows[0]!.ok;
          if (!locked) throw new NotifyNotYetError('another delivery for this run is in progress', 100 + Math.floor(Math.random() * 200));
          const detail = await deliverLocked(c, e, channel);
          ctx.log.debug('slack: delivered', { job: e.jobId, seq: e.seq, event: e.type });
          return detail;
        } finally {
          if (locked) {
            // A connection that cannot unlock is destroyed, which releases the lock with the session.
            await c.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', lockArgs).catch(discard);
          }
        }
      });
    },
  };
}

/** The root's view: the run row when there is one (source of truth), else the event itself. */
export function rootView(e: RunEvent, run: RunRow | undefined): RootView {
  const fromEvent: Record<RunEvent['type'], RunState> = {
    queued: 'queued', running: 'running', step: 'running', retrying: 'retrying', succeeded: 'succeeded', failed: 'failed',
    skipped: 'skipped', dry_run: 'dry_run', notified: 'notified', alert_resolved: 'queued',
  };
  return {
    rule: run?.rule ?? e.rule,
    action: run?.action ?? e.action,
    target: run ? run.target : e.target,
    dryRun: run?.dry_run ?? e.dryRun,
    alert: e.alert,
    externalURL: e.externalURL,
    state: run?.state ?? fromEvent[e.type],
    attempts: run?.attempts ?? e.attempt ?? 0,
    summary: run?.summary ?? null,
    reason: run?.error_reason ?? e.reason ?? null,
    error: run?.error_message ?? null,
    alertResolvedAt: run?.alert_resolved_at ?? (e.type === 'alert_resolved' ? new Date(e.at) : null),
    durationMs: run?.duration_ms ?? null,
  };
}

/** The SDK's logger interface onto ours: its warnings and errors, never request bodies (debug). */
function slackLogger(log: Logger): SlackLogger {
  let level = LogLevel.WARN;
  const l = log.child({ component: 'slack-web-api' });
  const text = (m: unknown[]) => m.map((x) => (x instanceof Error ? x.message : String(x))).join(' ');
  return {
    debug: () => {},
    info: () => {},
    warn: (...m: unknown[]) => l.warn(text(m)),
    error: (...m: unknown[]) => l.error(text(m)),
    setLevel: (v: LogLevel) => void (level = v),
    getLevel: () => level,
    setName: () => {},
  };
}
