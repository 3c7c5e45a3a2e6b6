import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditStore } from '../store/journal-store.js';
import { storableDeep } from '../core/text.js';
import { deadline } from '../core/deadline.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RunEvent } from '../notifiers/events.js';
import { notifyBackoff } from '../notifiers/sink.js';
import { NotifyNotYetError, NotifyPermanentError, NotifyRetryAfterError, type Notifier } from '../notifiers/types.js';
import { QUEUES } from '../redis/connection.js';
import { isRedisConnectionError } from '../redis/health.js';

/** One delivery (all its requests, and the waits between them) is aborted after this. */
const DELIVERY_TIMEOUT_MS = 60_000;

/**
 * Runs one notifier's queue. Permanent failures are recorded and not retried; rate limits and
 * ordering waits are re-delayed without using an attempt; everything else retries with backoff.
 * Every outcome is an audit row in `notifications`.
 */
export function startNotificationWorker(opts: {
  notifier: Notifier;
  connection: Redis;
  prefix: string;
  audit: AuditStore;
  log: Logger;
  concurrency?: number;
  /** Delay before retry n (tests shorten it); default: 5 s doubling up to 10 min. */
  backoff?: (attemptsMade: number) => number;
  /** Counts deliveries and failures, for /metrics. */
  metrics?: Metrics;
}): Worker {
  const { notifier, audit } = opts;
  const log = opts.log.child({ notifier: notifier.name });
  const worker = new Worker(
    QUEUES.notify(notifier.name),
    async (job: Job<RunEvent>, token?: string) => {
      // Every notifier gets sendable text: a lone surrogate would make Slack's form encoding (and any
      // encodeURIComponent in a link) throw "URI malformed" on every retry (src/core/text.ts).
      const event = storableDeep(job.data);
      const attempt = job.attemptsMade + 1;
      const base = { jobId: event.jobId, notifier: notifier.name, eventType: event.type, seq: event.seq, attempt };
      const delivery = deadline('delivery timeout', DELIVERY_TIMEOUT_MS);
      try {
        const detail = (await notifier.deliver(event, { attempt, log, signal: delivery.signal })) ?? undefined;
        await audit.recordNotification({ ...base, state: 'sent', detail });
        opts.metrics?.notificationsSent.inc({ notifier: notifier.name });
      } catch (err) {
        if (err instanceof NotifyRetryAfterError || err instanceof NotifyNotYetError) {
          if (err instanceof NotifyRetryAfterError) {
            await audit.recordNotification({ ...base, state: 'retrying', error: err.message, detail: { retryAfterMs: err.retryAfterMs } });
          }
          await job.moveToDelayed(Date.now() + err.retryAfterMs, token);
          throw new DelayedError();
        }
        const final = err instanceof NotifyPermanentError || attempt >= (job.opts.attempts ?? 1);
        const message = (err as Error).message;
        opts.metrics?.notificationsFailed.inc({ notifier: notifier.name, final: String(final) });
        await audit.recordNotification({
          ...base,
          state: final ? 'failed' : 'retrying',
          error: message,
          detail: err instanceof NotifyPermanentError ? err.detail : undefined,
        });
        log[final ? 'error' : 'warn'](final ? 'notification failed' : 'notification will be retried', { job: event.jobId, event: event.type, error: message });
        if (err instanceof NotifyPermanentError) throw new UnrecoverableError(message);
        throw err;
      } finally {
        delivery.dispose();
      }
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency ?? 4,
      settings: { backoffStrategy: (attemptsMade: number) => (opts.backoff ?? notifyBackoff)(attemptsMade) },
    },
  );
  // Lost Redis is logged once by the connections' RedisHealth; anything else is a worker problem.
  worker.on('error', (err) => isRedisConnectionError(err) || log.error('notification worker error', { error: err }));
  return worker;
}
