import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * This process's metrics (prom-client): one registry per service, passed in like the logger, so
 * tests running several services in one process keep them apart. Names follow Prometheus'
 * conventions (https://prometheus.io/docs/practices/naming/): `_total` counters, `_seconds`
 * durations. Labels hold names and states only (rule, action, notifier, queue, code), never alert
 * labels or anything a sender controls, so the series stay few and nothing secret leaks.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly webhookRequests: Counter<'code'>;
  readonly webhookDuration: Histogram<'code'>;
  readonly alertsReceived: Counter<'status'>;
  readonly decisions: Counter<'decision'>;
  readonly jobsEnqueued: Counter<'queue'>;
  readonly jobsDeduplicated: Counter<'queue'>;
  readonly runs: Counter<'action' | 'rule' | 'outcome'>;
  readonly runDuration: Histogram<'action' | 'outcome'>;
  readonly notificationsSent: Counter<'notifier'>;
  readonly notificationsFailed: Counter<'notifier' | 'final'>;
  readonly ruleReloads: Counter<'result'>;
  readonly ruleReloadSuccessful: Gauge;
  readonly ruleReloadSuccessTime: Gauge;
  readonly redisPersistence: Gauge<'mode'>;
  /** Statements this process sent to PostgreSQL (BEGIN and COMMIT included): the bookkeeping's cost. */
  readonly postgresStatements: Counter;
  /** Records a rules load: at start (`reload` false) and on every reload. */
  rulesLoaded(ok: boolean, reload: boolean): void;
}

/** The version in package.json (one level above both src/ and dist/). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  // process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds, nodejs_gc_duration_seconds...
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({ name: 'remediator_build_info', help: 'Always 1; the labels say which remediator and Node.js run.', labelNames: ['version', 'node_version'], registers })
    .set({ version: version(), node_version: process.version }, 1);
  const ruleReloadSuccessful = new Gauge({ name: 'remediator_rules_last_reload_successful', help: 'Whether the last rules (re)load succeeded (0: the previous rules still run).', registers });
  const ruleReloadSuccessTime = new Gauge({ name: 'remediator_rules_last_reload_success_timestamp_seconds', help: 'When the rules last loaded successfully (start or reload), in Unix seconds.', registers });
  const ruleReloads = new Counter({ name: 'remediator_rules_reloads_total', help: 'Rules reloads (file change, SIGHUP), by result: success or failure.', labelNames: ['result'], registers });
  return {
    registry,
    webhookRequests: new Counter({ name: 'remediator_webhook_requests_total', help: 'Webhook requests answered, by HTTP status code.', labelNames: ['code'], registers }),
    webhookDuration: new Histogram({
      name: 'remediator_webhook_duration_seconds', help: 'Time to answer a webhook request, by HTTP status code.', labelNames: ['code'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    alertsReceived: new Counter({ name: 'remediator_alerts_received_total', help: 'Alerts received in accepted webhooks, by alert status.', labelNames: ['status'], registers }),
    decisions: new Counter({
      name: 'remediator_decisions_total', labelNames: ['decision'], registers,
      help: 'Decisions taken on received alerts (enqueued, duplicate, no_match, not_applicable, invalid, refused).',
    }),
    jobsEnqueued: new Counter({ name: 'remediator_jobs_enqueued_total', help: 'Jobs added to a queue by the receiver.', labelNames: ['queue'], registers }),
    jobsDeduplicated: new Counter({ name: 'remediator_jobs_deduplicated_total', help: 'Jobs not added because the same firing already had one.', labelNames: ['queue'], registers }),
    runs: new Counter({
      name: 'remediator_runs_total', labelNames: ['action', 'rule', 'outcome'], registers,
      help: 'Remediation runs ended by this worker, by action, rule and outcome (succeeded, failed, skipped, dry_run, notified).',
    }),
    runDuration: new Histogram({
      name: 'remediator_run_duration_seconds', help: 'Time a remediation ran (from start to outcome), by action and outcome.', labelNames: ['action', 'outcome'], registers,
      buckets: [0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    }),
    notificationsSent: new Counter({ name: 'remediator_notifications_sent_total', help: 'Notifications delivered, by notifier.', labelNames: ['notifier'], registers }),
    notificationsFailed: new Counter({
      name: 'remediator_notifications_failed_total', labelNames: ['notifier', 'final'], registers,
      help: 'Failed notification deliveries, by notifier; final="false" ones are retried, final="true" ones are given up.',
    }),
    ruleReloads,
    ruleReloadSuccessful,
    ruleReloadSuccessTime,
    redisPersistence: new Gauge({
      name: 'remediator_redis_persistence', labelNames: ['mode'], registers,
      help: 'Redis persistence as last checked at start or reconnect (CONFIG GET appendonly, save): 1 on, 0 off. No series when Redis refused CONFIG.',
    }),
    postgresStatements: new Counter({ name: 'remediator_postgres_statements_total', help: 'Statements sent to PostgreSQL by this process (BEGIN and COMMIT included).', registers }),
    rulesLoaded(ok, reload) {
      if (reload) ruleReloads.inc({ result: ok ? 'success' : 'failure' });
      ruleReloadSuccessful.set(ok ? 1 : 0);
      if (ok) ruleReloadSuccessTime.set(Date.now() / 1000);
    },
  };
}
