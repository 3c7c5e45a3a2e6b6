import { parseDuration } from '../core/duration.js';
import type { ApprovalDecision, ApprovalRequest, Approvals } from '../redis/approvals.js';
import { parseScope, scopeKey, type Hold, type Pause, type Quarantine, type SafetyState } from '../redis/safety-state.js';
import type { SafetyAudit } from '../store/safety-audit.js';
import type { RunReader, RunRow } from '../store/runs.js';
import type { Journal } from './journal.js';

/**
 * What people do to automation, the same from the admin API, the CLI, Slack and PagerDuty: each
 * is an operator action in the audit, and what concerns a run is an event of its journal (so its
 * Slack thread says it). HTTP routes, the CLI and Slack clicks call these; none writes events itself.
 */
export interface Operator {
  store: SafetyState;
  audit: SafetyAudit;
  approvals: Approvals;
  journal: Journal;
  runs: RunReader;
  /** Starts a job that waits (an approval decided): BullMQ promote. Absent where no queue is at hand (the CLI). */
  release?: (jobId: string) => Promise<void>;
  now: () => Date;
}

export class OperatorInputError extends Error {}

/**
 * Pauses `scope` ("all", "rule:NAME", "action:NAME", "target:NAME") with a reason, optionally
 * until a time (ISO 8601) or for a duration ("30m").
 */
export async function pause(op: Operator, i: { scope: string; by: string; reason: string; until?: string; for?: string }): Promise<Pause> {
  const scope = parseScope(i.scope);
  if (!scope) throw new OperatorInputError(`scope: ${JSON.stringify(i.scope)} is not all, rule:NAME, action:NAME or target:NAME`);
  if (!i.reason.trim()) throw new OperatorInputError('reason: say why (it is shown wherever the pause holds a run back)');
  if (!i.by.trim()) throw new OperatorInputError('by: say who pauses');
  const now = op.now();
  let until: string | undefined;
  if (i.until !== undefined && i.for !== undefined) throw new OperatorInputError('until, for: give one of them, not both');
  if (i.until !== undefined) {
    const t = Date.parse(i.until);
    if (Number.isNaN(t)) throw new OperatorInputError(`until: ${JSON.stringify(i.until)} is not an ISO 8601 time`);
    if (t <= now.getTime()) throw new OperatorInputError('until: must be in the future');
    until = new Date(t).toISOString();
  } else if (i.for !== undefined) {
    const ms = parseDuration(i.for);
    if (!ms) throw new OperatorInputError(`for: ${JSON.stringify(i.for)} is not a duration such as 30m or 2h`);
    until = new Date(now.getTime() + ms).toISOString();
  }
  const p: Pause = { scope: scopeKey(scope), by: i.by, reason: i.reason, at: now.toISOString(), ...(until ? { until } : {}) };
  await op.store.pause(p);
  await op.audit.recordAction({ kind: 'pause', scope: p.scope, by: p.by, reason: p.reason, details: until ? { until } : undefined });
  return p;
}

export async function resume(op: Operator, i: { scope: string; by: string; reason?: string }): Promise<Pause | undefined> {
  const scope = parseScope(i.scope);
  if (!scope) throw new OperatorInputError(`scope: ${JSON.stringify(i.scope)} is not all, rule:NAME, action:NAME or target:NAME`);
  const old = await op.store.resume(scopeKey(scope));
  if (old) await op.audit.recordAction({ kind: 'resume', scope: old.scope, by: i.by, reason: i.reason, details: { paused_by: old.by, paused_at: old.at } });
  return old;
}

/** Lifts the quarantine of `rule@target` ("rule@" or "rule" alone for a rule without target). */
export async function lift(op: Operator, i: { which: string; by: string; reason?: string }): Promise<Quarantine | undefined> {
  const at = i.which.indexOf('@');
  const rule = at < 0 ? i.which : i.which.slice(0, at);
  const target = at < 0 ? '' : i.which.slice(at + 1);
  if (!rule) throw new OperatorInputError(`quarantine: ${JSON.stringify(i.which)} is not RULE@TARGET`);
  const q = await op.store.lift(rule, target);
  if (q) await op.audit.recordAction({ kind: 'lift', scope: `rule:${rule}@${target}`, by: i.by, reason: i.reason, details: { runs: q.runs } });
  return q;
}

export interface SafetyStatus {
  pauses: Pause[];
  quarantines: Quarantine[];
  holds: Hold[];
  decisions: Record<string, number>;
}

/**
 * Approves or rejects a run waiting for approval (admin API, CLI, Slack), or expires it (the run
 * itself, at the deadline). The first decision wins; it is an operator action and an event of the
 * run, and an approved or rejected run is released at once instead of at its expiry.
 */
export async function decideApproval(
  op: Pick<Operator, 'audit' | 'approvals' | 'journal' | 'now' | 'release'>,
  i: { jobId: string; decision: ApprovalDecision['decision']; by: string; reason?: string },
): Promise<{ ok: true; decision: ApprovalDecision; request: ApprovalRequest } | { ok: false; error: string }> {
  const req = await op.approvals.requestOf(i.jobId);
  if (!req) return { ok: false, error: `run ${i.jobId} is not waiting for an approval` };
  const d: ApprovalDecision = { decision: i.decision, by: i.by, at: op.now().toISOString() };
  const { won, decision } = await op.approvals.decide(i.jobId, d);
  if (!won) return { ok: false, error: `run ${i.jobId} was already ${decision.decision}${decision.decision === 'expired' ? '' : ` by ${decision.by}`} at ${decision.at}` };
  await op.audit.recordAction({ kind: `approval_${d.decision}`, scope: `run:${i.jobId}`, by: d.by, reason: i.reason });
  const words = d.decision === 'expired' ? `Approval request expired at ${d.at}.` : `${d.decision === 'approved' ? 'Approved' : 'Rejected'} by ${d.by} at ${d.at}.`;
  await op.journal.record({ jobId: i.jobId, rule: req.rule }, { type: d.decision, message: words, details: { decision: d } });
  if (d.decision !== 'expired') await op.release?.(i.jobId).catch(() => {}); // at worst it starts at its expiry, which reads the decision
  return { ok: true, decision: d, request: req };
}

/** Something said about a run by people or another system (Slack, PagerDuty): an event of its journal. */
export async function noteOnRun(op: Pick<Operator, 'journal'>, run: RunOf, message: string, details?: Record<string, unknown>): Promise<void> {
  await op.journal.record({ jobId: run.job_id, rule: run.rule, incident: run.incident_key ?? undefined, dryRun: run.dry_run }, { type: 'note', message, details });
}

/** What an operator action needs to know of a run. */
type RunOf = Pick<RunRow, 'job_id' | 'rule' | 'incident_key' | 'dry_run'>;

/** A person acknowledged one of our PagerDuty incidents: hands off its alert group until it resolves. */
export async function holdIncident(op: Operator, i: { hold: Hold; run: RunOf; agent: string; event: string }): Promise<string> {
  await op.store.hold(i.hold);
  await op.audit.recordAction({ kind: 'human_ack', scope: `pagerduty:${i.hold.dedupKey}`, by: `pagerduty:${i.agent}`, reason: `acknowledged incident ${i.hold.incident}`, details: { event: i.event, run: i.run.job_id } });
  const message = `${i.hold.by} acknowledged PagerDuty incident ${i.hold.incident}: hands off. Automation will not act on this alert group until the incident resolves.`;
  await noteOnRun(op, i.run, message, { pagerduty_event: i.event, incident: i.hold.incident, to: 'slack' });
  return message;
}

/** The incident resolved: automation may act on its alert group again. Undefined when nothing was held. */
export async function releaseIncident(op: Operator, i: { dedupKey: string; incident: string; run: RunOf; agent: string; event: string }): Promise<string | undefined> {
  if (!(await op.store.release(i.dedupKey))) return undefined;
  await op.audit.recordAction({ kind: 'human_ack_released', scope: `pagerduty:${i.dedupKey}`, by: `pagerduty:${i.agent}`, reason: `incident ${i.incident} resolved`, details: { event: i.event } });
  const message = `PagerDuty incident ${i.incident} resolved: automation may act on this alert group again.`;
  await noteOnRun(op, i.run, message, { pagerduty_event: i.event, incident: i.incident, to: 'slack' });
  return message;
}

export async function status(op: Operator): Promise<SafetyStatus> {
  const [pauses, quarantines, holds, decisions] = await Promise.all([op.store.pauses(op.now()), op.store.quarantines(), op.store.holds(), op.store.counts()]);
  return { pauses, quarantines, holds, decisions };
}

/** Status as lines for people (the CLI). */
export function statusLines(s: SafetyStatus): string[] {
  const out: string[] = [];
  out.push(s.pauses.length ? 'paused:' : 'paused: nothing');
  for (const p of s.pauses) out.push(`  ${p.scope} by ${p.by} at ${p.at}${p.until ? ` until ${p.until}` : ''}: ${p.reason}`);
  out.push(s.quarantines.length ? 'quarantined:' : 'quarantined: nothing');
  for (const q of s.quarantines) out.push(`  ${q.rule}@${q.target} since ${q.at}: ${q.reason} (runs ${q.runs.join(', ')})`);
  out.push(s.holds.length ? 'hands off (acknowledged in PagerDuty):' : 'hands off: nothing');
  for (const h of s.holds) out.push(`  incident ${h.incident} (dedup key ${h.dedupKey}) by ${h.by} at ${h.at}`);
  const d = Object.entries(s.decisions);
  if (d.length) out.push(`runs held back so far: ${d.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return out;
}
