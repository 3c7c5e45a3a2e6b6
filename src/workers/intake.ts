import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { IngestRecord } from '../store/journal-store.js';
import type { Logger } from '../log.js';
import type { AlertInfo } from '../core/alert.js';
import type { RuleTable } from '../rules/load.js';
import { decide } from '../rules/table.js';
import { type JobSpec } from '../core/run.js';
import type { Metrics } from '../metrics.js';
import { webhookLogFields } from '../receivers/webhook-log.js';
import { webhookSchema, type Webhook } from '../core/alert.js';
import { claimStale, ensureGroup, finish, forgetConsumer, readDeliveries, type Delivery } from '../redis/delivery-stream.js';
import { KEEP_FINISHED_SECONDS } from '../redis/connection.js';

export interface IngestStageOptions {
  /** Blocks on XREADGROUP: give this stage a connection of its own (`maxRetriesPerRequest: null`). */
  blocking: Redis;
  /** Plain commands (EXISTS, XACK/XDEL), without BullMQ's scripts. */
  redis: Redis;
  prefix: string;
  remediations: Queue;
  /** The audit writer's queue (src/queue/ingest-worker.ts): one job per delivery. */
  ingest: Queue;
  table: () => RuleTable;
  log: Logger;
  metrics?: Metrics;
  /** This process's DRY_RUN (a delivery is a dry run when its receiver or this stage says so). */
  dryRun: boolean;
  /** Deliveries read at once (default 100). */
  batch?: number;
  /** A delivery read by a consumer that has not finished it after this long is taken over (default 10 s). */
  claimIdleMs?: number;
}

export interface IngestStage {
  /** Resolves once the loop has stopped (the batch in hand is finished first). */
  close(): Promise<void>;
}

const AUDIT_JOB_OPTIONS = { attempts: 20, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: KEEP_FINISHED_SECONDS } };

/**
 * Fans accepted deliveries out into remediation jobs, off the request path: reads the delivery
 * stream in batches, decides every alert against the rules, adds the new jobs (ids hashed from the
 * firing, so HA peers, several receivers and re-reads all make one job), hands the decisions to the
 * audit writer as one job per delivery (id from the stream entry, so a re-read adds nothing), and
 * only then acknowledges the entries. A worker that dies mid-batch leaves its entries pending;
 * another takes them over after `claimIdleMs`.
 */
export function startIngestStage(o: IngestStageOptions): IngestStage {
  const consumer = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const count = o.batch ?? 100;
  const claimIdleMs = o.claimIdleMs ?? 10_000;
  let stopping = false;
  let pending = true; // our own unfinished entries first (none at start; after a failed batch, the batch)
  let lastClaim = 0;
  let failures = 0;

  const step = async () => {
    if (Date.now() - lastClaim > Math.min(claimIdleMs, 5000)) {
      lastClaim = Date.now();
      const stale = await claimStale(o.redis, o.prefix, consumer, claimIdleMs, count);
      if (stale.deliveries.length) o.log.warn('taking over deliveries another worker did not finish', { deliveries: stale.deliveries.length });
      await handle(stale.deliveries, stale.gone);
    }
    const read = await readDeliveries(o.blocking, o.prefix, consumer, { count, blockMs: 1000, pending });
    if (pending && read.deliveries.length === 0) pending = false;
    await handle(read.deliveries, read.gone);
  };

  const handle = async (deliveries: Delivery[], gone: string[]) => {
    if (deliveries.length === 0 && gone.length === 0) return;
    await fanOut(o, deliveries);
    await finish(o.redis, o.prefix, [...deliveries.map((d) => d.id), ...gone]);
  };

  const loop = (async () => {
    await ensureGroup(o.redis, o.prefix).catch(() => {});
    while (!stopping) {
      try {
        await step();
        if (failures) o.log.info('ingest stage back', { failedBatches: failures });
        failures = 0;
      } catch (err) {
        if (stopping) break;
        if (failures++ === 0) o.log.warn('ingest stage: batch not finished, will retry it', { error: (err as Error).message });
        pending = true;
        // The group is gone when Redis came back empty (no persistence): make it again.
        if (/NOGROUP/.test((err as Error).message)) await ensureGroup(o.redis, o.prefix).catch(() => {});
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 5), 2000)));
      }
    }
  })();

  return {
    async close() {
      stopping = true;
      // Ends a blocked XREADGROUP at once; a batch in progress runs to its end on the other connection.
      o.blocking.disconnect();
      await loop;
      await forgetConsumer(o.redis, o.prefix, consumer).catch(() => {});
    },
  };
}

/** Decides and enqueues one batch of deliveries; throws (nothing acknowledged) if Redis fails. */
export async function fanOut(o: Pick<IngestStageOptions, 'redis' | 'prefix' | 'remediations' | 'ingest' | 'table' | 'log' | 'metrics' | 'dryRun'>, deliveries: Delivery[]): Promise<void> {
  const table = o.table();
  const records: { delivery: Delivery; record: IngestRecord }[] = [];
  const jobs = new Map<string, JobSpec>();
  for (const delivery of deliveries) {
    const hook = parseDelivery(delivery, o.log);
    if (!hook) continue;
    const ctx = { groupKey: hook.groupKey, receiver: hook.receiver, externalURL: hook.externalURL, receivedAt: delivery.receivedAt, dryRun: o.dryRun || delivery.dryRun };
    const record: IngestRecord = { receivedAt: delivery.receivedAt, receiver: hook.receiver, groupKey: hook.groupKey, externalURL: hook.externalURL, alerts: [] };
    for (const a of hook.alerts) {
      const alert: AlertInfo = {
        fingerprint: a.fingerprint, status: a.status, startsAt: a.startsAt, endsAt: a.endsAt,
        labels: a.labels, annotations: a.annotations, generatorURL: a.generatorURL,
      };
      const { decisions } = decide(table, alert, ctx);
      record.alerts.push({
        alert,
        decisions: decisions.map((d) => ({ decision: d.kind === 'enqueue' ? 'enqueued' : d.kind, rule: d.rule, jobId: d.jobId, reason: d.reason, job: d.job && withoutAlert(d.job) })),
      });
      for (const d of decisions) if (d.job && !jobs.has(d.job.jobId)) jobs.set(d.job.jobId, d.job);
    }
    records.push({ delivery, record });
  }
  // A job id that exists is a firing already handled: by another delivery (HA peers, another
  // receiver, Alertmanager's repeat), or earlier in this batch.
  const existing = await jobsThatExist(o, [...jobs.keys()]);
  const fresh = new Map<string, JobSpec>();
  for (const { record } of records) {
    for (const entry of record.alerts) {
      for (const d of entry.decisions) {
        if (!d.job) continue;
        if (existing.has(d.job.jobId) || fresh.has(d.job.jobId)) {
          d.decision = 'duplicate';
          d.reason = 'this firing already has a job';
        } else {
          fresh.set(d.job.jobId, jobs.get(d.job.jobId)!);
        }
      }
    }
  }
  const spec = (rule: string) => table.rules.find((r) => r.spec.name === rule)?.spec;
  // Jobs first: the audit record must never announce a run whose job is not in Redis. BullMQ
  // ignores an add whose id exists, so two stages racing on one firing still make one job.
  if (fresh.size) {
    await o.remediations.addBulk(
      [...fresh.values()].map((j) => ({
        name: j.action,
        data: j,
        opts: { jobId: j.jobId, attempts: spec(j.rule)?.attempts, backoff: spec(j.rule)?.backoff, removeOnComplete: { age: KEEP_FINISHED_SECONDS }, removeOnFail: { age: KEEP_FINISHED_SECONDS } },
      })),
    );
  }
  if (records.length) {
    await o.ingest.addBulk(records.map(({ delivery, record }) => ({ name: 'delivery', data: record, opts: { ...AUDIT_JOB_OPTIONS, jobId: `d-${delivery.id}` } })));
  }
  if (o.metrics) {
    let duplicates = 0;
    for (const { record } of records) {
      for (const a of record.alerts) {
        for (const d of a.decisions) {
          o.metrics.decisions.inc({ decision: d.decision });
          if (d.decision === 'duplicate') duplicates++;
        }
      }
    }
    o.metrics.jobsEnqueued.inc({ queue: o.remediations.name }, fresh.size);
    o.metrics.jobsDeduplicated.inc({ queue: o.remediations.name }, duplicates);
  }
  // One line per delivery with its decisions (job, rule, fingerprint), as the receiver used to log.
  for (const { record } of records) o.log.info('delivery decided', webhookLogFields(record, record.alerts.reduce((n, a) => n + a.decisions.filter((d) => d.decision === 'enqueued').length, 0), record.alerts.reduce((n, a) => n + a.decisions.filter((d) => d.decision === 'duplicate').length, 0)));
  o.log.debug('deliveries fanned out', { deliveries: deliveries.length, enqueued: fresh.size });
}

/**
 * The delivery as the receiver validated it. The receiver wrote only what passed the same schema,
 * so a failure here means the schema changed between versions: said loudly, never silently dropped.
 */
function parseDelivery(d: Delivery, log: Logger): Webhook | undefined {
  let parsed;
  try {
    parsed = webhookSchema.safeParse(JSON.parse(d.body));
  } catch (err) {
    log.error('delivery in the stream is not JSON: dropped', { delivery: d.id, receivedAt: d.receivedAt, error: (err as Error).message });
    return undefined;
  }
  if (!parsed.success) {
    log.error('delivery in the stream no longer passes the payload schema: dropped', { delivery: d.id, receivedAt: d.receivedAt, issue: parsed.error.issues[0] });
    return undefined;
  }
  return parsed.data;
}

/** One round trip (pipelined): which of these job ids exist in the remediation queue. */
async function jobsThatExist(o: Pick<IngestStageOptions, 'redis' | 'prefix' | 'remediations'>, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const base = `${o.prefix}:${o.remediations.name}:`;
  const counts = await Promise.all(ids.map((id) => o.redis.exists(base + id)));
  return new Set(ids.filter((_, i) => counts[i] === 1));
}

/** The audit record already holds the alert once; the job copy of it would only double the JSON. */
function withoutAlert(job: JobSpec): Omit<JobSpec, 'alert'> {
  const { alert: _alert, ...rest } = job;
  return rest;
}
