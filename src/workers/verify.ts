import { isRedisConnectionError } from '../redis/health.js';
import { Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { SafetyAudit } from '../store/safety-audit.js';
import { formatDuration } from '../core/duration.js';
import type { Logger } from '../log.js';
import type { EventSink, RunEvent } from '../notifiers/events.js';
import { publishSafely } from '../notifiers/sink.js';
import type { RuleTable } from '../rules/load.js';
import { judgeEffective, judgeIneffective, streakText } from '../run/verdict.js';
import type { SafetyStore } from '../redis/safety-state.js';

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
 * within the window does, in the worker's gates), it held if its alert resolved within the window,
 * and was ineffective otherwise. Said in the run's Slack thread; a quarantine pages.
 */
export function startVerifyWorker(o: { connection: Redis; prefix: string; store: SafetyStore; audit: SafetyAudit; sink: EventSink; table: () => RuleTable; log: Logger }): Worker {
  const worker = new Worker(
    VERIFY_QUEUE,
    async (job: Job<VerifyJob>) => {
      const v = job.data;
      const run = await o.audit.runWithAlert(v.runId);
      if (!run || run.state !== 'succeeded' || !run.finished_at) return;
      const end = run.finished_at.getTime() + v.windowMs;
      const window = formatDuration(v.windowMs);
      if (run.alert_resolved_at && run.alert_resolved_at.getTime() <= end) {
        await judgeEffective({ store: o.store, audit: o.audit }, { ...v, why: `the alert resolved within verify_window ${window} and did not fire again` });
        return;
      }
      const rule = o.table().rules.find((r) => r.spec.name === v.rule);
      const quarantineAfter = rule?.spec.quarantine_after ?? 0;
      const why = `its alert did not resolve within verify_window ${window}`;
      const judged = await judgeIneffective({ store: o.store, audit: o.audit }, { ...v, why, quarantineAfter, now: new Date() });
      if (!judged) return;
      const q = judged.quarantine;
      const message = `Fix ineffective: ${why}. ${streakText(judged.streak.length, quarantineAfter)}.` +
        (q ? ` Rule ${v.rule} is now quarantined on ${v.target || 'its target'}: no automatic runs there until a person lifts it.` : '');
      const event: RunEvent = {
        type: 'step', jobId: run.job_id, rule: run.rule, action: run.action, target: run.target ?? undefined, alert: run.alert, groupKey: run.group_key ?? '',
        receiver: '', externalURL: '', dryRun: run.dry_run, message, notify: rule?.spec.notify ?? {}, at: new Date().toISOString(),
        details: { streak: judged.streak.length }, ...(q ? { page: 'rule quarantined: its fixes do not hold' } : {}),
      };
      await o.audit.addRunEvent(run.job_id, 'step', message, event.details);
      await publishSafely(o.sink, event, o.log);
    },
    { connection: o.connection, prefix: o.prefix, concurrency: 2 },
  );
  worker.on('error', (err) => isRedisConnectionError(err) || o.log.error('verify worker error', { error: err }));
  return worker;
}
