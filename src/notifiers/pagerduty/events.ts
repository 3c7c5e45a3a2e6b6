import { pageKey } from '../../core/run.js';
import { truncate } from '../../core/text.js';
import type { NotifySpec, RuleLink } from '../../rules/schema.js';
import { sentence } from '../guide.js';
import type { IncidentRow, IncidentRun } from '../../store/notify-state.js';

/**
 * Pure PagerDuty logic: what an incident needs sent, given its runs as the journal has them and
 * what was already sent (one acknowledge per incident, its pages once, one resolve), and the event
 * bodies (without the routing key, which the notifier adds at send time so that no builder, test
 * snapshot or log ever holds it). Events API v2: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
 */

/** A rule's `notify.pagerduty` policy with defaults applied (an absent section means the defaults). */
export type PagerDutyPolicy = Exclude<NonNullable<NotifySpec['pagerduty']>, false>;

export const DEFAULT_POLICY: Readonly<PagerDutyPolicy> = { dedup: 'group_key', acknowledge: true, resolve: 'on_alert_resolved', escalate: true, severity: 'critical' };

/** PagerDuty truncates nothing for us: a summary over 1024 characters is rejected. */
export const SUMMARY_MAX = 1024;
/** custom_details beyond this (JSON characters) are cut: the whole event must stay far below PagerDuty's 512 KB. */
export const DETAILS_MAX = 16_384;

export function policyOf(notify: Pick<NotifySpec, 'pagerduty'> | undefined): PagerDutyPolicy | undefined {
  const pd = notify?.pagerduty;
  if (pd === false) return undefined;
  return { ...DEFAULT_POLICY, ...(pd ?? {}) };
}

/** True when the policy acknowledges the incident while a fix runs (never for notify-only rules). */
export function acknowledges(policy: PagerDutyPolicy, action: string): boolean {
  return policy.acknowledge && action !== 'notify';
}

/** A final outcome that counts as "the target is fine": succeeded, or skipped by the remediation itself (already healthy). */
export function fixedOutcome(state: string, reason?: string | null): boolean {
  return state === 'succeeded' || (state === 'skipped' && !reason);
}

const FINAL = new Set(['succeeded', 'failed', 'skipped', 'dry_run', 'notified']);
/** Outcomes a person owns from then on: remediator never resolves their incident. */
const PEOPLE = new Set(['human_ack', 'quarantined', 'budget', 'approval_expired', 'rejected', 'paused']);
const blocksResolve = (r: IncidentRun) => r.state === 'failed' || (r.state === 'skipped' && r.error_reason !== null && PEOPLE.has(r.error_reason));
const STARTED = new Set(['running', 'retrying', 'succeeded', 'failed']);

/** A safety decision that must wake a person, as the journal recorded it (an event with `details.page`). */
export interface PageEvent {
  id: string;
  job_id: string;
  page: string;
  message: string;
  reason: string | null;
}

/** One thing to send for an incident. */
export type IncidentAction =
  | { kind: 'acknowledge' }
  | { kind: 'resolve'; why: string }
  | { kind: 'trigger'; why: 'failed' | 'notified' | 'held'; dedupKey: string; runs: IncidentRun[]; page?: PageEvent; marks: string[] };

/**
 * What an incident needs now. `policyOfRule` gives each run's policy (its rule's, today). Pages:
 * a failed fix pages once per failed run (all new failures in one trigger), on its own key when
 * the incident was acknowledged (a trigger on an acknowledged incident wakes nobody); a
 * notify-only run pages once on the incident's own key; a safety decision (budget spent,
 * quarantine, approval expired) pages once. Resolve, once, when every run of the incident has
 * ended and one of them fixed its target or notified: with `on_alert_resolved` when every alert
 * resolved too (so a notify-only page resolves with its alerts), with `immediately` at once. An
 * incident with a failed run, or one held for a person (acknowledged, quarantined, budget spent,
 * rejected, expired, paused), belongs to people: remediator does not resolve it.
 */
export function planIncident(o: {
  dedupKey: string;
  incident: IncidentRow;
  runs: IncidentRun[];
  pages: PageEvent[];
  policyOfRule: (rule: string) => PagerDutyPolicy | undefined;
}): IncidentAction[] {
  const out: IncidentAction[] = [];
  const paged = new Set(o.incident.paged);
  const runs = o.runs.filter((r) => o.policyOfRule(r.rule));
  if (runs.length === 0) return out;
  const policy = (r: IncidentRun) => o.policyOfRule(r.rule)!;
  const acked = o.incident.acked_at !== null || runs.some((r) => STARTED.has(r.state) && acknowledges(policy(r), r.action));
  if (!o.incident.acked_at && runs.some((r) => STARTED.has(r.state) && acknowledges(policy(r), r.action))) out.push({ kind: 'acknowledge' });
  const pageTo = acked ? pageKey(o.dedupKey) : o.dedupKey;
  const failed = runs.filter((r) => r.state === 'failed' && policy(r).escalate && !paged.has(`run:${r.job_id}`));
  if (failed.length) out.push({ kind: 'trigger', why: 'failed', dedupKey: pageTo, runs: failed, marks: failed.map((r) => `run:${r.job_id}`) });
  const notified = runs.filter((r) => r.state === 'notified' && policy(r).escalate && !paged.has(`run:${r.job_id}`));
  if (notified.length) out.push({ kind: 'trigger', why: 'notified', dedupKey: o.dedupKey, runs: notified, marks: notified.map((r) => `run:${r.job_id}`) });
  for (const p of o.pages) {
    if (paged.has(`page:${p.id}`)) continue;
    const run = runs.find((r) => r.job_id === p.job_id);
    if (!run || !policy(run).escalate) continue;
    out.push({ kind: 'trigger', why: 'held', dedupKey: pageTo, runs: [run], page: p, marks: [`page:${p.id}`] });
  }
  if (!o.incident.resolved_at && runs.every((r) => FINAL.has(r.state)) && !runs.some(blocksResolve)) {
    const spoke = runs.filter((r) => fixedOutcome(r.state, r.error_reason) || r.state === 'notified');
    const policies = runs.map(policy);
    if (spoke.length && policies.every((p) => p.resolve === 'immediately')) out.push({ kind: 'resolve', why: 'every run ended and fixed its target (resolve: immediately)' });
    else if (spoke.length && runs.every((r) => r.alert_resolved_at !== null) && policies.every((p) => p.resolve !== 'never')) {
      out.push({ kind: 'resolve', why: 'every alert of the incident resolved' });
    }
  }
  return out;
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

const isHttpUrl = (s: string | undefined | null): s is string => {
  if (!s) return false;
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
};

/** Link to remediator's run page, if a public base URL is known. */
export function runLink(linkBase: string | undefined, jobId: string): string | undefined {
  return isHttpUrl(linkBase) ? `${linkBase.replace(/\/+$/, '')}/ui/runs/${encodeURIComponent(jobId)}` : undefined;
}

/**
 * Links shown on the incident: the alert's source (generatorURL), its runbook (the rule's, else the
 * alert's annotation), the rule's own links (status pages), the run. Only http(s) URLs: labels are untrusted.
 */
export function linksFor(
  run: Pick<IncidentRun, 'generator_url' | 'annotations' | 'job_id'>,
  o: { linkBase?: string; runbook?: string; links?: RuleLink[] } = {},
): { href: string; text: string }[] {
  const links: { href: string; text: string }[] = [];
  if (isHttpUrl(run.generator_url)) links.push({ href: run.generator_url, text: 'Alert source (Prometheus)' });
  const runbook = o.runbook ?? run.annotations?.runbook_url;
  if (isHttpUrl(runbook)) links.push({ href: runbook, text: 'Runbook' });
  for (const l of o.links ?? []) if (isHttpUrl(l.url)) links.push({ href: l.url, text: l.text });
  const r = runLink(o.linkBase, run.job_id);
  if (r) links.push({ href: r, text: 'Remediation run (remediator)' });
  return links;
}

/** Where the problem is: the target, else the alert's service, instance, job or name. */
export function sourceOf(run: Pick<IncidentRun, 'target' | 'labels'>): string {
  const l = run.labels ?? {};
  return run.target || l.service || l.instance || l.job || l.alertname || 'remediator';
}

function capDetails(details: unknown): unknown {
  if (details === undefined || details === null) return undefined;
  const json = JSON.stringify(details) ?? '';
  return json.length <= DETAILS_MAX ? details : `(cut to ${DETAILS_MAX} characters) ${json.slice(0, DETAILS_MAX)}`;
}

/** Acknowledge or resolve: PagerDuty needs only the action and the dedup key. */
export function stateEvent(action: 'acknowledge' | 'resolve', dedupKey: string): EnqueueBody {
  return { event_action: action, dedup_key: dedupKey };
}

/** What a rule says about its pages: severity, runbook, impact, links and the first moves (src/notifiers/guide.ts). */
export interface PageWords {
  severity?: 'critical' | 'error' | 'warning' | 'info';
  runbook?: string;
  /** What the alert means for users: first in a notify-only page's summary, and in custom_details. */
  impact?: string;
  /** Extra links (status pages), after the runbook. */
  links?: RuleLink[];
  instructions?: string;
}

/**
 * A page: a failed remediation, a notify-only rule, or a safety decision that needs a person.
 * Severity from the rule (critical by default), a summary a human can act on from a phone screen,
 * everything else in custom_details and links. Several runs of one incident go in one page.
 */
export function pageEvent(a: Extract<IncidentAction, { kind: 'trigger' }>, o: { baseKey: string; linkBase?: string; words?: PageWords; now: Date }): EnqueueBody {
  const first = a.runs[0]!;
  const source = sourceOf(first);
  const l = first.labels ?? {};
  const alertname = l.alertname ?? first.rule;
  const instructions = o.words?.instructions;
  const impact = o.words?.impact;
  const more = a.runs.length > 1 ? ` (and ${a.runs.length - 1} more run${a.runs.length > 2 ? 's' : ''} of this alert group)` : '';
  let summary: string;
  if (a.why === 'notified') {
    // The impact first: the person paged reads how bad it is before what to do.
    const todo = instructions ?? first.summary ?? 'a human must act.';
    summary = `No automatic remediation for ${alertname} on ${source}: ${impact ? `${sentence(impact)} ${todo}` : todo}${more}`;
  }
  else if (a.why === 'held') summary = `Auto-remediation held back: ${first.rule} on ${source}: ${a.page!.message}${a.page!.reason ? ` [${a.page!.reason}]` : ''}`;
  else summary = `Auto-remediation failed: ${first.rule} on ${source}: ${first.summary ?? first.error_message ?? 'failed'}${first.error_reason ? ` [${first.error_reason}]` : ''}${more}`;
  const custom: Record<string, unknown> = {
    rule: first.rule,
    action: first.action,
    target: first.target,
    outcome: a.why === 'held' ? 'held' : first.state,
    message: a.why === 'held' ? a.page!.message : first.summary,
    attempts: first.attempts,
    error_reason: a.why === 'held' ? a.page!.reason : first.error_reason,
    error_message: first.error_message,
    impact,
    instructions,
    run_id: first.job_id,
    ...(a.why === 'held' ? { page: a.page!.page } : {}),
    runs: a.runs.map((r) => ({ run_id: r.job_id, target: r.target, state: r.state, summary: capDetails(r.summary), error_reason: r.error_reason })),
    alert: {
      alertname: l.alertname,
      fingerprint: first.fingerprint,
      starts_at: first.starts_at?.toISOString(),
      summary: first.annotations?.summary,
      description: first.annotations?.description,
      labels: l,
    },
  };
  if (a.dedupKey !== o.baseKey) custom.acknowledged_incident_dedup_key = o.baseKey;
  const run = runLink(o.linkBase, first.job_id);
  return {
    event_action: 'trigger',
    dedup_key: a.dedupKey,
    payload: {
      summary: truncate(summary, SUMMARY_MAX),
      source: truncate(source, 255),
      severity: o.words?.severity ?? 'critical',
      timestamp: o.now.toISOString(),
      component: first.action,
      group: first.rule,
      class: (a.why === 'held' ? a.page!.reason : first.error_reason) ?? a.why,
      custom_details: JSON.parse(JSON.stringify(custom)) as Record<string, unknown>,
    },
    links: linksFor(first, { linkBase: o.linkBase, runbook: o.words?.runbook, links: o.words?.links }),
    client: 'remediator',
    ...(run ? { client_url: run } : {}),
  };
}

/** The text of one incident note: the events of the incident's runs told since the last note. */
export function noteContent(events: { rule: string; target: string | null; state: string; attempt: number | null; message: string }[]): string {
  const lines = events.map((e) => `${e.rule}${e.target ? ` on ${e.target}` : ''}${e.attempt ? ` (attempt ${e.attempt})` : ''}: ${e.state === 'step' ? '' : `${e.state}: `}${e.message}`);
  return truncate(`[remediator]\n${lines.join('\n')}`, 25_000);
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
