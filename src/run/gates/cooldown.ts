import { formatDuration } from '../../core/duration.js';
import type { Gate, GateContext } from './types.js';

/**
 * At most one acting run of a rule per target within `cooldown`. The cooldown starts when a run
 * acts (its first step that changes the target, or its outcome when it notified people or
 * succeeded), not when it merely starts: a run that failed before acting (a missing secret, a
 * refused target) leaves the next firing free to act once the problem is fixed. Checked under the
 * target lock, so two runs cannot both pass.
 */
export const cooldown: Gate = {
  name: 'cooldown',
  async check(c) {
    const ms = c.rule.spec.cooldown;
    if (!ms) return undefined;
    const last = await c.safety.cooldownOf(c.spec.rule, c.spec.target ?? '');
    if (!last || last.runId === c.spec.jobId) return undefined;
    return {
      skip: 'cooldown',
      message: `Cooldown: rule ${c.spec.rule} already acted on ${c.spec.target ?? 'this target'} at ${last.at} (run ${last.runId}, cooldown ${formatDuration(ms)}).`,
      details: { cooldown_run: last.runId },
    };
  },
};

/** Starts the rule's cooldown on the run's target (a no-op for rules without one). */
export async function startCooldown(c: Pick<GateContext, 'rule' | 'spec' | 'safety'>, at: Date): Promise<void> {
  const ms = c.rule.spec.cooldown;
  if (!ms || c.spec.dryRun) return;
  await c.safety.startCooldown(c.spec.rule, c.spec.target ?? '', c.spec.jobId, at, ms);
}
