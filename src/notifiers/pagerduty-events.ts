import { createHash } from 'node:crypto';
import type { RunRow } from '../store/journal-store.js';
import type { NotifySpec } from '../rules/schema.js';
import type { RunEvent } from './events.js';

/**
 * Pure PagerDuty logic: which Events API v2 action a run event becomes, the dedup keys, and
 * the event bodies (without the routing key, which the notifier adds at send time so that no
 * builder, test snapshot or log ever holds it).
 * Events API v2: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
 */

/** A rule's `notify.pagerduty` policy with defaults applied (an absent section means the defaults). */
export type PagerDutyPolicy = Exclude<NonNullable<NotifySpec['pagerduty']>, false>;

export const DEFAULT_POLICY: Readonly<PagerDutyPolicy> = { dedup: 'group_key', acknowledge: true, resolve: 'on_alert_resolved', escalate: true };

/** PagerDuty truncates nothing for us: a summary over 1024 characters is rejected. */
export const SUMMARY_MAX = 1024;
/** custom_details beyond this (JSON characters) are cut: the whole event must stay far below PagerDuty's 512 KB. */
export const DETAILS_MAX = 16_384;

export function policyOf(event: Pick<RunEvent, 'notify'>): PagerDutyPolicy | undefined {
  const pd = event.notify?.pagerduty;
  if (pd === false) return undefined;
  return { ...DEFAULT_POLICY, ...(pd ?? {}) };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The dedup key of the incident a run belongs to.
 * - `group_key`: sha256 hex of the webhook's groupKey, exactly what Alertmanager's own PagerDuty
 *   integration sends (notify/util.go `Key.Hash`), so acknowledge/resolve address the incident
 *   Alertmanager triggered when both integrations sit in the same receiver (and routing key).
 * - `fingerprint`: one firing of one alert: sha256 hex of `<fingerprint>\n<startsAt as ISO, ms>`.
 *   startsAt is normalised like the job id (src/rules/table.ts jobIdFor), so 0-9 fractional digits
 *   or an offset in the webhook do not make two keys for the same firing.
 */
export function dedupKeyFor(policy: Pick<PagerDutyPolicy, 'dedup'>, event: Pick<RunEvent, 'groupKey' | 'alert'>): string {
  if (policy.dedup === 'fingerprint') {
    const ms = Date.parse(event.alert.startsAt);
    const when = Number.isNaN(ms) ? event.alert.startsAt : new Date(ms).toISOString();
    return sha256(`${event.alert.fingerprint}\n${when}`);
  }
  return sha256(event.groupKey);
}

/** True when the policy acknowledges the incident while a fix runs (never for notify-only rules). */
export function acknowledges(policy: PagerDutyPolicy, event: Pick<RunEvent, 'action'>): boolean {
  return policy.acknowledge && event.action !== 'notify';
}

/**
 * The dedup key of a page (failed / notified trigger).
 *
 * PagerDuty appends a trigger whose dedup_key matches an *open* incident to that incident's log,
 * and an acknowledged incident is open but silent until its ack timeout. So when this policy
 * acknowledged the incident at `running`, a failure trigger on the same key would wake nobody.
 * In that case the page goes to its own key (derived from the base key, so it is stable across
 * retries and dedups repeats); its custom_details name the acknowledged incident's key. When
 * nothing was acknowledged (acknowledge: false, notify-only rules) the page goes to the base key
 * and joins the incident Alertmanager opened, which is still paging.
 */
export function pageDedupKey(policy: PagerDutyPolicy, event: Pick<RunEvent, 'groupKey' | 'alert' | 'action'>): string {
  const base = dedupKeyFor(policy, event);
  return acknowledges(policy, event) ? sha256(`${base}\nremediation-failed`) : base;
}

/** What one run event becomes. */
export type Plan =
  | { kind: 'event'; action: 'acknowledge' | 'resolve'; why: string }
  | { kind: 'page'; why: string }
  /** alert_resolved: resolve only if the run fixed it; needs the run's state (I/O), see the notifier. */
  | { kind: 'resolve_if_fixed'; why: string }
  | { kind: 'note'; why: string }
  | { kind: 'none'; why: string };

/** A final outcome that counts as "the target is fine": succeeded, or skipped by the remediation itself (already healthy). */
export function fixedOutcome(type: RunEvent['type'] | string, reason?: string | null): boolean {
  return type === 'succeeded' || (type === 'skipped' && !reason);
}

/**
 * Decides, without I/O, what a run event becomes. `canNote`: a REST token and From address are
 * configured, so steps can become incident notes.
 * Dry runs never reach PagerDuty: a dry run must neither silence (acknowledge) nor wake anyone.
 */
export function planFor(event: RunEvent, policy: PagerDutyPolicy, canNote: boolean): Plan {
  const note = (why: string): Plan => (canNote ? { kind: 'note', why } : { kind: 'none', why: `${why}; no REST token for notes` });
  if (event.dryRun) return { kind: 'none', why: 'dry run' };
  // A safety decision that needs a person (budget spent, quarantine, approval expired).
  if (event.page) return policy.escalate ? { kind: 'page', why: event.page } : note(`${event.page}, escalate: false`);
  switch (event.type) {
    case 'running':
      if ((event.attempt ?? 1) !== 1) return note('later attempt: already acknowledged');
      if (!acknowledges(policy, event)) return { kind: 'none', why: event.action === 'notify' ? 'notify-only rule: never acknowledged' : 'acknowledge: false' };
      return { kind: 'event', action: 'acknowledge', why: 'a fix is in progress' };
    case 'succeeded':
    case 'skipped':
      if (!fixedOutcome(event.type, event.reason)) return note(`skipped (${event.reason})`);
      if (policy.resolve === 'immediately') return { kind: 'event', action: 'resolve', why: `${event.type}, resolve: immediately` };
      return note(`${event.type}, resolve: ${policy.resolve}`);
    case 'alert_resolved':
      if (policy.resolve !== 'on_alert_resolved') return { kind: 'none', why: `resolve: ${policy.resolve}` };
      return { kind: 'resolve_if_fixed', why: 'alert resolved, resolve: on_alert_resolved' };
    case 'failed':
      if (!policy.escalate) return note('failed, escalate: false');
      return { kind: 'page', why: 'remediation failed' };
    case 'notified':
      if (!policy.escalate) return note('notify-only, escalate: false');
      return { kind: 'page', why: 'no automatic remediation' };
    case 'step':
    case 'retrying':
      return note(event.type);
    case 'queued':
    case 'dry_run':
      return { kind: 'none', why: event.type };
  }
}

/** Events API v2 body, minus `routing_key` (added by the sender). */
export interface EnqueueBody {
  event_action: 'trigger' | 'acknowledge' | 'resolve';
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, unknown>;
  };
  links?: { href: string; text: string }[];
  client?: string;
  client_url?: string;
}

/** Cuts to `max` characters (code points, so no half surrogate pair), marking the cut with an ellipsis. */
export function truncate(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

const isHttpUrl = (s: string | undefined): s is string => {
  if (!s) return false;
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
};

/** Link to remediator's runs API for this run, if a public base URL is known. */
export function runLink(linkBase: string | undefined, jobId: string): string | undefined {
  return isHttpUrl(linkBase) ? `${linkBase.replace(/\/+$/, '')}/api/runs/${encodeURIComponent(jobId)}` : undefined;
}

/** Links shown on the incident: the alert's source (generatorURL), its runbook, the run. Only http(s) URLs: labels are untrusted. */
export function linksFor(event: Pick<RunEvent, 'alert' | 'jobId'>, linkBase?: string): { href: string; text: string }[] {
  const links: { href: string; text: string }[] = [];
  if (isHttpUrl(event.alert.generatorURL)) links.push({ href: event.alert.generatorURL, text: 'Alert source (Prometheus)' });
  const runbook = event.alert.annotations?.runbook_url;
  if (isHttpUrl(runbook)) links.push({ href: runbook, text: 'Runbook' });
  const run = runLink(linkBase, event.jobId);
  if (run) links.push({ href: run, text: 'Remediation run (remediator)' });
  return links;
}

/** Where the problem is: the target, else the alert's instance, else its job. */
export function sourceOf(event: Pick<RunEvent, 'target' | 'alert'>): string {
  const l = event.alert.labels ?? {};
  return event.target || l.instance || l.job || l.alertname || 'remediator';
}

function capDetails(details: unknown): unknown {
  if (details === undefined) return undefined;
  const json = JSON.stringify(details) ?? '';
  return json.length <= DETAILS_MAX ? details : `(cut to ${DETAILS_MAX} characters) ${json.slice(0, DETAILS_MAX)}`;
}

/** Acknowledge or resolve: PagerDuty needs only the action and the dedup key. */
export function stateEvent(action: 'acknowledge' | 'resolve', dedupKey: string): EnqueueBody {
  return { event_action: action, dedup_key: dedupKey };
}

/**
 * The page for a failed remediation or a notify-only rule: severity critical, a summary a human
 * can act on from a phone screen, and everything else in custom_details and links.
 * `run` (the audit row) adds attempts and the raw error; the event alone is enough without it.
 */
export function pageEvent(
  event: RunEvent,
  policy: PagerDutyPolicy,
  opts: { run?: Pick<RunRow, 'attempts' | 'error_reason' | 'error_message' | 'summary'>; linkBase?: string } = {},
): EnqueueBody {
  const source = sourceOf(event);
  const l = event.alert.labels ?? {};
  const a = event.alert.annotations ?? {};
  const details = (event.details ?? {}) as Record<string, unknown>;
  const instructions = typeof details.instructions === 'string' ? details.instructions : undefined;
  const reason = opts.run?.error_reason ?? event.reason;
  let summary: string;
  if (event.type === 'notified') {
    summary = `No automatic remediation for ${l.alertname ?? event.rule} on ${source}: ${instructions ?? 'a human must act.'}`;
  } else if (event.page) {
    summary = `Auto-remediation held back: ${event.rule} on ${source}: ${event.message}${reason ? ` [${reason}]` : ''}`;
  } else {
    summary = `Auto-remediation failed: ${event.rule} on ${source}: ${event.message}${reason ? ` [${reason}]` : ''}`;
  }
  const base = dedupKeyFor(policy, event);
  const key = pageDedupKey(policy, event);
  const custom: Record<string, unknown> = {
    rule: event.rule,
    action: event.action,
    target: event.target ?? null,
    outcome: event.type,
    message: event.message,
    attempts: opts.run?.attempts ?? event.attempt ?? null,
    error_reason: reason ?? null,
    error_message: opts.run?.error_message ?? null,
    instructions,
    run_id: event.jobId,
    alert: {
      alertname: l.alertname,
      fingerprint: event.alert.fingerprint,
      status: event.alert.status,
      starts_at: event.alert.startsAt,
      summary: a.summary,
      description: a.description,
      labels: l,
    },
    details: capDetails(event.details),
  };
  if (key !== base) custom.acknowledged_incident_dedup_key = base;
  const run = runLink(opts.linkBase, event.jobId);
  return {
    event_action: 'trigger',
    dedup_key: key,
    payload: {
      summary: truncate(summary, SUMMARY_MAX),
      source: truncate(source, 255),
      severity: 'critical',
      timestamp: event.at,
      component: event.action,
      group: event.rule,
      class: reason ?? event.type,
      custom_details: JSON.parse(JSON.stringify(custom)) as Record<string, unknown>,
    },
    links: linksFor(event, opts.linkBase),
    client: 'remediator',
    ...(run ? { client_url: run } : {}),
  };
}

/** The text of an incident note for a step, a retry or an outcome that does not change the incident. */
export function noteContent(event: RunEvent): string {
  const attempt = event.attempt ? ` (attempt ${event.attempt})` : '';
  const what = event.type === 'step' ? '' : `${event.type}: `;
  return truncate(`[remediator] ${event.rule}${event.target ? ` on ${event.target}` : ''}${attempt}: ${what}${event.message}`, 25_000);
}

/**
 * Retry-After (seconds or an HTTP date) in milliseconds, clamped to 1 s .. 1 h;
 * `fallbackMs` when absent or unreadable.
 */
export function retryAfterMs(header: string | null | undefined, fallbackMs = 30_000, now = Date.now()): number {
  if (!header) return fallbackMs;
  const v = header.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return fallbackMs;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 1000), 3_600_000);
}
