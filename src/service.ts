import type { ControlEntry } from './ui/rules-page.js';
import { setMaxListeners } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, preloadK8s } from './remediations/kube.js';
import { createApp } from './app.js';
import { listen } from './http-server.js';
import { DeadlineError } from './core/deadline.js';
import { AuditStore } from './store/journal-store.js';
import { migrate } from './store/migrate.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { auditOnlySink, type EventSink } from './notifiers/events.js';
import { buildNotifiers } from './notifiers/registry.js';
import { createSlackClient } from './notifiers/slack.js';
import { queueSink } from './notifiers/sink.js';
import { startIngestWorker } from './workers/ingest-audit.js';
import { startIngestStage } from './workers/intake.js';
import { fastWebhook } from './receivers/webhook-fast.js';
import { startNotificationWorker } from './workers/notification.js';
import { makeQueue, QUEUES, redisConnection, withDeadline } from './redis/connection.js';
import { startRemediationWorker } from './workers/remediation.js';
import { watchPersistence } from './redis/persistence.js';
import { createMetrics } from './metrics.js';
import { metricsApp } from './receivers/metrics.js';
import { sayIfAdminOff } from './receivers/admin-off.js';
import { RedisHealth } from './redis/health.js';
import { Reconciler } from './reconcile/reconciler.js';
import { buildRegistry, type Registry } from './remediations/registry.js';
import type { RemediationDeps } from './remediations/types.js';
import { loadRules, RuleLoadError, type RuleTable } from './rules/load.js';
import { consequence, unsetSecrets, type SecretRef } from './rules/secrets.js';
import { postgresError, redisError } from './core/dependencies.js';
import { redactUrl } from './core/redact.js';
import { releaseCooledNumbers, seedNumberPools } from './store/numbers.js';
import { SafetyAudit } from './store/safety-audit.js';
import { SafetyStore } from './redis/safety-state.js';
import { Approvals } from './redis/approvals.js';
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

/**
 * The composition root: builds every real client from the config, starts what the role asks
 * for (receiver, workers, or both) and returns a handle to stop it in order.
 */
export async function startService(config: Config, opts: { env: NodeJS.ProcessEnv; log: Logger; watchRules?: boolean; registry?: Registry }): Promise<Service> {
  const { log, env } = opts;
  const registry = opts.registry ?? buildRegistry();
  let table = await loadRules(config.RULES_DIR, registry);
  const metrics = createMetrics();
  metrics.rulesLoaded(true, false);
  const receiver = config.REMEDIATOR_ROLE !== 'worker';
  const workers = config.REMEDIATOR_ROLE !== 'receiver';

  // Room for the workers' concurrency plus the Slack notifier's per-thread locked connections.
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 20, connectionTimeoutMillis: 5000 });
  pool.on('error', (err) => log.warn('postgres pool error', { error: err.message }));
  // Either dependency down at start stops the process with a message naming it (see README,
  // Troubleshooting); once started, an outage of either is survived.
  const applied = await migrate(pool, config.DATABASE_SCHEMA).catch(async (err: unknown) => {
    await pool.end().catch(() => {});
    throw postgresError(err, config.DATABASE_URL, `migrating schema ${config.DATABASE_SCHEMA}`);
  });
  if (applied.length) log.info('database migrated', { schema: config.DATABASE_SCHEMA, applied });
  const audit = new AuditStore(pool, config.DATABASE_SCHEMA);
  const safetyAudit = new SafetyAudit(pool, config.DATABASE_SCHEMA);
  const seeded = await seedNumberPools(pool, config.DATABASE_SCHEMA, table.targets);
  if (seeded.inserted.length) log.info('sender numbers seeded from targets', { inserted: seeded.inserted });
  for (const c of seeded.conflicts) log.warn('sender number seed not applied', { conflict: c });

  const prefix = config.QUEUE_PREFIX;
  const redisHealth = new RedisHealth(log.child({ redis: redactUrl(config.REDIS_URL) }));
  const producer = redisConnection(config.REDIS_URL, 'producer', redisHealth, 'producer', config.REDIS_CLUSTER_NODES);
  // BullMQ loads its scripts into the producer; plain commands go on a connection without them.
  const plain = redisConnection(config.REDIS_URL, 'plain', redisHealth, 'plain', config.REDIS_CLUSTER_NODES);
  const closers: (() => Promise<unknown>)[] = [];
  const queues: Queue[] = [];
  const ws: Worker[] = [];
  const stopFirst: (() => Promise<unknown>)[] = [];
  const conns: Redis[] = [producer, plain];
  const remediationsQueue = makeQueue(QUEUES.remediations, producer, prefix);
  const ingestQueue = makeQueue(QUEUES.ingest, producer, prefix);
  queues.push(remediationsQueue, ingestQueue);
  // The producer fails fast by design, so it must be connected before the first webhook.
  const plainReady = new Promise<void>((resolve, reject) => {
    if (plain.status === 'ready') return resolve();
    plain.once('ready', () => resolve());
    plain.once('error', reject);
  });
  await withDeadline(Promise.all([remediationsQueue.waitUntilReady(), plainReady]), 5000, 'connecting').catch(async (err: unknown) => {
    for (const c of conns) c.disconnect();
    await Promise.all(queues.map((q) => q.close().catch(() => {})));
    await pool.end().catch(() => {});
    throw redisError(err, config.REDIS_URL);
  });
  // Accepted alerts live only in Redis until a worker runs them: say loudly if a restart loses them.
  const persistence = watchPersistence(plain, log.child({ redis: redactUrl(config.REDIS_URL) }));
  await persistence.check();

  let server: Server | undefined;
  let url: string | undefined;
  const shutdown = new AbortController();
  // Every running remediation follows it with one listener (removed when the run ends).
  setMaxListeners(config.WORKER_CONCURRENCY + 10, shutdown.signal);

  const notifiers = buildNotifiers(config, { audit, pool, schema: config.DATABASE_SCHEMA, env, log });
  let sink: EventSink = auditOnlySink;
  closers.push(...notifiers.filter((n) => n.close).map((n) => () => n.close!()));
  if (workers) {
    // Kubernetes' client is large: only workers whose rules use it load it (a later reload loads it on first use).
    if (table.rules.some((r) => r.remediation.targetKind === 'kubernetes')) await preloadK8s();
    if (!notifiers.some((n) => n.name === 'slack')) log.warn('Slack is not configured (SLACK_BOT_TOKEN): outcomes go to the audit trail only');
    const ruleKeys = table.rules.some((r) => r.spec.notify.pagerduty && r.spec.notify.pagerduty.routing_key_env);
    if (!config.PAGERDUTY_ROUTING_KEY && !ruleKeys) log.warn('PagerDuty is not configured (PAGERDUTY_ROUTING_KEY): outcomes go to the audit trail only');
    warnMissingSecrets(table, env, log);
    const workerConn = redisConnection(config.REDIS_URL, 'worker', redisHealth, 'worker', config.REDIS_CLUSTER_NODES);
    const lockConn = redisConnection(config.REDIS_URL, 'worker', redisHealth, 'locks', config.REDIS_CLUSTER_NODES);
    conns.push(workerConn, lockConn);
    const targets = notifiers.map((n) => ({ notifier: n, queue: makeQueue(QUEUES.notify(n.name), lockConn, prefix) }));
    queues.push(...targets.map((t) => t.queue));
    if (targets.length) sink = queueSink({ connection: lockConn, prefix, targets });
    const safetyStore = new SafetyStore(lockConn, prefix);
    const verifyQueue = makeQueue(VERIFY_QUEUE, lockConn, prefix);
    queues.push(verifyQueue);
    const deps: RemediationDeps = {
      pool,
      schema: config.DATABASE_SCHEMA,
      env,
      fetch: globalThis.fetch,
      now: () => new Date(),
      kubeConfig: lazyKubeConfig(env),
    };
    ws.push(
      startRemediationWorker({
        connection: workerConn, redis: lockConn, prefix, table: () => table, registry, audit, sink, deps, log, concurrency: config.WORKER_CONCURRENCY,
        shutdown: shutdown.signal, lockMs: config.WORKER_LOCK_MS, metrics,
        safety: { store: safetyStore, audit: safetyAudit, approvals: new Approvals(lockConn, prefix, safetyAudit), verify: verifyQueue },
      }),
      startVerifyWorker({ connection: workerConn, prefix, store: safetyStore, audit: safetyAudit, sink, table: () => table, log }),
      startIngestWorker({ connection: workerConn, prefix, audit, sink, table: () => table, log, shutdown: shutdown.signal, lockMs: config.WORKER_LOCK_MS }),
      ...notifiers.map((notifier) => startNotificationWorker({ notifier, connection: workerConn, prefix, audit, log, metrics })),
    );
    // Fans accepted deliveries out into remediation jobs; stopped before the workers (closers run after them).
    const stage = startIngestStage({
      blocking: redisConnection(config.REDIS_URL, 'worker', redisHealth, 'ingest-stream', config.REDIS_CLUSTER_NODES), redis: plain, prefix,
      remediations: remediationsQueue, ingest: ingestQueue, table: () => table, log, metrics, dryRun: config.DRY_RUN,
    });
    stopFirst.push(() => stage.close());
    // Cooling sender numbers whose time has passed go back to their pool's spares.
    const sweep = setInterval(() => {
      releaseCooledNumbers(pool, config.DATABASE_SCHEMA, new Date()).then(
        (released) => released.length && log.info('sender numbers back from cooldown', { numbers: released.map((n) => `${n.pool}/${n.provider_id}`) }),
        (err: Error) => log.warn('cooldown sweep failed', { error: err.message }),
      );
    }, 60_000);
    sweep.unref();
    closers.push(async () => clearInterval(sweep));
  }

  if (receiver) {
    sayIfAdminOff(config, log);
    if (!config.WEBHOOK_TOKEN && !config.WEBHOOK_BASIC_AUTH) {
      log.warn('NO WEBHOOK CREDENTIALS CONFIGURED: anyone who can reach this port can trigger remediations. Set WEBHOOK_TOKEN or WEBHOOK_BASIC_AUTH.');
    }
    // Queue depths for /metrics: every queue, whichever processes consume them.
    const notifyQueues = ['slack', 'pagerduty'].map((n) => makeQueue(QUEUES.notify(n), producer, prefix));
    queues.push(...notifyQueues);
    // A receiver-only process tells Slack about PagerDuty acknowledgments through the same queues.
    if (!workers) {
      const targets = notifiers.flatMap((n) => notifyQueues.filter((q) => q.name === QUEUES.notify(n.name)).map((queue) => ({ notifier: n, queue })));
      if (targets.length) sink = queueSink({ connection: producer, prefix, targets });
    }
    const metricQueues = [remediationsQueue, ingestQueue, ...notifyQueues];
    const webhook = {
      table: () => table, redis: plain, prefix, log, metrics,
      auth: { token: config.WEBHOOK_TOKEN, basic: config.WEBHOOK_BASIC_AUTH }, dryRun: config.DRY_RUN, maxBytes: config.WEBHOOK_MAX_BYTES,
    };
    const operatorStore = new SafetyStore(plain, prefix);
    const app = createApp({
      ...webhook, audit, pool, adminToken: config.ADMIN_TOKEN,
      schema: config.DATABASE_SCHEMA, metrics, queues: () => metricQueues, persistence: persistence.current,
      ui: { secureCookie: config.PUBLIC_URL?.startsWith('https:'), controls: () => controlsOf(operatorStore) },
      operator: { store: operatorStore, audit: safetyAudit, approvals: new Approvals(plain, prefix, safetyAudit), now: () => new Date() },
      slack: config.SLACK_BOT_TOKEN ? createSlackClient({ token: config.SLACK_BOT_TOKEN, apiUrl: config.SLACK_API_URL, log }) : undefined,
      pagerDutyWebhookSecret: config.PAGERDUTY_WEBHOOK_SECRET, slackSigningSecret: config.SLACK_SIGNING_SECRET, sink,
    });
    server = await listen(app, {
      port: config.PORT, host: config.HOST, fast: fastWebhook(webhook),
      headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    });
    url = httpUrl(server);
    if (config.ALERTMANAGER_URL) {
      // Alerts that fired while no receiver was up: asked from Alertmanager, fed to the receiver path.
      const reconciler = new Reconciler({
        urls: config.ALERTMANAGER_URL, receiver: config.ALERTMANAGER_RECEIVER, intervalMs: config.RECONCILE_INTERVAL, log: log.child({ component: 'reconcile' }),
        deps: { table: () => table, redis: plain, prefix, dryRun: config.DRY_RUN, log },
      }).start();
      closers.unshift(() => reconciler.close());
    }
  }
  // A worker-only process has no webhook port: its metrics, /healthz and /readyz get a small one.
  let metricsServer: Server | undefined;
  if (!receiver) {
    metricsServer = await listen(metricsApp({ metrics, persistence: persistence.current, health: { redis: plain, pool, table: () => table } }), {
      port: config.METRICS_PORT, host: config.HOST,
      headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    });
  }
  const metricsUrl = metricsServer ? httpUrl(metricsServer) : url;

  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  const service: Service = {
    url,
    metricsUrl,
    table: () => table,
    async reload(reason) {
      try {
        const next = await loadRules(config.RULES_DIR, registry);
        table = next;
        metrics.rulesLoaded(true, true);
        log.info('rules reloaded', { reason, rules: next.rules.length, targets: next.targets.size });
        if (workers) warnMissingSecrets(next, env, log);
        // New seed numbers in number-pool targets (insert-if-missing; never overwrites a state).
        const seededNow = await seedNumberPools(pool, config.DATABASE_SCHEMA, next.targets).catch((err: Error) => {
          log.warn('sender number seeding after reload failed', { error: err.message });
          return { inserted: [], conflicts: [] };
        });
        if (seededNow.inserted.length) log.info('sender numbers seeded from targets', { inserted: seededNow.inserted });
        return true;
      } catch (err) {
        metrics.rulesLoaded(false, true);
        const problems = err instanceof RuleLoadError ? err.problems : [(err as Error).message];
        log.error('rules reload refused, keeping the previous rules', { reason, problems });
        return false;
      }
    },
    async close() {
      watcher?.close();
      clearTimeout(debounce);
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeIdleConnections();
        });
        log.info('stopped accepting webhooks');
      }
      // Workers finish their running jobs; after the grace period those are aborted and retried later.
      // The reason names the deadline, so interrupted runs say "shutdown grace period of 30s reached".
      await Promise.all(stopFirst.map((s) => s()));
      const grace = setTimeout(() => shutdown.abort(new DeadlineError('shutdown grace period', config.SHUTDOWN_GRACE)), config.SHUTDOWN_GRACE);
      await Promise.all(ws.map((w) => w.close()));
      clearTimeout(grace);
      if (ws.length) log.info('workers drained', { handedBack: shutdown.signal.aborted });
      await Promise.all(closers.map((c) => c()));
      await Promise.all(queues.map((q) => q.close()));
      if (metricsServer) {
        const m = metricsServer;
        await new Promise<void>((resolve) => {
          m.close(() => resolve());
          m.closeAllConnections();
        });
      }
      for (const c of conns) c.disconnect();
      await pool.end();
    },
  };
  if (opts.watchRules) {
    try {
      watcher = watch(config.RULES_DIR, () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => void service.reload('rules directory changed'), 300);
      });
    } catch (err) {
      log.warn('cannot watch the rules directory; reload with SIGHUP', { error: (err as Error).message });
    }
  }
  log.info('remediator started', {
    role: config.REMEDIATOR_ROLE, listening: url, ...(metricsServer ? { metrics: metricsUrl } : {}), rules: table.rules.length, targets: table.targets.size,
    dryRun: config.DRY_RUN, queuePrefix: prefix, schema: config.DATABASE_SCHEMA,
  });
  return service;
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

/** Pauses and quarantines as the status page lists them (src/ui/rules-page.ts). */
async function controlsOf(store: SafetyStore): Promise<ControlEntry[]> {
  const now = new Date();
  const [pauses, quarantines] = await Promise.all([store.pauses(now), store.quarantines()]);
  return [
    ...pauses.map((p): ControlEntry => ({ kind: 'pause', scope: p.scope, reason: p.reason, by: p.by, since: new Date(p.at), until: p.until ? new Date(p.until) : undefined })),
    ...quarantines.map((q): ControlEntry => ({ kind: 'quarantine', scope: `rule ${q.rule} on ${q.target}`, reason: q.reason, since: new Date(q.at) })),
  ];
}
