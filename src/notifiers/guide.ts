import type { RuleLink, RuleSpec } from '../rules/schema.js';

/**
 * What a rule tells the person who gets its message (src/rules/schema.ts): the runbook, what the
 * alert means for users, links for the first moves and, for a notify-only rule, what to do. Slack
 * and PagerDuty show the same words, so a page and its thread never disagree.
 */
export interface RuleGuide {
  runbook?: string;
  impact?: string;
  links: RuleLink[];
  instructions?: string;
}

/** The guide of a rule; an unknown rule (removed by a reload since its run) has none. */
export function guideOf(spec: RuleSpec | undefined): RuleGuide {
  if (!spec) return { links: [] };
  const params = spec.params as { instructions?: unknown };
  const instructions = spec.action === 'notify' && typeof params.instructions === 'string' ? params.instructions : undefined;
  return { runbook: spec.runbook_url, impact: spec.impact, links: spec.links, instructions };
}

/** `s` ending with a full stop (or its own ! ? …), so that it can be followed by another sentence. */
export function sentence(s: string): string {
  const t = s.trim();
  return /[.!?…]$/.test(t) ? t : `${t}.`;
}
