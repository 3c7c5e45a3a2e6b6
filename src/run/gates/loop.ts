import { formatDuration } from '../../core/duration.js';
import { judgeFix, quarantineText, streakText } from '../verdict.js';
import type { Gate, GateContext, Skip } from './types.js';

/**
 * Loop and flap detection. The previous successful fix of this rule on this target that has no
 * verdict yet (kept in Redis until judged) is judged now: ineffective when this firing came within
 * its verify_window, or its alert had not resolved by the end of it. Then: a rule quarantined on
 * this target does not act.
 */
export const loop: Gate = {
  name: 'loop',
  async check(c) {
    const { spec, rule } = c;
    const target = spec.target ?? '';
    const window = rule.spec.verify_window;
    const prev = await c.safety.pendingFix(spec.rule, target);
    if (prev && prev.runId !== spec.jobId) {
      const startsAt = Date.parse(spec.alert.startsAt);
      const firedAt = Number.isNaN(startsAt) ? c.now.getTime() : startsAt;
      const finished = Date.parse(prev.finishedAt);
      const end = finished + window;
      let why: string | undefined;
      // An alert that started before the fix ended (another alert on the same target in a storm)
      // says nothing about the fix: only a firing after it, within the window, does.
      if (firedAt < finished) return quarantined(c);
      if (firedAt < end) why = `the alert fired again ${formatDuration(firedAt - finished)} after it (verify_window ${formatDuration(window)})`;
      else {
        const run = await c.journal.load(prev.runId);
        const resolvedAt = run?.alert_resolved_at?.getTime();
        if (resolvedAt === undefined || resolvedAt > end) why = `its alert did not resolve within verify_window ${formatDuration(window)}`;
      }
      const fix = { runId: prev.runId, rule: spec.rule, target };
      const of = rule.spec.quarantine_after;
      if (why) {
        const judged = await judgeFix(c, fix, { verdict: 'ineffective', why, quarantineAfter: of, now: c.now, page: false });
        if (judged) {
          await c.say(`The previous fix (run ${prev.runId}) was ineffective: ${why}. ${streakText(judged.streak.length, of)}.`, { ineffective_run: prev.runId, streak: judged.streak.length });
          if (judged.quarantine) {
            return { skip: 'quarantined', message: quarantineText(judged.quarantine.reason, spec.rule, spec.target), details: { quarantine: judged.quarantine }, page: 'rule quarantined: its fixes do not hold' };
          }
        }
      } else {
        await judgeFix(c, fix, { verdict: 'effective', why: `the alert resolved within verify_window ${formatDuration(window)} and did not fire again`, quarantineAfter: of, now: c.now });
      }
    }
    return quarantined(c);
  },
};

/** A rule quarantined on this target does not act there. */
async function quarantined(c: GateContext): Promise<Skip | undefined> {
  const q = await c.safety.quarantined(c.spec.rule, c.spec.target ?? '');
  if (!q) return undefined;
  return { skip: 'quarantined', message: quarantineText(`quarantined since ${q.at}: ${q.reason}`, c.spec.rule, c.spec.target), details: { quarantine: q } };
}
