import type { AlertInfo } from '../core/alert.js';
import type { FailureReason } from '../core/errors.js';
import type { NotifySpec } from '../rules/schema.js';
import type { SafetyReason } from '../run/gates.js';

/**
 * A state change of a remediation run, published by the ingest worker (queued, alert_resolved)
 * and the remediation worker (everything else). Notifiers turn these into Slack and PagerDuty
 * jobs on their own queues; the audit already holds them when they are published.
 */
export interface RunEvent {
  type:
    | 'queued'
    | 'running'
    | 'step'
    | 'retrying'
    | 'succeeded'
    | 'failed'
    | 'skipped'
    | 'dry_run'
    | 'notified'
    | 'alert_resolved';
  jobId: string;
  rule: string;
  action: string;
  target?: string;
  alert: AlertInfo;
  groupKey: string;
  receiver: string;
  externalURL: string;
  dryRun: boolean;
  /** 1-based attempt, for running/step/retrying/final events. */
  attempt?: number;
  /** Human sentence: what happened (the step text, the result summary, the error). */
  message: string;
  details?: Record<string, unknown>;
  reason?: FailureReason | 'cooldown' | 'duplicate' | SafetyReason;
  /** A safety decision that must wake a person (budget spent, quarantine, approval expired): why. PagerDuty pages for it. */
  page?: string;
  /** The rule's notify section as it was when the event happened. */
  notify: NotifySpec;
  at: string;
  /** Order of this event among its run's events (1, 2, ...), assigned when published. */
  seq?: number;
}

/** Where events go. Publishing must be durable (Redis) before it resolves. */
export interface EventSink {
  publish(event: RunEvent): Promise<void>;
}

/** The sink without notifiers: events live only in the audit trail. */
export const auditOnlySink: EventSink = { publish: async () => {} };
