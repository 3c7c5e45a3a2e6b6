import { createHash } from 'node:crypto';
import { startsAtKey, type AlertInfo } from './alert.js';
import type { FailureReason } from './errors.js';

/**
 * A remediation run: one firing of one alert for one rule. Its story is a list of events in the
 * run journal (src/run/journal.ts, one writer); the `runs` row is the projection of those events.
 */

export type RunState = 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'skipped' | 'dry_run' | 'notified';
export const FINAL_STATES: readonly RunState[] = ['succeeded', 'failed', 'skipped', 'dry_run', 'notified'];
export const isFinal = (s: RunState | string): boolean => (FINAL_STATES as readonly string[]).includes(s);

/** An outcome: how a run ended. */
export type Outcome = 'succeeded' | 'failed' | 'skipped' | 'dry_run' | 'notified';

/** Why a run was not acted on: a gate held it back (src/run/gates/). */
export type SkipReason = 'cooldown' | 'duplicate' | 'paused' | 'quarantined' | 'human_ack' | 'resolved' | 'budget' | 'rejected' | 'approval_expired';

export type Reason = FailureReason | SkipReason;

/**
 * Every kind of event a run's journal holds, in the words the audit uses (`run_events.state`).
 * - queued, alert_resolved: written by the intake when a delivery is taken in;
 * - running, step, retrying and the outcomes: written by the remediation worker;
 * - approved, rejected, expired: a person's (or the clock's) decision on an approval request;
 * - note: something people or other systems did about the run (a pause from Slack, a PagerDuty acknowledgment);
 * - effective, ineffective: the verdict on a successful fix at the end of its verify_window.
 */
export type RunEventType =
  | 'queued' | 'alert_resolved'
  | 'running' | 'step' | 'retrying' | Outcome
  | 'approval_requested' | 'approved' | 'rejected' | 'expired'
  | 'note'
  | 'effective' | 'ineffective';

/** What a writer gives the journal. */
export interface RunEvent {
  type: RunEventType;
  /** A sentence for people: the step, the summary, the error. */
  message: string;
  /** 1-based attempt (running, step, retrying, outcomes). */
  attempt?: number;
  details?: Record<string, unknown>;
  reason?: Reason;
  /** The raw error text of a failed or retried attempt. */
  error?: string;
  /** A decision that must wake a person (budget spent, quarantine, approval expired): why. */
  page?: string;
  /** A step that changes the target, recorded before the call that does it. */
  acted?: boolean;
  /** When it happened (ISO); the journal sets now when absent. */
  at?: string;
}

/** An event as the journal stored it: what followers (notifiers) are handed. */
export interface RecordedEvent extends RunEvent {
  id: string;
  jobId: string;
  at: string;
  /** The rule the run belongs to (notifiers find the rule's notify section by it). */
  rule: string;
  /** The run's incident (PagerDuty dedup key), when the writer knows it. */
  incident?: string;
  /** The run is a dry run (PagerDuty never hears of those). */
  dryRun?: boolean;
}

/** The data of a remediation job. No secrets: targets are resolved by name inside the worker. */
export interface JobSpec {
  jobId: string;
  rule: string;
  action: string;
  target?: string;
  params: unknown;
  dryRun: boolean;
  alert: AlertInfo;
  groupKey: string;
  receiver: string;
  externalURL: string;
  receivedAt: string;
  /** Set when the rule matched but cannot act (undeclared target, missing label, bad param): the run fails at once with this. */
  refusal?: { reason: 'refused_target' | 'bad_params'; message: string };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * One firing of one alert for one rule: fingerprint + startsAt + rule, hashed (BullMQ ids must not
 * contain ':' nor be all digits).
 */
export function jobIdFor(fingerprint: string, startsAt: string, rule: string): string {
  return sha256(`${fingerprint}\n${startsAtKey(startsAt)}\n${rule}`).slice(0, 40);
}

/**
 * The key of the incident a run belongs to (PagerDuty's dedup_key, the unit of one page).
 * - `group_key`: sha256 hex of the webhook's groupKey, exactly what Alertmanager's own PagerDuty
 *   integration sends (notify/util.go `Key.Hash`), so acknowledge/resolve address the incident
 *   Alertmanager triggered when both integrations sit in the same receiver (and routing key).
 * - `fingerprint`: one firing of one alert: sha256 hex of `<fingerprint>\n<startsAt as ISO, ms>`.
 */
export function incidentKey(dedup: 'group_key' | 'fingerprint', run: { groupKey: string; alert: Pick<AlertInfo, 'fingerprint' | 'startsAt'> }): string {
  return dedup === 'fingerprint' ? sha256(`${run.alert.fingerprint}\n${startsAtKey(run.alert.startsAt)}`) : sha256(run.groupKey);
}

/** The key of the page that says a fix failed, when the incident itself was acknowledged (see the PagerDuty notifier). */
export function pageKey(incident: string): string {
  return sha256(`${incident}\nremediation-failed`);
}
