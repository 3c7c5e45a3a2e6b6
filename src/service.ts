import { setMaxListeners } from 'node:events';
import { watch } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { KubeConfig } from '@kubernetes/client-node';
import { createApp } from './app.js';
import { Components } from './components.js';
import type { Config } from './config.js';
import { DeadlineError, withTimeout } from './core/deadline.js';
import { parseShardList, shardsOf, type Shards } from './core/shards.js';
import { postgresError, redisError } from './core/dependencies.js';
import { redactUrl } from './core/redact.js';
import { listen } from './http-server.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { notifierFollower, NOTIFY_QUEUE } from './notifiers/follower.js';
import { buildNotifiers } from './notifiers/registry.js';
import { createSlackClient } from './notifiers/slack/client.js';
import type { Notifier } from './notifiers/types.js';
import { metricsApp } from './receivers/metrics.js';
import { sayIfAdminOff } from './receivers/admin-off.js';
import { fastWebhook } from './receivers/webhook-fast.js';
import { Reconciler } from './reconcile/reconciler.js';
import { Approvals } from './redis/approvals.js';
import { makeQueue, QUEUES, redisConnection } from './redis/connection.js';
import { RedisHealth } from './redis/health.js';
import { Outbox } from './redis/outbox.js';
import { Pacer } from './redis/pacer.js';
import { watchPersistence } from './redis/persistence.js';
import { SafetyState } from './redis/safety-state.js';
import { startHeartbeat } from './redis/heartbeat.js';
import { loadKubeConfig, preloadK8s } from './remediations/kube.js';
import { buildRegistry, type Registry } from './remediations/registry.js';
import { loadRules, RuleLoadError, type RuleTable } from './rules/load.js';
import { consequence, unsetSecrets, type SecretRef } from './rules/secrets.js';
import { Journal } from './run/journal.js';
import type { Operator } from './run/operator.js';
import { JournalStore } from './store/journal-store.js';
import { migrate } from './store/migrate.js';
import { countStatements } from './store/tx.js';
import { NotifyState } from './store/notify-state.js';
import { releaseCooledNumbers, seedNumberPools } from './store/numbers.js';
import { RunReader } from './store/runs.js';
import { SafetyAudit } from './store/safety-audit.js';
import { safetyInForce } from './ui/in-force.js';
import { ReloadStatus } from './rules/reload-status.js';
import { startIntake } from './workers/intake.js';
import { startNotificationWorker } from './workers/notification.js';
import { startRemediationWorker } from './workers/remediation.js';
import { startVerifyWorker, VERIFY_QUEUE } from './workers/verify.js';

export interface Service {
  /** The HTTP address, when this process receives webhooks. */
  url?: string;
  /** Where /metrics and /healthz answer: `url`, or METRICS_PORT in a worker-only process. */
  metricsUrl?: string;
  table(): RuleTable;
  /** Reloads the rules; a bad table is refused and the old one kept. Returns whether it changed. */
  reload(reason: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface ServiceOptions {
  env: NodeJS.ProcessEnv;
  log: Logger;
  watchRules?: boolean;
  registry?: Registry;
}

/** What every part of a process shares: the rule table, the stores, Redis, the journal. */
interface Core {
  config: Config;
  env: NodeJS.ProcessEnv;
  log: Logger;
  metrics: Metrics;
  registry: Registry;
  table: () => RuleTable;
  pool: pg.Pool;
  runs: RunReader;
  safetyAudit: SafetyAudit;
  journal: Journal;
  health: RedisHealth;
  /** Fail-fast connection with BullMQ's scripts (the queues' producer). */
  producer: Redis;
  /** Fail-fast connection for plain commands (the stream, the safety state, the outbox). */
  plain: Redis;
  /** The deployment's shards (src/core/shards.ts): their prefixes, and the ones this process consumes. */
  shards: Shards;
  /** The remediation queue of every shard (index = shard). */
  remediations: Queue[];
  notify: Queue;
  notifiers: Notifier[];
  persistence: ReturnType<typeof watchPersistence>;
  parts: Components;
  /** Aborted when the shutdown grace period ends: running remediations stop and are handed back. */
  shutdown: AbortController;
}

/**
 * The composition root: builds every real client from the config, starts what the role asks
 * for (receiver, workers, or both), each part registered with its stop phase.
 */
export async function startService(config: Config, opts: ServiceOptions): Promise<Service> {
  const { log } = opts;
  const registry = opts.registry ?? buildRegistry();
  let table = await loadRules(config.RULES_DIR, registry);
  const reloads = new ReloadStatus();
  const core = await connect(config, opts, registry, () => table);
  const receiver = config.REMEDIATOR_ROLE !== 'worker';
  const workers = config.REMEDIATOR_ROLE !== 'receiver';
  if (workers) await startWorkers(core);
  let url: string | undefined;
  if (receiver) url = await startReceiver(core, reloads);
  // A worker-only process has no webhook port: its metrics, /healthz and /readyz get a small one.
  let metricsUrl = url;
  if (!receiver) {
    const server = await listen(metricsApp({ metrics: core.metrics, persistence: core.persistence.current, health: { redis: core.plain, pool: core.pool, table: core.table, reloads } }), {
      port: config.METRICS_PORT, host: config.HOST, headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    });
    metricsUrl = httpUrl(server);
    core.parts.add('metrics server', 'connections', () => closeServer(server, true));
  }

  const service: Service = {
    url,
    metricsUrl,
    table: () => table,
    async reload(reason) {
      try {
        const next = await loadRules(config.RULES_DIR, registry);
        table = next;
        core.metrics.rulesLoaded(true, true);
        reloads.succeeded(reason);
        log.info('rules reloaded', { reason, rules: next.rules.length, targets: next.targets.size });
        if (workers) warnMissingSecrets(next, opts.env, log);
        // New seed numbers in number-pool targets (insert-if-missing; never overwrites a state).
        const seededNow = await seedNumberPools(core.pool, config.DATABASE_SCHEMA, next.targets).catch((err: Error) => {
          log.warn('sender number seeding after reload failed', { error: err.message });
          return { inserted: [], conflicts: [] };
        });
        if (seededNow.inserted.length) log.info('sender numbers seeded from targets', { inserted: seededNow.inserted });
        return true;
      } catch (err) {
        core.metrics.rulesLoaded(false, true);
        const problems = err instanceof RuleLoadError ? err.problems : [(err as Error).message];
        reloads.refused(reason, problems);
        log.error('rules reload refused, keeping the previous rules', { reason, problems });
        return false;
      }
    },
    async close() {
      let grace: NodeJS.Timeout | undefined;
      await core.parts.stop({
        log,
        // Workers finish their running jobs; after the grace period those are aborted and handed back.
        // The reason names the deadline, so interrupted runs say "shutdown grace period of 30s reached".
        beforeWork: () => (grace = setTimeout(() => core.shutdown.abort(new DeadlineError('shutdown grace period', config.SHUTDOWN_GRACE)), config.SHUTDOWN_GRACE)),
        afterWork: () => {
          clearTimeout(grace);
          if (workers) log.info('workers drained', { handedBack: core.shutdown.signal.aborted });
        },
      });
    },
  };
  if (opts.watchRules) watchRules(config.RULES_DIR, service, core.parts, log);
  log.info('remediator started', {
    role: config.REMEDIATOR_ROLE, listening: url, ...(receiver ? {} : { metrics: metricsUrl }), rules: table.rules.length, targets: table.targets.size,
    dryRun: config.DRY_RUN, queuePrefix: config.QUEUE_PREFIX, schema: config.DATABASE_SCHEMA,
  });
  return service;
}

/** PostgreSQL (migrated), Redis (connected), the journal and the notifiers that follow it. */
async function connect(config: Config, opts: ServiceOptions, registry: Registry, table: () => RuleTable): Promise<Core> {
  const { log, env } = opts;
  const metrics = createMetrics();
  metrics.rulesLoaded(true, false);
  const parts = new Components();
  // Room for the workers' concurrency, the journal's writer and the notifiers.
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 20, connectionTimeoutMillis: 5000 });
  pool.on('error', (err) => log.warn('postgres pool error', { error: err.message }));
  countStatements(pool, () => metrics.postgresStatements.inc());
  // Either dependency down at start stops the process with a message naming it (see README,
  // Troubleshooting); once started, an outage of either is survived.
  const applied = await migrate(pool, config.DATABASE_SCHEMA).catch(async (err: unknown) => {
    await pool.end().catch(() => {});
    throw postgresError(err, config.DATABASE_URL, `migrating schema ${config.DATABASE_SCHEMA}`);
  });
  if (applied.length) log.info('database migrated', { schema: config.DATABASE_SCHEMA, applied });
  parts.add('postgres pool', 'stores', () => pool.end());
  const seeded = await seedNumberPools(pool, config.DATABASE_SCHEMA, table().targets);
  if (seeded.inserted.length) log.info('sender numbers seeded from targets', { inserted: seeded.inserted });
  for (const c of seeded.conflicts) log.warn('sender number seed not applied', { conflict: c });

  const health = new RedisHealth(log.child({ redis: redactUrl(config.REDIS_URL) }));
  const producer = redisConnection(config.REDIS_URL, 'producer', health, 'producer', config.REDIS_CLUSTER_NODES);
  // BullMQ loads its scripts into the producer; plain commands go on a connection without them.
  const plain = redisConnection(config.REDIS_URL, 'plain', health, 'plain', config.REDIS_CLUSTER_NODES);
  parts.add('redis connections', 'connections', async () => [producer, plain].forEach((c) => c.disconnect()));
  const shards = shardsOf(config.QUEUE_PREFIX, config.SHARDS, config.SHARDS_CONSUMED ? parseShardList(config.SHARDS_CONSUMED, config.SHARDS) : undefined);
  const remediations = shards.prefixes.map((p) => makeQueue(QUEUES.remediations, producer, p));
  const notify = makeQueue(NOTIFY_QUEUE, producer, config.QUEUE_PREFIX);
  parts.add('queues', 'queues', () => Promise.all([...remediations.map((q) => q.close()), notify.close()]));
  // The producer fails fast by design, so it must be connected before the first webhook.
  const plainReady = new Promise<void>((resolve, reject) => {
    if (plain.status === 'ready') return resolve();
    plain.once('ready', () => resolve());
    plain.once('error', reject);
  });
  await withTimeout(Promise.all([remediations[0]!.waitUntilReady(), plainReady]), 5000, 'connecting to Redis').catch(async (err: unknown) => {
    for (const c of [producer, plain]) c.disconnect();
    await Promise.all([...remediations.map((q) => q.close()), notify.close()].map((p) => p.catch(() => {})));
    await pool.end().catch(() => {});
    throw redisError(err, config.REDIS_URL);
  });
  // Accepted alerts live only in Redis until a worker runs them: say loudly if a restart loses them.
  const persistence = watchPersistence(plain, log.child({ redis: redactUrl(config.REDIS_URL) }));
  await persistence.check();

  const shutdown = new AbortController();
  // Every running remediation follows it with one listener (removed when the run ends).
  setMaxListeners(config.WORKER_CONCURRENCY + 50, shutdown.signal);
  const runs = new RunReader(pool, config.DATABASE_SCHEMA);
  const journal = new Journal(new JournalStore(pool, config.DATABASE_SCHEMA), runs, { log, signal: shutdown.signal });
  const notifiers = buildNotifiers({ config, env, runs, state: new NotifyState(pool, config.DATABASE_SCHEMA), redis: plain, table, log });
  journal.follow(notifierFollower({ notifiers, outbox: new Outbox(plain, config.QUEUE_PREFIX), queue: notify, table, log }));
  parts.add('notifiers', 'stores', () => Promise.all(notifiers.map((n) => n.close?.())));
  return {
    config, env, log, metrics, registry, table, pool, runs, safetyAudit: new SafetyAudit(pool, config.DATABASE_SCHEMA), journal, health, producer, plain,
    shards, remediations, notify, notifiers, persistence, parts, shutdown,
  };
}

/** The workers: intake, remediations, verdicts, notifications, and the number-pool sweep. */
async function startWorkers(c: Core): Promise<void> {
  const { config, log } = c;
  const prefix = config.QUEUE_PREFIX;
  // Kubernetes' client is large: only workers whose rules use it load it (a later reload loads it on first use).
  if (c.table().rules.some((r) => r.remediation.targetKind === 'kubernetes')) await preloadK8s();
  if (!c.notifiers.some((n) => n.name === 'slack')) log.warn('Slack is not configured (SLACK_BOT_TOKEN): outcomes go to the audit trail only');
  const ruleKeys = c.table().rules.some((r) => r.spec.notify.pagerduty && r.spec.notify.pagerduty.routing_key_env);
  if (!config.PAGERDUTY_ROUTING_KEY && !ruleKeys) log.warn('PagerDuty is not configured (PAGERDUTY_ROUTING_KEY): outcomes go to the audit trail only');
  warnMissingSecrets(c.table(), c.env, log);
  const conn = (name: string) => {
    const r = redisConnection(config.REDIS_URL, 'worker', c.health, name, config.REDIS_CLUSTER_NODES);
    c.parts.add(`redis ${name}`, 'connections', async () => r.disconnect());
    return r;
  };
  const workerConn = conn('worker');
  const lockConn = conn('locks');
  const verify = makeQueue(VERIFY_QUEUE, lockConn, prefix);
  c.parts.add('verify queue', 'queues', () => verify.close());
  const state = new SafetyState(lockConn, prefix);
  const approvals = new Approvals(lockConn, prefix);
  // The kill switch counts live workers where it writes (src/redis/heartbeat.ts); gone once the work is done.
  const heartbeat = startHeartbeat({ redis: lockConn, prefix, role: config.REMEDIATOR_ROLE, table: c.table, log, shards: { total: c.shards.prefixes.length, consumed: c.shards.consumed } });
  c.parts.add('heartbeat', 'queues', () => heartbeat.stop());
  // One BullMQ worker per consumed shard, WORKER_CONCURRENCY split over them (at least one each:
  // 16 shards with WORKER_CONCURRENCY=8 run up to 16 jobs).
  const perShard = Math.max(1, Math.ceil(config.WORKER_CONCURRENCY / c.shards.consumed.length));
  for (const shard of c.shards.consumed) {
    const remediation = startRemediationWorker({
      connection: workerConn, redis: lockConn, queue: c.remediations[shard]!, queuePrefix: c.shards.prefixes[shard], prefix, table: c.table, registry: c.registry,
      journal: c.journal, runs: c.runs, log, concurrency: perShard, shutdown: c.shutdown.signal, lockMs: config.WORKER_LOCK_MS, metrics: c.metrics,
      deps: { pool: c.pool, schema: config.DATABASE_SCHEMA, env: c.env, fetch: globalThis.fetch, now: () => new Date(), kubeConfig: lazyKubeConfig(c.env) },
      safety: { state, audit: c.safetyAudit, approvals, verify },
    });
    c.parts.add(`remediation worker (shard ${shard})`, 'work', () => remediation.close());
  }
  const verifier = startVerifyWorker({ connection: workerConn, prefix, deps: { journal: c.journal, safety: state, safetyAudit: c.safetyAudit }, table: c.table, log });
  c.parts.add('verify worker', 'work', () => verifier.close());
  if (c.notifiers.length) {
    const notification = startNotificationWorker({
      notifiers: c.notifiers, connection: workerConn, redis: lockConn, prefix, queue: c.notify, outbox: new Outbox(lockConn, prefix), pacer: new Pacer(lockConn, prefix),
      state: new NotifyState(c.pool, config.DATABASE_SCHEMA), log, metrics: c.metrics, shutdown: c.shutdown.signal,
    });
    c.parts.add('notification worker', 'work', () => notification.close());
  }
  // Takes accepted deliveries in, one loop per consumed shard's stream; stopped before the workers.
  for (const shard of c.shards.consumed) {
    const intake = startIntake({
      blocking: conn(`intake-stream-${shard}`), redis: c.plain, prefix: c.shards.prefixes[shard]!, remediations: c.remediations, journal: c.journal,
      lanes: { redis: c.plain, prefix }, table: c.table, log, metrics: c.metrics, dryRun: config.DRY_RUN,
    });
    c.parts.add(`intake (shard ${shard})`, 'intake', () => intake.close());
  }
  // Cooling sender numbers whose time has passed go back to their pool's spares.
  const sweep = setInterval(() => {
    releaseCooledNumbers(c.pool, config.DATABASE_SCHEMA, new Date()).then(
      (released) => released.length && log.info('sender numbers back from cooldown', { numbers: released.map((n) => `${n.pool}/${n.provider_id}`) }),
      (err: Error) => log.warn('cooldown sweep failed', { error: err.message }),
    );
  }, 60_000);
  sweep.unref();
  c.parts.add('number sweep', 'edge', async () => clearInterval(sweep));
}

/** The HTTP side: webhooks, the admin API, Slack and PagerDuty callbacks, the status page; and reconciliation. */
async function startReceiver(c: Core, reloads: ReloadStatus): Promise<string> {
  const { config, log } = c;
  const prefix = config.QUEUE_PREFIX;
  sayIfAdminOff(config, log);
  if (!config.WEBHOOK_TOKEN && !config.WEBHOOK_BASIC_AUTH) {
    log.warn('NO WEBHOOK CREDENTIALS CONFIGURED: anyone who can reach this port can trigger remediations. Set WEBHOOK_TOKEN or WEBHOOK_BASIC_AUTH.');
  }
  const verify = makeQueue(VERIFY_QUEUE, c.producer, prefix);
  c.parts.add('verify queue (metrics)', 'queues', () => verify.close());
  const metricQueues = [...c.remediations, c.notify, verify];
  const webhook = {
    table: c.table, redis: c.plain, prefix, shardPrefixes: c.shards.prefixes, log, metrics: c.metrics,
    waitReplicas: { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS },
    auth: { token: config.WEBHOOK_TOKEN, basic: config.WEBHOOK_BASIC_AUTH }, dryRun: config.DRY_RUN, maxBytes: config.WEBHOOK_MAX_BYTES,
  };
  const state = new SafetyState(c.plain, prefix);
  const operator: Operator = {
    store: state, audit: c.safetyAudit, approvals: new Approvals(c.plain, prefix), journal: c.journal, runs: c.runs, now: () => new Date(),
    // A decision releases the run waiting for it at once (it waits as a delayed job until its expiry).
    release: async (jobId) => {
      // The job is in one shard's queue; asking each is cheap, and decisions are rare.
      for (const q of c.remediations) {
        const job = await q.getJob(jobId);
        if (job && (await job.isDelayed())) return void (await job.promote());
        if (job) return;
      }
    },
  };
  const app = createApp({
    ...webhook, runs: c.runs, pool: c.pool, adminToken: config.ADMIN_TOKEN, viewerToken: config.VIEWER_TOKEN, reloads,
    schema: config.DATABASE_SCHEMA, metrics: c.metrics, queues: () => metricQueues, persistence: c.persistence.current,
    ui: { secureCookie: config.PUBLIC_URL?.startsWith('https:'), inForce: safetyInForce({ store: state, approvals: operator.approvals }) },
    operator,
    slack: config.SLACK_BOT_TOKEN ? createSlackClient({ token: config.SLACK_BOT_TOKEN, apiUrl: config.SLACK_API_URL, log }) : undefined,
    pagerDutyWebhookSecret: config.PAGERDUTY_WEBHOOK_SECRET, slackSigningSecret: config.SLACK_SIGNING_SECRET,
  });
  const server = await listen(app, {
    port: config.PORT, host: config.HOST, fast: fastWebhook(webhook),
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
  });
  c.parts.add('http server', 'edge', async () => {
    await closeServer(server, false);
    log.info('stopped accepting webhooks');
  });
  if (config.ALERTMANAGER_URL) {
    // Alerts that fired while no receiver was up: asked from Alertmanager, fed to the receiver path.
    const reconciler = new Reconciler({
      urls: config.ALERTMANAGER_URL, receiver: config.ALERTMANAGER_RECEIVER, intervalMs: config.RECONCILE_INTERVAL, log: log.child({ component: 'reconcile' }),
      deps: { table: c.table, redis: c.plain, prefix, dryRun: config.DRY_RUN, log },
    }).start();
    c.parts.add('reconciler', 'edge', () => reconciler.close());
  }
  return httpUrl(server);
}

/** Reloads the rules when their directory changes (debounced); SIGHUP does the same (src/main.ts). */
function watchRules(dir: string, service: Service, parts: Components, log: Logger): void {
  let debounce: NodeJS.Timeout | undefined;
  try {
    const watcher = watch(dir, () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => void service.reload('rules directory changed'), 300);
    });
    parts.add('rules watcher', 'edge', async () => {
      watcher.close();
      clearTimeout(debounce);
    });
  } catch (err) {
    log.warn('cannot watch the rules directory; reload with SIGHUP', { error: (err as Error).message });
  }
}

function closeServer(server: Server, all: boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    if (all) server.closeAllConnections();
    else server.closeIdleConnections();
  });
}

/** KUBECONFIG, or the in-cluster service account; loaded on first use only (most rules never need it). */
function lazyKubeConfig(env: NodeJS.ProcessEnv): () => KubeConfig {
  let kc: KubeConfig | undefined;
  return () => (kc ??= loadKubeConfig(env));
}

function httpUrl(server: Server): string {
  const addr = server.address() as AddressInfo;
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
}

/**
 * One warning per secret the rules name that this worker's environment lacks: otherwise it is
 * found only when an alert fires. `remediator rules check --env` reports the same before a deploy.
 */
function warnMissingSecrets(table: RuleTable, env: NodeJS.ProcessEnv, log: Logger): void {
  const byVariable = new Map<string, SecretRef[]>();
  for (const r of unsetSecrets(table.secrets, env)) byVariable.set(r.variable, [...(byVariable.get(r.variable) ?? []), r]);
  for (const [variable, refs] of byVariable) {
    const usedBy = refs.map((r) => `${r.subject} ${r.path} (${r.file}:${r.line})`);
    log.warn(`rule secret ${variable} is not set: ${consequence(refs[0]!)}`, { variable, usedBy });
  }
}

