import type { Quarantine, SafetyState } from '../redis/safety-state.js';
import type { SafetyAudit } from '../store/safety-audit.js';
import type { Journal } from './journal.js';

/** The judged fix: its run, and where it acted. */
export interface FixRef {
  runId: string;
  rule: string;
  target: string;
}

export interface VerdictDeps {
  journal: Journal;
  safety: SafetyState;
  safetyAudit: SafetyAudit;
}

/**
 * The one judgement of a successful fix, made once (whichever process sees it first: a new firing
 * of the rule on the target, or the verify job at the end of the fix's verify_window):
 * - effective: the alert resolved within verify_window and did not fire again; the streak of
 *   ineffective fixes on (rule, target) starts again;
 * - ineffective: it fired again, or had not resolved, within the window; after `quarantineAfter`
 *   in a row the rule is quarantined on that target (no automatic runs until a person lifts it),
 *   which pages a person.
 * The verdict is an event of the judged run (its Slack thread says it). Undefined when already judged.
 */
export async function judgeFix(
  d: VerdictDeps,
  fix: FixRef,
  o: { verdict: 'effective' | 'ineffective'; why: string; quarantineAfter: number; now: Date; /** Page on a quarantine here (false: the caller's own run pages). */ page?: boolean },
): Promise<{ streak: string[]; quarantine?: Quarantine } | undefined> {
  const run = await d.journal.load(fix.runId);
  const ref = { jobId: fix.runId, rule: fix.rule, incident: run?.incident_key ?? undefined, dryRun: run?.dry_run };
  if (o.verdict === 'effective') {
    if (!(await d.journal.judge(ref, 'effective', `Fix held: ${o.why}.`))) return undefined;
    await d.safety.effective(fix.rule, fix.target);
    await d.safety.clearPendingFix(fix.rule, fix.target, fix.runId);
    return { streak: [] };
  }
  // The streak first, so the one verdict event says where it stands and pages on a quarantine.
  const before = (await d.safety.streak(fix.rule, fix.target)).filter((id) => id !== fix.runId);
  const streak = [...before, fix.runId];
  const quarantines = o.quarantineAfter > 0 && streak.length >= o.quarantineAfter && !(await d.safety.quarantined(fix.rule, fix.target));
  const words = `Fix ineffective: ${o.why}. ${streakText(streak.length, o.quarantineAfter)}.` +
    (quarantines ? ` Rule ${fix.rule} is now quarantined on ${fix.target || 'its target'}: no automatic runs there until a person lifts it (remediator resume --quarantine ${fix.rule}@${fix.target}).` : '');
  const page = quarantines && o.page !== false ? { page: 'rule quarantined: its fixes do not hold' } : {};
  if (!(await d.journal.judge(ref, 'ineffective', words, { streak: streak.length, ...page }))) return undefined;
  await d.safety.clearPendingFix(fix.rule, fix.target, fix.runId);
  const counted = await d.safety.ineffective(fix.rule, fix.target, fix.runId);
  const out: { streak: string[]; quarantine?: Quarantine } = { streak: counted };
  if (quarantines) {
    const q: Quarantine = { rule: fix.rule, target: fix.target, at: o.now.toISOString(), runs: counted, reason: `${counted.length} ineffective fixes in a row` };
    if (await d.safety.quarantine(q)) {
      out.quarantine = q;
      await d.safetyAudit.recordAction({ kind: 'quarantine', scope: `rule:${fix.rule}@${fix.target}`, by: 'remediator', reason: q.reason, details: { runs: counted } });
    }
  }
  return out;
}

/** The words for a streak, said in Slack. */
export function streakText(streak: number, quarantineAfter: number): string {
  return `${streak} ineffective in a row${quarantineAfter ? ` (quarantine after ${quarantineAfter})` : ''}`;
}

export function quarantineText(why: string, rule: string, target: string | undefined): string {
  return `Quarantined: rule ${rule} on ${target ?? 'its target'} (${why}). No automatic runs there until a person lifts it (remediator resume --quarantine ${rule}${target ? `@${target}` : ''}).`;
}
