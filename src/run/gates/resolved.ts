import type { Gate } from './types.js';

/** The alert resolved before the run acted (the journal keeps a resolution taken in before its run). */
export const resolved: Gate = {
  name: 'resolved',
  async check(c) {
    if (c.rule.spec.run_if_resolved || !c.run.alert_resolved_at) return undefined;
    return {
      skip: 'resolved',
      message: `The alert resolved at ${c.run.alert_resolved_at.toISOString()}, before this run started. Not run (set run_if_resolved: true to run anyway).`,
    };
  },
};
