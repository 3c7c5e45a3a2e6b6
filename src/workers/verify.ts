import { Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { formatDuration } from '../core/duration.js';
import type { Logger } from '../log.js';
import { isRedisConnectionError } from '../redis/health.js';
import type { RuleTable } from '../rules/load.js';
import { judgeFix, type VerdictDeps } from '../run/verdict.js';

export const VERIFY_QUEUE = 'verify';

/** A successful run to judge once its verify_window has passed. */
export interface VerifyJob {
  runId: string;
  rule: string;
  target: string;
  windowMs: number;
}

/** Schedules the check at the end of the run's verify_window (one job per run). */
export async function scheduleVerify(queue: Queue, v: VerifyJob): Promise<void> {
  await queue.add('verify', v, { jobId: `verify-${v.runId}`, delay: v.windowMs, attempts: 5, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } });
}

/**
 * At the end of a successful run's verify_window: when nothing judged the fix yet (a new firing
 * within the window does, in the loop gate), it held if its alert resolved within the window, and
 * was ineffective otherwise (src/run/verdict.ts).
 */
export function startVerifyWorker(o: { connection: Redis; prefix: string; deps: VerdictDeps; table: () => RuleTable; log: Logger }): Worker {
  const worker = new Worker(
    VERIFY_QUEUE,
    async (job: Job<VerifyJob>) => {
      const v = job.data;
      const run = await o.deps.journal.load(v.runId);
      if (!run || run.state !== 'succeeded' || !run.finished_at || run.fix_verdict) return;
      const end = run.finished_at.getTime() + v.windowMs;
      const window = formatDuration(v.windowMs);
      const fix = { runId: v.runId, rule: v.rule, target: v.target };
      const quarantineAfter = o.table().rules.find((r) => r.spec.name === v.rule)?.spec.quarantine_after ?? 0;
      const now = new Date();
      if (run.alert_resolved_at && run.alert_resolved_at.getTime() <= end) {
        await judgeFix(o.deps, fix, { verdict: 'effective', why: `the alert resolved within verify_window ${window} and did not fire again`, quarantineAfter, now });
      } else {
        await judgeFix(o.deps, fix, { verdict: 'ineffective', why: `its alert did not resolve within verify_window ${window}`, quarantineAfter, now });
      }
    },
    { connection: o.connection, prefix: o.prefix, concurrency: 2 },
  );
  worker.on('error', (err) => isRedisConnectionError(err) || o.log.error('verify worker error', { error: err }));
  return worker;
}
