import { z } from 'zod';
import { defineRemediation } from './types.js';

/**
 * Notify-only: no automatic fix exists (or none is safe), so the outcome is to tell people:
 * the Slack thread says so and PagerDuty is triggered (escalated), never acknowledged.
 */
export const notifyOnly = defineRemediation({
  name: 'notify',
  description: 'No automatic fix: report the alert to Slack and escalate it to PagerDuty so a human acts.',
  targetKind: null,
  paramsSchema: z
    .object({
      /** What the human should do, shown in Slack and in PagerDuty's custom details. */
      instructions: z.string().optional(),
    })
    .strict(),
  permissions: [],
  exampleRules: `
rules:
  - name: voice-calls-down
    match: ['alertname="VoiceCallInitiateFailing"']
    action: notify
    params:
      instructions: Check the voice provider status page and credentials.
`,
  async run(ctx) {
    const instructions = ctx.params.instructions;
    return {
      outcome: 'notified',
      summary: instructions ? `No automatic fix for this alert. ${instructions}` : 'No automatic fix for this alert: escalated to on-call.',
      details: instructions ? { instructions } : {},
    };
  },
});
