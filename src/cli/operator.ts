import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { notifierFollower, NOTIFY_QUEUE } from '../notifiers/follower.js';
import { buildNotifiers } from '../notifiers/registry.js';
import { Approvals } from '../redis/approvals.js';
import { QUEUES } from '../redis/connection.js';
import { Outbox } from '../redis/outbox.js';
import { SafetyState } from '../redis/safety-state.js';
import type { RuleTable } from '../rules/load.js';
import { JournalStore } from '../store/journal-store.js';
import { NotifyState } from '../store/notify-state.js';
import { RunReader } from '../store/runs.js';
import { SafetyAudit } from '../store/safety-audit.js';
import { Journal } from '../run/journal.js';
import type { Operator } from '../run/operator.js';

/**
 * The operator API outside the service (the CLI): the same journal, followed by the same notifiers
 * (so an approval from the CLI shows in Slack), and the queue to release a run waiting for approval.
 */
export function standaloneOperator(o: { config: Config; env: NodeJS.ProcessEnv; pool: Pool; redis: Redis; table: () => RuleTable | undefined; log: Logger }): { op: Operator; close(): Promise<void> } {
  const { config } = o;
  const runs = new RunReader(o.pool, config.DATABASE_SCHEMA);
  const journal = new Journal(new JournalStore(o.pool, config.DATABASE_SCHEMA), runs, { log: o.log });
  const remediations = new Queue(QUEUES.remediations, { connection: o.redis, prefix: config.QUEUE_PREFIX });
  const notify = new Queue(NOTIFY_QUEUE, { connection: o.redis, prefix: config.QUEUE_PREFIX });
  for (const q of [remediations, notify]) q.on('error', () => {});
  const notifiers = buildNotifiers({ config, env: o.env, runs, state: new NotifyState(o.pool, config.DATABASE_SCHEMA), redis: o.redis, table: o.table, log: o.log });
  journal.follow(notifierFollower({ notifiers, outbox: new Outbox(o.redis, config.QUEUE_PREFIX), queue: notify, table: o.table, log: o.log }));
  const op: Operator = {
    store: new SafetyState(o.redis, config.QUEUE_PREFIX), audit: new SafetyAudit(o.pool, config.DATABASE_SCHEMA), approvals: new Approvals(o.redis, config.QUEUE_PREFIX),
    journal, runs, now: () => new Date(),
    release: async (jobId) => {
      const job = await remediations.getJob(jobId);
      if (job && (await job.isDelayed())) await job.promote();
    },
  };
  return { op, close: async () => void (await Promise.all([remediations.close(), notify.close()])) };
}
