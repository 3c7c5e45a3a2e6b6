import { pageKey } from '../../core/run.js';
import type { Gate } from './types.js';

/** A person acknowledged this run's PagerDuty incident (or its failure page): hands off until it resolves. */
export const humanAck: Gate = {
  name: 'human_ack',
  async check(c) {
    if (c.rule.spec.notify.pagerduty === false || !c.run.incident_key) return undefined;
    const h = await c.safety.heldBy([c.run.incident_key, pageKey(c.run.incident_key)]);
    if (!h) return undefined;
    return {
      skip: 'human_ack',
      message: `Hands off: ${h.by} acknowledged PagerDuty incident ${h.incident} at ${h.at}; automation waits until it resolves. Not run.`,
      details: { hold: h },
    };
  },
};
