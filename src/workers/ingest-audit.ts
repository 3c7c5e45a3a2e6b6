import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditStore, IngestRecord } from '../store/journal-store.js';
import type { Logger } from '../log.js';
import type { EventSink } from '../notifiers/events.js';
import { publishSafely } from '../notifiers/sink.js';
import type { RuleTable } from '../rules/load.js';
import { untilStored } from '../store/retry.js';
import { QUEUES } from '../redis/connection.js';
import { isRedisConnectionError } from '../redis/health.js';

/**
 * Writes what the receiver decided to the audit trail, off the request path: the receiver only
 * puts one `ingest` job in Redis per delivery. Then publishes `queued` for new runs and
 * `alert_resolved` for runs whose alert Alertmanager reports resolved.
 */
export function startIngestWorker(o: {
  connection: Redis;
  prefix: string;
  audit: AuditStore;
  sink: EventSink;
  table: () => RuleTable;
  log: Logger;
  /** Aborted on shutdown: ends a wait for PostgreSQL (the job is retried later). */
  shutdown?: AbortSignal;
  /** As the remediation worker's: a dead worker's audit job is taken up again after about this long. */
  lockMs?: number;
}): Worker {
  const worker = new Worker(
    QUEUES.ingest,
    async (job: Job<IngestRecord>) => {
      const rec = job.data;
      // A PostgreSQL outage is waited out here (delay, not a used attempt); anything else fails the
      // attempt loudly (see 'failed' below) and BullMQ retries it with backoff.
      const queued = new Set(await untilStored('ingest', () => o.audit.recordIngest(rec), { log: o.log, signal: o.shutdown }));
      const notifyOf = (rule: string) => o.table().rules.find((r) => r.spec.name === rule)?.spec.notify ?? {};
      for (const { alert, decisions } of rec.alerts) {
        for (const d of decisions) {
          const base = { groupKey: rec.groupKey, receiver: rec.receiver, externalURL: rec.externalURL, at: new Date().toISOString(), alert };
          if (d.job && queued.has(d.job.jobId)) {
            o.log.info('run queued', { job: d.job.jobId, rule: d.job.rule, fingerprint: alert.fingerprint, state: 'queued' });
            await publishSafely(o.sink, {
              ...base, type: 'queued', jobId: d.job.jobId, rule: d.job.rule, action: d.job.action, target: d.job.target,
              dryRun: d.job.dryRun, message: `Queued by rule ${d.job.rule}.`, notify: notifyOf(d.job.rule),
            }, o.log);
          }
          if (d.decision === 'not_applicable' && alert.status === 'resolved' && d.jobId) {
            const run = await untilStored('alert resolved', () => o.audit.markAlertResolved(d.jobId!, rec.receivedAt), { log: o.log, signal: o.shutdown });
            if (run) {
              o.log.info('run alert resolved', { job: run.job_id, rule: run.rule, fingerprint: alert.fingerprint, state: run.state });
              await publishSafely(o.sink, {
                ...base, type: 'alert_resolved', jobId: run.job_id, rule: run.rule, action: run.action, target: run.target ?? undefined,
                dryRun: run.dry_run, message: 'Alert resolved in Alertmanager.', notify: notifyOf(run.rule),
              }, o.log);
            }
          }
        }
      }
    },
    { connection: o.connection, prefix: o.prefix, concurrency: 4, lockDuration: o.lockMs ?? 30_000, stalledInterval: o.lockMs ?? 30_000 },
  );
  // Lost Redis is logged once by the connections' RedisHealth; anything else is a worker problem.
  worker.on('error', (err) => isRedisConnectionError(err) || o.log.error('ingest worker error', { error: err }));
  // Never a silent retry loop: every failed attempt says which delivery, how many alerts, and why.
  // /metrics counts them as remediator_queue_jobs{queue="ingest",state="delayed"|"failed"}.
  worker.on('failed', (job, err) => {
    if (!job) return;
    const left = (job.opts.attempts ?? 1) - job.attemptsMade;
    o.log.error(left > 0 ? 'audit ingest failed, will retry' : 'audit ingest failed for good: this delivery is not in the audit', {
      job: job.id, groupKey: job.data.groupKey, receivedAt: job.data.receivedAt, alerts: job.data.alerts.length, attemptsMade: job.attemptsMade, attemptsLeft: left, error: err.message,
    });
  });
  return worker;
}
