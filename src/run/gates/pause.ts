import type { Gate } from './types.js';

/** An operator paused everything, this rule, its action or its target (remediator pause, /api/pause, Slack). */
export const pause: Gate = {
  name: 'pause',
  async check(c) {
    const p = await c.safety.pausedFor({ rule: c.spec.rule, action: c.spec.action, target: c.spec.target }, c.now);
    if (!p) return undefined;
    return { skip: 'paused', message: `Paused (${p.scope}) by ${p.by}${p.until ? ` until ${p.until}` : ''}: ${p.reason}. Not run.`, details: { pause: p } };
  },
};
