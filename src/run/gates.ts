import type { AuditStore } from '../store/journal-store.js';
import type { SafetyAudit } from '../store/safety-audit.js';
import { formatDuration } from '../core/duration.js';
import { dedupKeyFor, pageDedupKey, policyOf } from '../notifiers/pagerduty-events.js';
import type { CompiledRule, RuleTable } from '../rules/load.js';
import type { JobSpec } from '../core/run.js';
import type { BudgetKey, SafetyStore } from '../redis/safety-state.js';
import type { Approvals } from '../redis/approvals.js';
import { judgeEffective, judgeIneffective, streakText } from './verdict.js';

/** Why a run was held back by a safety gate (runs.error_reason, the /metrics label, the Slack line). */
export type SafetyReason = 'paused' | 'quarantined' | 'human_ack' | 'resolved' | 'budget' | 'rejected' | 'approval_expired';

/** The run waits (for a person's approval): check again after this long, without using an attempt. */
export interface GateWait {
  waitMs: number;
}

export interface GateVerdict {
  reason: SafetyReason;
  message: string;
  details?: Record<string, unknown>;
  /** Set when a person must be woken (PagerDuty trigger), once per spent budget and window or per quarantine. */
  page?: string;
}

export interface GateContext {
  store: SafetyStore;
  audit: AuditStore;
  safetyAudit: SafetyAudit;
  approvals: Approvals;
  rule: CompiledRule;
  table: RuleTable;
  spec: JobSpec;
  now: Date;
  /** Says something in the run's thread (Slack) and events (audit). */
  say: (message: string, details?: Record<string, unknown>) => Promise<void>;
}

/**
 * The safety gates, in order, checked under the target lock just before a run starts. Each returns
 * why not to act, or nothing. The budget comes last because checking it takes a slot.
 * A dry run is still gated: it shows what would happen, and a pause stops dry runs too.
 */
export async function checkGates(c: GateContext): Promise<GateVerdict | GateWait | undefined> {
  return (await paused(c)) ?? (await loop(c)) ?? (await humanAck(c)) ?? (await resolved(c)) ?? (await approval(c)) ?? (await budget(c));
}

/** How often a run waiting for approval looks for the decision. */
const APPROVAL_POLL_MS = 1000;

/**
 * A rule with `approval.required`: the run asks once (a Slack message with Approve and Reject,
 * what it will do, why, and what the last runs did) and waits, without holding a worker slot or
 * the target, until a decision or the timeout (then it is skipped and PagerDuty is triggered).
 */
async function approval(c: GateContext): Promise<GateVerdict | GateWait | undefined> {
  const a = c.rule.spec.approval;
  if (!a?.required) return undefined;
  const { spec } = c;
  let d = await c.approvals.decisionOf(spec.jobId);
  if (!d) {
    let req = await c.approvals.requestOf(spec.jobId);
    if (!req) {
      req = {
        jobId: spec.jobId, rule: spec.rule, action: spec.action, ...(spec.target ? { target: spec.target } : {}), approvers: a.approvers,
        requestedAt: c.now.toISOString(), expiresAt: new Date(c.now.getTime() + a.timeout).toISOString(),
      };
      if (await c.approvals.request(req)) {
        const last = await c.safetyAudit.recentRuns(spec.rule, spec.target, spec.jobId, 3);
        const why = spec.alert.annotations.summary ?? spec.alert.labels.alertname ?? 'the alert';
        const history = last.length ? last.map((r) => `${r.state}${r.error_reason ? ` (${r.error_reason})` : ''} at ${(r.finished_at ?? r.queued_at).toISOString()}`).join('; ') : 'no earlier runs';
        await c.say(
          `Approval needed: ${spec.action}${spec.target ? ` on ${spec.target}` : ''} (rule ${spec.rule}${spec.dryRun ? ', dry run' : ''}) because: ${why}. ` +
            `Last runs: ${history}. Approvers: ${a.approvers.join(', ')}. Expires at ${req.expiresAt} (remediator approve|reject ${spec.jobId}).`,
          { approval_request: spec.jobId, approvers: a.approvers.join(', '), expires_at: req.expiresAt },
        );
      } else req = (await c.approvals.requestOf(spec.jobId)) ?? req;
    }
    const left = Date.parse(req.expiresAt) - c.now.getTime();
    if (left > 0) return { waitMs: Math.min(APPROVAL_POLL_MS, left) };
    d = (await c.approvals.decide(spec.jobId, { decision: 'expired', by: 'remediator', at: c.now.toISOString() }, `no decision within ${formatDuration(a.timeout)}`)).decision;
    if (d.decision === 'expired') {
      return { reason: 'approval_expired', message: `Nobody approved within ${formatDuration(a.timeout)} (approvers: ${a.approvers.join(', ')}). Not run.`, page: 'approval request expired' };
    }
  }
  if (d.decision === 'approved') return undefined;
  if (d.decision === 'rejected') return { reason: 'rejected', message: `Rejected by ${d.by} at ${d.at}. Not run.`, details: { decision: d } };
  return { reason: 'approval_expired', message: `The approval request expired at ${d.at}. Not run.` };
}

async function paused(c: GateContext): Promise<GateVerdict | undefined> {
  const p = await c.store.pausedFor({ rule: c.spec.rule, action: c.spec.action, target: c.spec.target }, c.now);
  if (!p) return undefined;
  return {
    reason: 'paused',
    message: `Paused (${p.scope}) by ${p.by}${p.until ? ` until ${p.until}` : ''}: ${p.reason}. Not run.`,
    details: { pause: p },
  };
}

/**
 * Judges the previous successful fix of this rule on this target (loop and flap detection): it was
 * ineffective when this firing came within verify_window of it, or its alert had not resolved
 * within that window. After quarantine_after ineffective fixes in a row the rule is quarantined
 * on this target until a person lifts it.
 */
async function loop(c: GateContext): Promise<GateVerdict | undefined> {
  const { rule, spec } = c;
  const target = spec.target ?? '';
  const window = rule.spec.verify_window;
  const prev = await c.safetyAudit.unjudgedFix(spec.rule, spec.target, spec.jobId);
  if (prev) {
    const startsAt = Date.parse(spec.alert.startsAt);
    const firedAt = Number.isNaN(startsAt) ? c.now.getTime() : startsAt;
    const end = prev.finished_at.getTime() + window;
    const refired = firedAt < end;
    const unresolved = !prev.alert_resolved_at || prev.alert_resolved_at.getTime() > end;
    if (refired || unresolved) {
      const why = refired
        ? `the alert fired again ${formatDuration(Math.max(0, firedAt - prev.finished_at.getTime()))} after it (verify_window ${formatDuration(window)})`
        : `its alert did not resolve within verify_window ${formatDuration(window)}`;
      const of = rule.spec.quarantine_after;
      const judged = await judgeIneffective({ store: c.store, audit: c.safetyAudit }, { rule: spec.rule, target, runId: prev.job_id, why, quarantineAfter: of, now: c.now });
      if (judged) {
        await c.say(`The previous fix (run ${prev.job_id}) was ineffective: ${why}. ${streakText(judged.streak.length, of)}.`, { ineffective_run: prev.job_id, streak: judged.streak.length });
        if (judged.quarantine) {
          return { reason: 'quarantined', message: quarantineText(judged.quarantine.reason, spec), details: { quarantine: judged.quarantine }, page: 'rule quarantined: its fixes do not hold' };
        }
      }
    } else {
      await judgeEffective({ store: c.store, audit: c.safetyAudit }, { rule: spec.rule, target, runId: prev.job_id, why: `the alert resolved within verify_window ${formatDuration(window)} and did not fire again` });
    }
  }
  const q = await c.store.quarantined(spec.rule, target);
  if (!q) return undefined;
  return { reason: 'quarantined', message: quarantineText(`quarantined since ${q.at}: ${q.reason}`, spec), details: { quarantine: q } };
}

export function quarantineText(why: string, spec: JobSpec): string {
  return `Quarantined: rule ${spec.rule} on ${spec.target ?? 'its target'} (${why}). No automatic runs there until a person lifts it (remediator resume --quarantine ${spec.rule}${spec.target ? `@${spec.target}` : ''}).`;
}

async function humanAck(c: GateContext): Promise<GateVerdict | undefined> {
  const policy = policyOf({ notify: c.rule.spec.notify });
  if (!policy) return undefined;
  const keys = [dedupKeyFor(policy, c.spec), pageDedupKey(policy, c.spec)];
  const h = await c.store.heldBy([...new Set(keys)]);
  if (!h) return undefined;
  return {
    reason: 'human_ack',
    message: `Hands off: ${h.by} acknowledged PagerDuty incident ${h.incident} at ${h.at}; automation waits until it resolves. Not run.`,
    details: { hold: h },
  };
}

async function resolved(c: GateContext): Promise<GateVerdict | undefined> {
  if (c.rule.spec.run_if_resolved) return undefined;
  const run = await c.audit.getRun(c.spec.jobId);
  if (!run?.alert_resolved_at) return undefined;
  return {
    reason: 'resolved',
    message: `The alert resolved at ${run.alert_resolved_at.toISOString()}, before this run started. Not run (set run_if_resolved: true to run anyway).`,
  };
}

/** The budgets a run of this rule takes from: its own, and its action's blast-radius cap. */
export function budgetsFor(rule: CompiledRule, table: RuleTable): (BudgetKey & { label: string })[] {
  const out: (BudgetKey & { label: string })[] = [];
  const b = rule.spec.budget;
  if (b) out.push({ key: `rule:${rule.spec.name}`, runs: b.runs, perMs: b.per, label: `rule ${rule.spec.name}: ${b.runs} runs per ${formatDuration(b.per)}` });
  const a = table.actionLimits.get(rule.spec.action);
  if (a) out.push({ key: `action:${rule.spec.action}`, runs: a.runs, perMs: a.per, label: `action ${rule.spec.action} (all rules): ${a.runs} runs per ${formatDuration(a.per)}` });
  return out;
}

async function budget(c: GateContext): Promise<GateVerdict | undefined> {
  const spent = await c.store.takeBudget(budgetsFor(c.rule, c.table), c.spec.jobId, c.now, c.spec.dryRun);
  if (!spent) return undefined;
  const b = budgetsFor(c.rule, c.table).find((x) => x.key === spent.key)!;
  // One page per spent budget and window, not one per alert.
  const first = await c.store.once(`budget:${spent.key}`, spent.perMs);
  return {
    reason: 'budget',
    message: `Budget spent: ${b.label}. Not run.`,
    details: { budget: b.key, runs: b.runs, per_ms: b.perMs },
    ...(first ? { page: `budget spent (${b.label})` } : {}),
  };
}
