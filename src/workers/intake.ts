import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { checkWebhook, type Webhook } from '../core/alert.js';
import { incidentKey, type JobSpec } from '../core/run.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Journal } from '../run/journal.js';
import { laneOf, type Lanes } from '../run/lanes.js';
import { jobShard } from '../run/placement.js';
import type { RuleTable } from '../rules/load.js';
import { decide } from '../rules/table.js';
import { claimStale, ensureGroup, finish, forgetConsumer, readDeliveries, type Delivery } from '../redis/delivery-stream.js';
import { KEEP_FINISHED_SECONDS } from '../redis/connection.js';
import type { IntakeDecision, IntakeDelivery } from '../store/journal-store.js';

export interface IntakeOptions {
  /** Blocks on XREADGROUP: give the intake a connection of its own (`maxRetriesPerRequest: null`). */
  blocking: Redis;
  /** Plain commands (XACK/XDEL, lane counters), without BullMQ's scripts. */
  redis: Redis;
  /** This intake's shard: the delivery stream it reads. */
  prefix: string;
  /** The remediation queue of every shard (index = shard): a job goes to its target's shard (src/run/placement.ts). */
  remediations: Queue[];
  journal: Journal;
  /** Storm detection per rule, for fairness (src/run/lanes.ts). */
  lanes: Lanes;
  table: () => RuleTable;
  log: Logger;
  metrics?: Metrics;
  /** This process's DRY_RUN (a delivery is a dry run when its receiver or this intake says so). */
  dryRun: boolean;
  /** Deliveries read at once (default 100). */
  batch?: number;
  /** A delivery read by a consumer that has not finished it after this long is taken over (default 10 s). */
  claimIdleMs?: number;
  /** Batches taken in at once (default 2). */
  inflight?: number;
}

export interface Intake {
  /** Resolves once the loop has stopped (the batch in hand is finished first). */
  close(): Promise<void>;
}

/**
 * Takes accepted deliveries in, off the request path: reads the delivery stream in batches,
 * decides every alert against the rules, writes the batch to the run journal (a run with its
 * `queued` event for each new firing, every resolution, alerts and decisions: one transaction),
 * puts the new runs' jobs on the queue, and only then acknowledges the entries. A worker that dies
 * mid-batch leaves its entries pending; another takes them over after `claimIdleMs` and the
 * journal recognises the deliveries it already took in.
 */
export function startIntake(o: IntakeOptions): Intake {
  const consumer = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const count = o.batch ?? 100;
  const claimIdleMs = o.claimIdleMs ?? 10_000;
  let stopping = false;
  let pending = true; // our own unfinished entries first (none at start; after a failed batch, the batch)
  let lastClaim = 0;
  let failures = 0;

  // Two batches in flight: the next one is read and decided while the last one waits for
  // PostgreSQL and Redis. Batches are independent (the journal serialises what must be).
  const inflight = new Set<Promise<void>>();
  const maxInflight = o.inflight ?? 2;

  const handle = async (deliveries: Delivery[], gone: string[]) => {
    if (deliveries.length === 0 && gone.length === 0) return;
    await takeIn(o, deliveries);
    await finish(o.redis, o.prefix, [...deliveries.map((d) => d.id), ...gone]);
  };

  const start = (deliveries: Delivery[], gone: string[]) => {
    if (deliveries.length === 0 && gone.length === 0) return;
    const p: Promise<void> = handle(deliveries, gone).then(
      () => {
        if (failures) o.log.info('intake back', { failedBatches: failures });
        failures = 0;
      },
      (err: Error) => {
        if (stopping) return;
        if (failures++ === 0) o.log.warn('intake: batch not finished, will retry it', { error: err.message });
        pending = true;
        // The group is gone when Redis came back empty (no persistence): make it again.
        if (/NOGROUP/.test(err.message)) void ensureGroup(o.redis, o.prefix).catch(() => {});
      },
    ).finally(() => inflight.delete(p));
    inflight.add(p);
  };

  const step = async () => {
    if (inflight.size >= maxInflight) {
      await Promise.race(inflight);
      return;
    }
    // Own unfinished entries (after a failed batch) and others' abandoned ones are read again
    // only when nothing is in flight, so an entry is never in two batches of this intake at once.
    if (pending || Date.now() - lastClaim > Math.min(claimIdleMs, 5000)) {
      await Promise.all(inflight);
      if (failures) await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 5), 2000)));
    }
    if (Date.now() - lastClaim > Math.min(claimIdleMs, 5000)) {
      lastClaim = Date.now();
      const stale = await claimStale(o.redis, o.prefix, consumer, claimIdleMs, count);
      if (stale.deliveries.length) o.log.warn('taking over deliveries another worker did not finish', { deliveries: stale.deliveries.length });
      start(stale.deliveries, stale.gone);
      await Promise.all(inflight);
    }
    const wasPending = pending;
    const read = await readDeliveries(o.blocking, o.prefix, consumer, { count, blockMs: 1000, pending });
    if (wasPending) {
      if (read.deliveries.length === 0) pending = false;
      start(read.deliveries, read.gone);
      await Promise.all(inflight);
      return;
    }
    start(read.deliveries, read.gone);
  };

  const loop = (async () => {
    await ensureGroup(o.redis, o.prefix).catch(() => {});
    while (!stopping) {
      try {
        await step();
      } catch (err) {
        if (stopping) break;
        if (failures++ === 0) o.log.warn('intake: reading the delivery stream failed, will retry', { error: (err as Error).message });
        pending = true;
        if (/NOGROUP/.test((err as Error).message)) await ensureGroup(o.redis, o.prefix).catch(() => {});
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 5), 2000)));
      }
    }
    await Promise.all(inflight);
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

/** Decides one batch, writes it to the journal and queues its jobs; throws (nothing acknowledged) on failure. */
export async function takeIn(o: Pick<IntakeOptions, 'remediations' | 'journal' | 'lanes' | 'table' | 'log' | 'metrics' | 'dryRun'>, deliveries: Delivery[]): Promise<void> {
  const queues = o.remediations;
  const table = o.table();
  const batch: IntakeDelivery[] = [];
  for (const delivery of deliveries) {
    const hook = parseDelivery(delivery, o.log);
    if (!hook) continue;
    const ctx = { groupKey: hook.groupKey, receiver: hook.receiver, externalURL: hook.externalURL, receivedAt: delivery.receivedAt, dryRun: o.dryRun || delivery.dryRun };
    const entry: IntakeDelivery = { id: delivery.id, receivedAt: delivery.receivedAt, receiver: hook.receiver, groupKey: hook.groupKey, externalURL: hook.externalURL, alerts: [] };
    for (const alert of hook.alerts) {
      const { decisions } = decide(table, alert, ctx);
      entry.alerts.push({
        alert,
        decisions: decisions.map((d): IntakeDecision => {
          const rule = d.rule === undefined ? undefined : table.rules.find((r) => r.spec.name === d.rule)?.spec;
          const pd = rule?.notify.pagerduty;
          return {
            decision: d.kind === 'enqueue' ? 'enqueued' : d.kind,
            rule: d.rule,
            jobId: d.jobId,
            reason: d.reason,
            job: d.job,
            incidentKey: d.job ? incidentKey(pd ? pd.dedup : 'group_key', d.job) : undefined,
            resolves: d.kind === 'not_applicable' && alert.status === 'resolved',
          };
        }),
      });
    }
    batch.push(entry);
  }
  if (batch.length === 0) return;
  // The journal first: a run exists (and knows a resolution taken in with it) before its job can start.
  const { jobs, events } = await o.journal.intake(batch);
  const byId = new Map(jobs.map((j) => [j.jobId, j]));
  for (const e of events) {
    if (e.type === 'queued') o.log.info('run queued', { job: e.jobId, rule: e.rule, fingerprint: byId.get(e.jobId)?.alert.fingerprint, state: 'queued' });
  }
  if (jobs.length) {
    const priorities = await laneOf(o.lanes, jobs, (rule) => table.rules.find((r) => r.spec.name === rule)?.spec);
    // BullMQ ignores an add whose id exists, so two intakes racing on one firing still make one job
    // (a job's shard is a function of the job: the same firing always goes to the same queue).
    const byShard = new Map<number, Parameters<Queue['addBulk']>[0]>();
    jobs.forEach((j: JobSpec, i) => {
      const spec = table.rules.find((r) => r.spec.name === j.rule)?.spec;
      const shard = jobShard(j, spec, queues.length);
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push({
        name: j.action,
        data: j,
        opts: {
          jobId: j.jobId, attempts: spec?.attempts, backoff: spec?.backoff, ...(priorities[i] ? { priority: priorities[i] } : {}),
          removeOnComplete: { age: KEEP_FINISHED_SECONDS }, removeOnFail: { age: KEEP_FINISHED_SECONDS },
        },
      });
    });
    await Promise.all([...byShard].map(([shard, list]) => queues[shard]!.addBulk(list)));
  }
  let enqueued = 0;
  let duplicates = 0;
  for (const d of batch) {
    let mine = 0;
    let dup = 0;
    for (const a of d.alerts) {
      for (const x of a.decisions) {
        o.metrics?.decisions.inc({ decision: x.decision });
        if (x.decision === 'duplicate') dup++;
        else if (x.job) mine++;
      }
    }
    enqueued += mine;
    duplicates += dup;
    // One line per delivery with its decisions (job, rule, fingerprint).
    o.log.info('delivery decided', deliveryLogFields(d, mine, dup));
  }
  o.metrics?.jobsEnqueued.inc({ queue: 'remediations' }, enqueued);
  o.metrics?.jobsDeduplicated.inc({ queue: 'remediations' }, duplicates);
}

/**
 * The delivery as the receiver accepted it. The receiver wrote only what passed the same check,
 * so a failure here means the check changed between versions: said loudly, never silently dropped.
 */
function parseDelivery(d: Delivery, log: Logger): Webhook | undefined {
  let body: unknown;
  try {
    body = JSON.parse(d.body);
  } catch (err) {
    log.error('delivery in the stream is not JSON: dropped', { delivery: d.id, receivedAt: d.receivedAt, error: (err as Error).message });
    return undefined;
  }
  const checked = checkWebhook(body);
  if (!checked.ok) {
    log.error('delivery in the stream no longer passes the payload check: dropped', { delivery: d.id, receivedAt: d.receivedAt, issue: checked.issues[0] });
    return undefined;
  }
  return checked.webhook;
}

/** At most this many runs are named in one delivery's log line (a storm has thousands of alerts). */
const MAX_NAMED = 50;

/** The fields of the one log line per delivery: each run it created or found, and how many alerts matched no rule. */
export function deliveryLogFields(d: IntakeDelivery, enqueued: number, duplicates: number): Record<string, unknown> {
  const runs: { job: string; rule?: string; fingerprint: string; decision: string }[] = [];
  let total = 0;
  let unmatched = 0;
  for (const { alert, decisions } of d.alerts) {
    if (!decisions.some((x) => x.jobId)) unmatched++;
    for (const x of decisions) {
      if (!x.jobId) continue;
      total++;
      if (runs.length < MAX_NAMED) runs.push({ job: x.jobId, rule: x.rule, fingerprint: alert.fingerprint, decision: x.decision });
    }
  }
  return {
    groupKey: d.groupKey, receiver: d.receiver, alerts: d.alerts.length, enqueued, duplicates, unmatched,
    runs, ...(total > runs.length ? { runsNotNamed: total - runs.length } : {}),
  };
}
