import type { SafetyAudit } from '../store/safety-audit.js';
import { parseDuration } from '../rules/duration.js';
import type { Approvals } from '../redis/approvals.js';
import { parseScope, scopeKey, type Hold, type Pause, type Quarantine, type SafetyStore } from '../redis/safety-state.js';

/** What people do to automation, the same from the admin API, the CLI and Slack; each is audited. */
export interface Operator {
  store: SafetyStore;
  audit: SafetyAudit;
  approvals: Approvals;
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
