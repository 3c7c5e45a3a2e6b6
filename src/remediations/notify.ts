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
  // Shows the fields every rule may carry for the person told: runbook_url, impact, links, severity.
  exampleRules: `
rules:
  - name: voice-calls-down
    match: ['alertname="VoiceCallInitiateFailing"']
    runbook_url: https://runbooks.internal/samia-tarot-ops-runbook#critical-level-alerts
    impact: Voice calls unavailable
    links:
      - { text: Twilio status, url: "https://status.twilio.com" }
    action: notify
    params:
      instructions: Check the voice provider status page and credentials.
    notify:
      slack: { channel: "#samia-tarot-ops" }
      pagerduty: { routing_key_env: SAMIA_TAROT_PAGERDUTY_ROUTING_KEY, severity: error }
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
