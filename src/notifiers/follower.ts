import type { Queue } from 'bullmq';
import type { RecordedEvent } from '../core/run.js';
import type { Logger } from '../log.js';
import type { Outbox, Mark } from '../redis/outbox.js';
import type { RuleTable } from '../rules/load.js';
import type { Follower } from '../run/journal.js';
import type { Notifier } from './types.js';

/** The data of a drain job: one notifier's destination to bring up to date. */
export interface DrainJob {
  notifier: string;
  destination: string;
}

export const NOTIFY_QUEUE = 'notify';

/**
 * The notifiers' side of the journal: each durable event marks the items it changes in the
 * outbox (src/redis/outbox.ts), and a destination with no drain running gets one (a job on the
 * notify queue). Nothing here calls Slack or PagerDuty, so a remediation never waits for them.
 */
export function notifierFollower(o: { notifiers: Notifier[]; outbox: Outbox; queue: Queue; table: () => RuleTable | undefined; log: Logger }): Follower {
  return {
    name: 'notifiers',
    async follow(events: RecordedEvent[]) {
      const table = o.table();
      const marks = new Map<string, { notifier: string; destination: string; marks: Mark[] }>();
      for (const e of events) {
        const rule = table?.rules.find((r) => r.spec.name === e.rule)?.spec;
        for (const n of o.notifiers) {
          for (const r of n.route(e, rule)) {
            const key = `${n.name}\n${r.destination}`;
            let m = marks.get(key);
            if (!m) marks.set(key, (m = { notifier: n.name, destination: r.destination, marks: [] }));
            m.marks.push({ item: r.item, urgent: r.urgent });
          }
        }
      }
      await Promise.all([...marks.values()].map(async (m) => {
        const round = await o.outbox.mark(m.destination, m.marks);
        if (round > 0) await startDrain(o.queue, { notifier: m.notifier, destination: m.destination }, round);
      }));
    },
  };
}

/** Adds the drain job of one round (ids are unique per round: a finishing drain never hides a new one). */
export async function startDrain(queue: Queue, d: DrainJob, round: number, delayMs = 0): Promise<void> {
  await queue.add('drain', d, {
    jobId: `drain-${round}`, delay: delayMs, attempts: 1000, backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: true, removeOnFail: { age: 24 * 3600 },
  });
}
