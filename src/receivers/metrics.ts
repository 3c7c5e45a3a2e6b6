import { errorHandler } from './error-handler.js';
import express, { type Express, type Router } from 'express';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { Counter, Gauge } from 'prom-client';
import { ident } from '../store/migrate.js';
import type { Metrics } from '../metrics.js';
import { withTimeout } from '../core/deadline.js';
import type { Persistence } from '../redis/persistence.js';
import { healthRouter } from './health.js';

/** What every process shares, read from Redis and PostgreSQL at each scrape (receiver processes). */
export interface SharedState {
  queues: () => Queue[];
  /** A fail-fast connection without BullMQ's scripts. */
  redis: Redis;
  pool: Pool;
  schema: string;
  /** Runs held back by a safety gate, by reason, counted in Redis by every worker process. */
  safetyCounts?: () => Promise<Record<string, number>>;
  /** The delivery stream's key: accepted webhooks not yet fanned out into jobs (src/queue/delivery-stream.ts). */
  deliveries?: string[];
}

/**
 * GET /metrics: this process's metrics (see src/metrics.ts) and, where `shared` is given, the
 * state all processes share: the depth of every queue, its oldest waiting job, the workers
 * connected to it, and the remediation runs of the last 24 hours from the audit.
 */
export function metricsRouter(deps: { metrics: Metrics; persistence?: () => Persistence | undefined; shared?: SharedState }): Router {
  const { registry } = deps.metrics;
  const refresh = deps.shared ? sharedGauges(deps.metrics, deps.shared) : async () => undefined;
  const router = express.Router();
  router.get('/metrics', async (_req, res) => {
    const p = deps.persistence?.();
    deps.metrics.redisPersistence.reset();
    if (p) {
      deps.metrics.redisPersistence.set({ mode: 'aof' }, Number(p.aof));
      deps.metrics.redisPersistence.set({ mode: 'rdb' }, Number(p.rdb));
    }
    await refresh();
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}

/** The HTTP app of a worker-only process: /metrics (its own), /healthz and /readyz. */
export function metricsApp(deps: { metrics: Metrics; persistence?: () => Persistence | undefined; health: Parameters<typeof healthRouter>[0] }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(healthRouter(deps.health));
  app.use(metricsRouter(deps));
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  app.use(errorHandler());
  return app;
}

/** The gauges of the shared state, on this process's registry (once per registry). */
export function registerSharedGauges(m: Metrics) {
  const registers = [m.registry];
  const jobs = new Gauge({ name: 'remediator_queue_jobs', help: 'Jobs in each queue by state.', labelNames: ['queue', 'state'], registers });
  const oldest = new Gauge({
    name: 'remediator_queue_oldest_waiting_job_age_seconds', labelNames: ['queue'], registers,
    help: 'Age of the oldest job waiting for a worker in each queue (0 when none waits).',
  });
  const workers = new Gauge({
    name: 'remediator_queue_workers', labelNames: ['queue'], registers,
    help: 'Workers connected to each queue (from CLIENT LIST; no series when Redis refuses it).',
  });
  const runs = new Gauge({
    name: 'remediator_runs_last_24h', labelNames: ['action', 'state', 'reason'], registers,
    help: 'Remediation runs queued in the last 24 hours, by action, state and failure reason (all workers, from the audit).',
  });
  const up = new Gauge({ name: 'remediator_dependencies_up', help: '1 when Redis and PostgreSQL answered this scrape.', registers });
  return { jobs, oldest, workers, runs, up };
}

/** Registers the shared gauges and returns what refreshes them; a scrape waits at most about a second on each store. */
function sharedGauges(m: Metrics, s: SharedState): () => Promise<void> {
  const { jobs, oldest, workers, runs, up } = registerSharedGauges(m);
  // A count kept in Redis by every worker, only ever incremented, read at each scrape: a counter
  // (its name ends in _total, and promtool refuses a gauge so named), set to the shared total.
  const skips = new Counter({ name: 'remediator_safety_skips_total', help: 'Runs not acted on by a safety gate (paused, quarantined, human_ack, resolved, budget, approval), all processes, from Redis.', labelNames: ['reason'] as const, registers: [m.registry] });
  const readSkips = async () => {
    const counts = (await s.safetyCounts?.()) ?? {};
    skips.reset();
    for (const [reason, n] of Object.entries(counts)) skips.inc({ reason }, n);
  };
  return async () => {
    const [redisOk, pgOk] = await Promise.all([
      withTimeout(Promise.all([readQueues(s, jobs, oldest, workers), readSkips()]), 1000, 'queue state').then(() => true, () => false),
      withTimeout(readRuns(s, runs), 1000, 'runs of the last 24h').then(() => true, () => false),
    ]);
    // Nothing stale: what could not be read this time is absent, and dependencies_up says why.
    if (!redisOk) for (const g of [jobs, oldest, workers, skips]) g.reset();
    if (!pgOk) runs.reset();
    up.set(redisOk && pgOk ? 1 : 0);
  };
}

async function readQueues(s: SharedState, jobs: Gauge<'queue' | 'state'>, oldest: Gauge<'queue'>, workers: Gauge<'queue'>): Promise<void> {
  const now = Date.now();
  const read = await Promise.all(
    s.queues().map(async (q) => {
      // BullMQ pushes new jobs on the left of the wait list and workers take from the right:
      // the oldest is the last element. Its timestamp only, never the job's data (up to 1 MB).
      const id = await s.redis.lindex(q.keys.wait!, -1);
      const ts = id ? await s.redis.hget(q.toKey(id), 'timestamp') : null;
      const count = await q.getWorkersCount().catch(() => undefined);
      return { q, counts: await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'), age: ts ? Math.max(0, (now - Number(ts)) / 1000) : 0, count };
    }),
  );
  // Accepted deliveries wait in a stream until a worker's ingest stage fans them out (entries are
  // deleted once done): its length is that backlog, and an entry id starts with its time in ms.
  const streams = s.deliveries ? await Promise.all(s.deliveries.map((k) => readStream(s.redis, k, now))) : undefined;
  const stream = streams && { length: streams.reduce((n, x) => n + x.length, 0), age: Math.max(0, ...streams.map((x) => x.age)) };
  jobs.reset();
  workers.reset();
  // The shards of one queue (src/core/shards.ts) are summed: one series per queue name.
  const byName = new Map<string, { counts: Record<string, number>; age: number; count?: number }>();
  for (const { q, counts, age, count } of read) {
    const t = byName.get(q.name) ?? { counts: {}, age: 0 };
    for (const [state, n] of Object.entries(counts)) t.counts[state] = (t.counts[state] ?? 0) + n;
    t.age = Math.max(t.age, age);
    if (count !== undefined) t.count = Math.max(t.count ?? 0, count);
    byName.set(q.name, t);
  }
  for (const [name, t] of byName) {
    for (const [state, n] of Object.entries(t.counts)) jobs.set({ queue: name, state }, n);
    oldest.set({ queue: name }, t.age);
    if (t.count !== undefined) workers.set({ queue: name }, t.count);
  }
  if (stream) {
    jobs.set({ queue: 'deliveries', state: 'waiting' }, stream.length);
    oldest.set({ queue: 'deliveries' }, stream.age);
  }
}

async function readStream(redis: Redis, key: string, now: number): Promise<{ length: number; age: number }> {
  const [length, first] = await Promise.all([redis.xlen(key), redis.xrange(key, '-', '+', 'COUNT', 1)]);
  const ms = first[0] ? Number(first[0][0].split('-')[0]) : now;
  return { length, age: Math.max(0, (now - ms) / 1000) };
}

async function readRuns(s: SharedState, runs: Gauge<'action' | 'state' | 'reason'>): Promise<void> {
  const { rows } = await s.pool.query<{ action: string; state: string; reason: string | null; n: string }>(
    `SELECT action, state, error_reason AS reason, count(*) AS n FROM ${ident(s.schema)}.runs
     WHERE queued_at > now() - interval '24 hours' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  runs.reset();
  for (const r of rows) runs.set({ action: r.action, state: r.state, reason: r.reason ?? '' }, Number(r.n));
}
