import { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { parseMatcher, MatcherError } from './matchers.js';
import { checkTemplate } from './template.js';

/** What is wrong with a value that should be a duration (undefined when it is one). */
function durationProblem(v: unknown): string | undefined {
  if (typeof v === 'string' && parseDuration(v) !== undefined) return undefined;
  if (typeof v === 'number') return `bad duration ${v}: a number has no unit: write a duration such as ${v}s (or 10m, 1h30m)`;
  if (typeof v === 'string') return `bad duration ${JSON.stringify(v)}: use e.g. 30s, 10m, 1h30m`;
  if (v === undefined) return 'is required: a duration such as 30s, 10m or 1h30m';
  return `must be a duration such as 30s, 10m or 1h30m, not ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : JSON.stringify(v)}`;
}

/**
 * A duration written as text ("30s", "10m", "48h"), parsed to milliseconds. A bare number is
 * refused with the fix (`verify_timeout: 60` -> "write a duration such as 60s"): its unit would be
 * a guess, and Prometheus and Alertmanager refuse one too.
 */
export const duration = z.unknown().transform((v, ctx) => {
  const problem = durationProblem(v);
  if (problem) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    return z.NEVER;
  }
  return parseDuration(v as string)!;
});

/**
 * The same inside a union, already mapped: a refused value is "dirty" rather than aborted, so that
 * zod reports this message instead of a bare "Invalid input" for the whole union. One transform
 * only: zod aborts a transform chained on a dirty value.
 */
const durationInUnion = <T>(map: (ms: number) => T) =>
  z.unknown().transform((v, ctx) => {
    const problem = durationProblem(v);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    return map(problem ? 0 : parseDuration(v as string)!);
  });

function matcherIssue(s: string): string | undefined {
  try {
    parseMatcher(s);
    return undefined;
  } catch (err) {
    if (err instanceof MatcherError) return err.message;
    throw err;
  }
}

const LIST_FORM = `write a list of matchers, e.g. match: ['alertname="X"', 'severity=~"critical|page"'], or Alertmanager's map form match: { alertname: X }`;

/**
 * `match:` as Alertmanager's `matchers:` list (`['alertname="X"', ...]`), or as its legacy
 * `match:` map of label names to exact values (`{ alertname: X, service: y }`), which becomes
 * `alertname="X"`, `service="y"`. Anything else is refused with both forms shown.
 */
const matchList = z.unknown().transform((v, ctx): string[] => {
  const issue = (message: string, path: (string | number)[] = []) => ctx.addIssue({ code: z.ZodIssueCode.custom, message, path });
  let list: { text: string; path: (string | number)[] }[];
  if (Array.isArray(v)) {
    list = v.map((m, i) => ({ text: m, path: [i] }));
    v.forEach((m, i) => typeof m !== 'string' && issue(`must be a matcher written as text such as 'alertname="X"', not ${JSON.stringify(m)}`, [i]));
    list = list.filter((m) => typeof m.text === 'string');
  } else if (v !== null && typeof v === 'object') {
    list = [];
    for (const [name, value] of Object.entries(v)) {
      // Alertmanager's map form takes exact values; YAML may read 500 or true, which mean the text.
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') issue(`must be the label's exact value, not ${value === null ? 'null' : 'a list or map'}`, [name]);
      else list.push({ text: `${name}=${JSON.stringify(String(value))}`, path: [name] });
    }
  } else {
    issue(`must be a list of matchers, not ${typeof v === 'string' ? 'one string' : JSON.stringify(v)}: ${LIST_FORM}`);
    return [];
  }
  if ((Array.isArray(v) ? v : Object.keys(v as object)).length === 0) issue(`needs at least one matcher: ${LIST_FORM}`);
  for (const m of list) {
    const problem = matcherIssue(m.text);
    if (problem) issue(problem, m.path);
  }
  return list.map((m) => m.text);
});

const templated = z.string().min(1).superRefine((s, ctx) => {
  const problem = checkTemplate(s);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

/** Name of an environment variable that holds a secret (the secret itself never is in a rule file). */
export const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name (A-Z, 0-9, _)');

/** Where and how a rule's outcomes are told to people (see src/notifiers). */
export const notifySchema = z
  .object({
    slack: z
      .union([
        z.literal(false),
        z.object({ channel: z.string().min(1).optional() }).strict(),
      ])
      .optional(),
    pagerduty: z
      .union([
        z.literal(false),
        z
          .object({
            /** Env var holding the Events API routing key; default PAGERDUTY_ROUTING_KEY. */
            routing_key_env: envName.optional(),
            /** group_key: sha256(groupKey), as Alertmanager's own PagerDuty integration; fingerprint: per alert. */
            dedup: z.enum(['group_key', 'fingerprint']).default('group_key'),
            /** Acknowledge when the remediation starts. */
            acknowledge: z.boolean().default(true),
            /** On success: resolve now, when the alert resolves in Alertmanager, or never. */
            resolve: z.enum(['immediately', 'on_alert_resolved', 'never']).default('on_alert_resolved'),
            /** On failure (or for a notify-only rule): trigger a page. */
            escalate: z.boolean().default(true),
            /** The page's severity (PagerDuty Events API v2 payload.severity). */
            severity: z.enum(['critical', 'error', 'warning', 'info']).default('critical'),
          })
          .strict(),
      ])
      .optional(),
  })
  .strict();

// The map first: a map with a bad field reports that field, anything else the duration's message.
const backoffSchema = z.union([
  z.object({ type: z.enum(['exponential', 'fixed']), delay: durationInUnion((ms) => ms) }).strict(),
  durationInUnion((delay) => ({ type: 'exponential' as const, delay })),
]);

/** A sliding-window run budget: at most `runs` runs in any window of `per`. */
export const budgetSchema = z.object({ runs: z.number().int().min(1).max(100_000), per: duration }).strict();
export type Budget = z.output<typeof budgetSchema>;

/** Slack user (U…/W…) or user group (S…) ids allowed to approve. */
const slackId = z.string().regex(/^[UWS][A-Z0-9]{2,}$/, 'must be a Slack user id (U…, W…) or user group id (S…)');
export const approvalSchema = z
  .object({ required: z.boolean().default(true), approvers: z.array(slackId).min(1, 'name at least one approver'), timeout: duration.default('15m') })
  .strict();

/**
 * Who may pause this rule with the "Pause this rule" button in Slack: Slack user and user group
 * ids, or `anyone` (every member of the workspace who sees the message). Unset: the rule's
 * approvers; a rule with neither cannot be paused from Slack (the CLI and the admin API still can).
 */
export const pausersSchema = z.union([
  z.literal('anyone'),
  z.array(slackId).min(1, 'name at least one Slack user or group, or write anyone'),
], { errorMap: (issue, ctx) => (issue.code === 'invalid_union' ? { message: 'a list of Slack user (U…, W…) and user group (S…) ids, or anyone' } : { message: ctx.defaultError }) });

/** A URL people open from Slack and PagerDuty: http(s) only (a `javascript:` link must never reach a message). */
const httpUrl = z.string().url('must be a URL').regex(/^https?:\/\//i, 'must be an http(s) URL');

/** How many extra links a rule may show: a phone screen holds a few, not a bookmark list. */
export const MAX_LINKS = 5;

/** A link shown beside the runbook in Slack and in the PagerDuty page: the provider's status page, a dashboard. */
export const linkSchema = z
  .object({
    text: z.string().trim().min(1, 'must not be empty').max(60, 'at most 60 characters (it is a link label)'),
    url: httpUrl,
  })
  .strict();
export type RuleLink = z.output<typeof linkSchema>;

/** One line saying what the alert means for users ("Complete API outage"), shown first to the person paged. */
const impactLine = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(300, 'at most 300 characters (one line a phone shows whole)')
  .refine((s) => !/[\r\n]/.test(s), 'must be one line (use >- in YAML to fold a long one)');

/** One rule, as written (params are checked against the action's schema by load.ts). */
export const ruleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be letters, digits, ".", "_" or "-"'),
    description: z.string().optional(),
    /** Where the on-call runbook for this alert is: a link in Slack and in the PagerDuty page (else the alert's runbook_url annotation). */
    runbook_url: httpUrl.optional(),
    /** What the alert means for users, one line: first in the Slack root and in the page's summary (notify-only) and details. */
    impact: impactLine.optional(),
    /** Extra links for the first moves (the provider's status page...): in the Slack root and the page's links. */
    links: z.array(linkSchema).max(MAX_LINKS, `at most ${MAX_LINKS} links`).default([]),
    match: matchList,
    when: z.enum(['firing', 'resolved']).default('firing'),
    action: z.string().min(1),
    target: templated.optional(),
    params: z.record(z.unknown()).default({}),
    attempts: z.number().int().min(1).max(50).default(3),
    backoff: backoffSchema.default('10s'),
    /** Minimum time between two runs of this rule on the same target. */
    cooldown: duration.optional(),
    /** How long one attempt may take before it is aborted (and retried). */
    timeout: duration.default('5m'),
    dry_run: z.boolean().default(false),
    notify: notifySchema.default({}),
    // Safety (src/safety): limits on how often and when this rule acts.
    /** At most `runs` runs of this rule in any sliding window of `per`. */
    budget: budgetSchema.optional(),
    /** Run even when the alert resolved before the job started (default: skip with reason `resolved`). */
    run_if_resolved: z.boolean().default(false),
    /** A fix is ineffective when the alert fires again within this time after a successful run. */
    verify_window: duration.default('15m'),
    /** Ineffective fixes in a row on one target before the rule is quarantined there; 0 never quarantines. */
    quarantine_after: z.number().int().min(0).max(100).default(3),
    /** A person approves each run in Slack (or the admin API / CLI) before it acts. */
    approval: approvalSchema.optional(),
    pausers: pausersSchema.optional(),
  })
  .strict();

export type RuleSpec = z.output<typeof ruleSchema>;
export type NotifySpec = z.output<typeof notifySchema>;

/** Blast-radius caps across all rules, by action: `limits: { actions: { worker-restart: { runs: 3, per: 10m } } }`. */
export const limitsSchema = z.object({ actions: z.record(z.string().min(1), budgetSchema).default({}) }).strict();
