import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** deploy/prometheus: the runbook alerts (runbook-alerts.yml) and their promtool tests. */
export const PROMETHEUS_DIR = join(import.meta.dirname, '../../deploy/prometheus');
export const RUNBOOK_ALERT_TESTS = ['runbook-alerts.test.yml', 'runbook-alerts-days.test.yml', 'runbook-alerts-30d.test.yml'];
export const RULES_DIR = join(import.meta.dirname, '../../rules');

/** A firing alert exactly as promtool expects Prometheus to send it (labels include the alertname). */
export interface ExpectedAlert {
  alertname: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Every firing alert the promtool tests expect, one per alert rule of runbook-alerts.yml. */
export function firingRunbookAlerts(): ExpectedAlert[] {
  const out: ExpectedAlert[] = [];
  for (const file of RUNBOOK_ALERT_TESTS) {
    const doc = parse(readFileSync(join(PROMETHEUS_DIR, file), 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[] }[] }[];
    };
    for (const t of doc.tests) {
      for (const a of t.alert_rule_test ?? []) {
        for (const e of a.exp_alerts ?? []) {
          const labels = Object.fromEntries(Object.entries(e.exp_labels ?? {}).map(([k, v]) => [k, String(v)]));
          out.push({ alertname: a.alertname, labels: { alertname: a.alertname, ...labels }, annotations: e.exp_annotations ?? {} });
        }
      }
    }
  }
  return out;
}

/** The alert names runbook-alerts.yml defines. */
export function runbookAlertNames(): string[] {
  const doc = parse(readFileSync(join(PROMETHEUS_DIR, 'runbook-alerts.yml'), 'utf8')) as { groups: { rules: { alert?: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
}

type Severity = 'critical' | 'error' | 'warning' | 'info';

/** Who is told about one runbook alert, and how loud: what the runbooks say (see each rules file). */
export interface Told {
  rule: string;
  channel: string;
  severity: Severity;
  /** The env var holding the PagerDuty routing key. */
  routingKeyEnv: string;
  /** The runbook section the rule links to. */
  runbook: string;
  /** The alert's own remediation, or notify-only. */
  action: 'notify' | 'breaker-reset' | 'idle-connection-kill' | 'worker-restart' | 'number-rotation';
}

const DEFAULT_KEY = 'PAGERDUTY_ROUTING_KEY';
const SAMIA_KEY = 'SAMIA_TAROT_PAGERDUTY_ROUTING_KEY';
const rb = (file: string, anchor: string) => `https://runbooks.internal/${file}#${anchor}`;
const samia = (rule: string, severity: Severity, anchor: string): Told =>
  ({ rule, channel: '#samia-tarot-ops', severity, routingKeyEnv: SAMIA_KEY, runbook: rb('samia-tarot-ops-runbook', anchor), action: 'notify' });
const ai = (rule: string, severity: Severity, anchor: string): Told =>
  ({ rule, channel: '#ai-decision-engine-ops', severity, routingKeyEnv: DEFAULT_KEY, runbook: rb('ai-decision-engine-runbook', anchor), action: 'notify' });
const alg = (rule: string, severity: Severity, anchor: string, action: Told['action'] = 'notify'): Told =>
  ({ rule, channel: '#algorhythmic-ops', severity, routingKeyEnv: DEFAULT_KEY, runbook: rb('algorhythmic-ops-runbook', anchor), action });
const stario = (rule: string, severity: Severity, anchor: string, action: Told['action'] = 'notify'): Told =>
  ({ rule, channel: '#incidents', severity, routingKeyEnv: DEFAULT_KEY, runbook: rb('stario-ops-runbook', anchor), action });
const p1 = (rule: string, severity: Severity, anchor: string, action: Told['action'] = 'notify'): Told =>
  ({ rule, channel: '#project-one-ops', severity, routingKeyEnv: DEFAULT_KEY, runbook: rb('project-one-ops-runbook', anchor), action });

/**
 * Per alert: the rule that answers it, its Slack channel, PagerDuty severity and routing key, as
 * the runbooks rank and route them (runbook 000 SAMIA-TAROT: its own PagerDuty service, Slack
 * #samia-tarot-ops, database connectivity critical, voice high, jobs medium, rate limiting low;
 * Stario: #incidents and SEV levels; P0/P1/P2 elsewhere). The e2e and the coverage test check the
 * shipped rules against this table.
 */
export const RUNBOOK_TOLD: Record<string, Told> = {
  SamiaTarotDatabaseUnreachable: samia('samia-tarot-database-unreachable', 'critical', 'critical-level-alerts'),
  VoiceCallInitiateFailing: samia('voice-calls-down', 'error', 'critical-level-alerts'),
  SamiaTarotDailyPurgeFailed: samia('samia-tarot-daily-purge-failed', 'warning', 'critical-level-alerts'),
  SamiaTarotDatabaseSlow: samia('samia-tarot-database-slow', 'warning', 'warning-level-alerts'),
  SamiaTarotRateLimitSurge: samia('samia-tarot-rate-limit-surge', 'info', 'warning-level-alerts'),

  AIDecisionEngineUnhealthy: ai('ai-decision-engine-unhealthy', 'critical', 'api-down'),
  AIDecisionEngineHighErrorRate: ai('ai-decision-engine-high-error-rate', 'error', 'high-error-rate'),
  AIDecisionEngineSlowResponses: ai('ai-decision-engine-slow-responses', 'warning', 'high-response-times'),

  CircuitBreakerOpen: alg('image-gen-breaker-open', 'error', 'p1-circuit-breaker-stuck-open', 'breaker-reset'),
  AlgorhythmicDown: alg('algorhythmic-down', 'critical', 'p0-complete-service-outage'),
  HighErrorRate: alg('algorhythmic-high-error-rate', 'error', 'p1-high-error-rate'),
  QueueBacklog: alg('algorhythmic-generation-queue-backlog', 'warning', '4-generation-queue-management'),
  AlgorhythmicGenerationSlow: alg('algorhythmic-generation-slow', 'warning', 'key-metrics-to-monitor'),
  AlgorhythmicCreditFailures: alg('algorhythmic-credit-failures', 'warning', 'p2-credit-system-issues'),
  AlgorhythmicWebSocketConnectionsHigh: alg('algorhythmic-websocket-connections-high', 'warning', 'key-metrics-to-monitor'),

  PostgresConnectionPoolExhausted: stario('stario-postgres-kill-idle-connections', 'critical', 'issue-database-connection-pool-exhausted', 'idle-connection-kill'),
  VideoGenerationQueueBacklog: stario('stario-video-gen-backlog-restart-workers', 'error', 'issue-video-generation-queue-backlog', 'worker-restart'),
  FaceSimilaritySlow: stario('stario-face-similarity-slow-restart', 'warning', 'issue-face-similarity-service-slow-200ms', 'worker-restart'),
  PaymentFailures: stario('stario-payment-failures', 'critical', 'issue-payment-processing-failures'),
  EphemeralUploadsStale: stario('stario-ephemeral-uploads-stale', 'critical', 'issue-ephemeral-uploads-not-being-deleted-pii-risk'),
  StarioApiLatencyHigh: stario('stario-api-latency-high', 'error', 'issue-high-api-latency'),
  StarioApiErrorRate: stario('stario-api-error-rate', 'error', 'key-metrics'),
  StarioVideoGenerationSlow: stario('stario-video-generation-slow', 'warning', 'key-metrics'),
  StarioPosterGenerationSlow: stario('stario-poster-generation-slow', 'warning', 'key-metrics'),
  StarioUptimeLow: stario('stario-uptime-low', 'warning', 'key-metrics'),

  WhatsAppNumberRateLimited: p1('whatsapp-number-rate-limited', 'critical', 'p0-critical-delivery-failure-2-failure-rate-during-delivery', 'number-rotation'),
  WhatsAppQualityRatingLow: p1('whatsapp-quality-rating-low', 'error', 'p1-whatsapp-quality-drop', 'number-rotation'),
  ProjectOneDeliveryFailureRate: p1('project-one-delivery-failures', 'critical', 'p0-critical-delivery-failure-2-failure-rate-during-delivery'),
  ProjectOneAIServiceDegraded: p1('project-one-ai-service-degraded', 'error', 'p1-ai-service-degradation'),
  ProjectOneApprovalQueueBackup: p1('project-one-approval-queue-backup', 'warning', 'p2-approval-queue-backup'),
};
