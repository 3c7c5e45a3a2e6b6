import type { SafetyAudit } from '../store/safety-audit.js';
import type { Quarantine, SafetyStore } from '../redis/safety-state.js';

/**
 * Records that a successful run's fix did not hold (once, whichever process sees it first), counts
 * it in the (rule, target) streak, and quarantines at `quarantineAfter` in a row. Returns undefined
 * when another process had already judged that run.
 */
export async function judgeIneffective(
  d: { store: SafetyStore; audit: SafetyAudit },
  o: { rule: string; target: string; runId: string; why: string; quarantineAfter: number; now: Date },
): Promise<{ streak: string[]; quarantine?: Quarantine } | undefined> {
  if (!(await d.audit.judge(o.runId, 'ineffective', `Fix ineffective: ${o.why}.`))) return undefined;
  const streak = await d.store.ineffective(o.rule, o.target, o.runId);
  if (o.quarantineAfter === 0 || streak.length < o.quarantineAfter) return { streak };
  const q: Quarantine = { rule: o.rule, target: o.target, at: o.now.toISOString(), runs: streak, reason: `${streak.length} ineffective fixes in a row` };
  if (!(await d.store.quarantine(q))) return { streak };
  await d.audit.recordAction({ kind: 'quarantine', scope: `rule:${o.rule}@${o.target}`, by: 'remediator', reason: q.reason, details: { runs: streak } });
  return { streak, quarantine: q };
}

/** The fix held: recorded once, and the streak starts again. */
export async function judgeEffective(d: { store: SafetyStore; audit: SafetyAudit }, o: { rule: string; target: string; runId: string; why: string }): Promise<boolean> {
  if (!(await d.audit.judge(o.runId, 'effective', `Fix held: ${o.why}.`))) return false;
  await d.store.effective(o.rule, o.target);
  return true;
}

/** The words for a streak, said in Slack. */
export function streakText(streak: number, quarantineAfter: number): string {
  return `${streak} ineffective in a row${quarantineAfter ? ` (quarantine after ${quarantineAfter})` : ''}`;
}
