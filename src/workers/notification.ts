import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { deadline } from '../core/deadline.js';
import { PermanentError, RateLimitedError } from '../core/errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { NOTIFY_QUEUE, startDrain, type DrainJob } from '../notifiers/follower.js';
import type { Notifier, SyncContext } from '../notifiers/types.js';
import { isRedisConnectionError } from '../redis/health.js';
import type { Outbox } from '../redis/outbox.js';
import type { Pacer } from '../redis/pacer.js';
import type { NotifyState } from '../store/notify-state.js';

/** One sync (every call it makes, and the waits for the pacer between them) is cut after this. */
const SYNC_TIMEOUT_MS = 60_000;
/** A drain hands over to a new job after this long, so one busy destination does not keep a slot forever. */
const DRAIN_SLICE_MS = 30_000;
/** Waits shorter than this are slept in the drain; longer ones end it with a delayed job. */
const SHORT_WAIT_MS = 2000;
/** Retry of one item after a transient failure: 2 s doubling up to 10 min (about 6 h of tries in all). */
const retryDelay = (tries: number) => Math.min(2000 * 2 ** Math.max(0, tries - 1), 600_000);
const MAX_TRIES = 40;

/**
 * Drains notification destinations: takes the next due item of a destination from the outbox
 * (urgent ones first), has its notifier bring it up to date, paced per destination. A 429 pauses
 * the whole destination for its Retry-After and puts the item back (never counted as a failure);
 * a permanent error gives up on the item (recorded); anything else retries the item with backoff
 * while the others go on. One drain per destination at a time (the outbox's flag).
 */
export function startNotificationWorker(o: {
  notifiers: Notifier[];
  connection: Redis;
  /** Non-blocking commands: the outbox, the pacer, retry counters. */
  redis: Redis;
  prefix: string;
  queue: Queue;
  outbox: Outbox;
  pacer: Pacer;
  state: NotifyState;
  log: Logger;
  concurrency?: number;
  metrics?: Metrics;
  /** Aborted at shutdown: drains hand their destination to another job and stop. */
  shutdown?: AbortSignal;
  /** Retry delay of an item after n failed tries (tests shorten it). */
  retryDelay?: (tries: number) => number;
}): Worker {
  const byName = new Map(o.notifiers.map((n) => [n.name, n]));
  const tries = (d: string) => `${o.prefix}:outbox:${d}:tries`;
  const delay = o.retryDelay ?? retryDelay;

  const drain = async (job: Job<DrainJob>) => {
    const { destination } = job.data;
    const n = byName.get(job.data.notifier);
    if (!n) {
      o.log.warn('drain job for a notifier that is not configured here', { notifier: job.data.notifier, destination });
      return;
    }
    const log = o.log.child({ notifier: n.name, destination });
    const sliceEnds = Date.now() + DRAIN_SLICE_MS;
    for (;;) {
      if (o.shutdown?.aborted || Date.now() > sliceEnds) {
        // Hand over: the destination's flag stays set, so this round's successor must exist.
        await startDrain(o.queue, job.data, await o.outbox.nextRound(), o.shutdown?.aborted ? 1000 : 0);
        return;
      }
      const taken = await o.outbox.take(destination, SYNC_TIMEOUT_MS * 2);
      if ('empty' in taken) return;
      if ('waitMs' in taken) {
        if (taken.waitMs <= SHORT_WAIT_MS) {
          await sleep(taken.waitMs);
          continue;
        }
        await startDrain(o.queue, job.data, await o.outbox.nextRound(), taken.waitMs);
        return;
      }
      const { item, urgent } = taken;
      const d = deadline('notification sync timeout', SYNC_TIMEOUT_MS, [o.shutdown]);
      const ctx: SyncContext = {
        log, signal: d.signal, urgent,
        paced: () => o.pacer.wait(destination, n.pace, d.signal),
        mark: async (other, isUrgent, dueMs) => void (await o.outbox.mark(destination, [{ item: other, urgent: isUrgent, dueMs }])),
      };
      try {
        const sent = await n.sync(destination, item, ctx);
        await o.outbox.done(destination, item);
        await o.redis.hdel(tries(destination), item);
        if (sent && Object.keys(sent).length) o.metrics?.notificationsSent.inc({ notifier: n.name });
      } catch (err) {
        if (err instanceof RateLimitedError) {
          // The destination said when: everyone waits, and the item keeps its place.
          await o.pacer.pause(destination, Date.now() + err.retryAfterMs);
          await o.outbox.later(destination, item, urgent, Date.now());
          log.warn('rate limited: destination paused', { item, retryAfterMs: err.retryAfterMs });
          continue;
        }
        const message = (err as Error).message;
        const t = await o.redis.hincrby(tries(destination), item, 1);
        const final = err instanceof PermanentError || t >= MAX_TRIES;
        o.metrics?.notificationsFailed.inc({ notifier: n.name, final: String(final) });
        if (final) {
          await o.outbox.done(destination, item);
          await o.redis.hdel(tries(destination), item);
          // The run the failure is about: the notifier names it (an incident item names no run itself).
          const named = err instanceof PermanentError ? err.details.job_id : undefined;
          const jobId = typeof named === 'string' ? named : item.split(':').at(-1)!;
          await o.state.recorded({ jobId, notifier: n.name, eventType: item.split(':')[0]!, state: 'failed', attempt: t, error: message, detail: err instanceof PermanentError ? err.details : undefined })
            .catch((e: Error) => log.warn('could not record the failed notification', { error: e.message }));
          log.error('notification failed', { item, error: message, tries: t });
        } else {
          await o.outbox.later(destination, item, urgent, Date.now() + delay(t));
          if (t === 1) log.warn('notification will be retried', { item, error: message });
        }
      } finally {
        d.dispose();
      }
    }
  };

  const worker = new Worker(NOTIFY_QUEUE, drain, { connection: o.connection, prefix: o.prefix, concurrency: o.concurrency ?? 16, lockDuration: 60_000 });
  // Lost Redis is logged once by the connections' RedisHealth; anything else is a worker problem.
  worker.on('error', (err) => isRedisConnectionError(err) || o.log.error('notification worker error', { error: err }));
  return worker;
}
