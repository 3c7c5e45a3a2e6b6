import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EventSink, RunEvent } from './events.js';
import type { Notifier } from './types.js';

/** Retry for hours, not seconds: 5 s doubling up to 10 min between tries, about 6 h in all. */
export const NOTIFY_ATTEMPTS = 40;
export const notifyBackoff = (attemptsMade: number) => Math.min(5000 * 2 ** Math.max(0, attemptsMade - 1), 600_000);

/**
 * Publishes each run event as one job per interested notifier, on that notifier's own queue, so a
 * Slack outage retries only Slack. Each event gets a per-run sequence number (Redis INCR) so a
 * notifier can keep a thread in order.
 */
export function queueSink(opts: { connection: Redis; prefix: string; targets: { notifier: Notifier; queue: Queue }[] }): EventSink {
  return {
    async publish(event: RunEvent) {
      const wanted = opts.targets.filter((t) => t.notifier.accepts(event));
      if (wanted.length === 0) return;
      const seqKey = `${opts.prefix}:seq:${event.jobId}`;
      const [[, seq]] = (await opts.connection.multi().incr(seqKey).expire(seqKey, 30 * 24 * 3600).exec()) as [[null, number], unknown];
      const withSeq = { ...event, seq };
      await Promise.all(
        wanted.map((t) =>
          t.queue.add(event.type, withSeq, {
            jobId: `${event.jobId}-${seq}`,
            attempts: NOTIFY_ATTEMPTS,
            backoff: { type: 'custom' },
            removeOnComplete: { age: 24 * 3600 },
            removeOnFail: { age: 7 * 24 * 3600 },
          }),
        ),
      );
    },
  };
}

/** Fans one event out to several sinks (tests, or audit-only plus queues). */
export function multiSink(...sinks: EventSink[]): EventSink {
  return { publish: async (e) => void (await Promise.all(sinks.map((s) => s.publish(e)))) };
}

/**
 * Publishes with a few quick retries and never throws: the audit already holds the event, and a
 * notification problem must not fail (and so re-run) a remediation or re-write an audit record.
 */
export async function publishSafely(sink: EventSink, event: RunEvent, log: { error(msg: string, f?: Record<string, unknown>): void }): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await sink.publish(event);
    } catch (err) {
      if (i >= 3) return log.error('could not publish a run event; it is only in the audit trail', { job: event.jobId, event: event.type, error: (err as Error).message });
      await new Promise((r) => setTimeout(r, 500 * i));
    }
  }
}
