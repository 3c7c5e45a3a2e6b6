import type { ActionSpec } from '../core/action.js';
import type { AlertInfo } from '../core/alert.js';
import { jobIdFor, type JobSpec } from '../core/run.js';
import type { CompiledRule, RuleTable, Target } from './load.js';
import { renderDeep, renderString, TemplateError, type TemplateContext } from './template.js';
import type { RuleSpec } from './schema.js';

/** Why a rule did or did not apply to an alert (`rules test` prints these). */
export interface RuleVerdict {
  rule: string;
  matched: boolean;
  /** For a rule that did not match: the first matcher that failed, and the label's value. */
  reason?: string;
}

export type DecisionKind = 'enqueue' | 'not_applicable' | 'no_match' | 'invalid' | 'refused';

/** What the receiver does with one (alert, rule) pair, or with an alert no rule matched. */
export interface Decision {
  kind: DecisionKind;
  rule?: string;
  /** The job id of this firing for this rule (also set for `not_applicable`, so a resolved alert finds its run). */
  jobId?: string;
  reason?: string;
  job?: JobSpec;
}

export interface WebhookContext {
  groupKey: string;
  receiver: string;
  externalURL: string;
  receivedAt: string;
  /** Global DRY_RUN: every job runs as dry-run. */
  dryRun: boolean;
}

export function verdict(rule: CompiledRule, labels: Record<string, string>): RuleVerdict {
  for (const m of rule.matchers) {
    if (!m.matches(labels)) {
      const actual = labels[m.name];
      return {
        rule: rule.spec.name,
        matched: false,
        reason: `${m.text} failed: ${actual === undefined ? `label ${m.name} is missing` : `${m.name} is ${JSON.stringify(actual)}`}`,
      };
    }
  }
  return { rule: rule.spec.name, matched: true };
}

/** Decides what to do with one alert: every matching rule gives one decision. */
export function decide(table: RuleTable, alert: AlertInfo, ctx: WebhookContext): { verdicts: RuleVerdict[]; decisions: Decision[] } {
  const verdicts = table.rules.map((r) => verdict(r, alert.labels));
  const decisions: Decision[] = [];
  table.rules.forEach((rule, i) => {
    if (!verdicts[i]!.matched) return;
    const spec = rule.spec;
    const jobId = jobIdFor(alert.fingerprint, alert.startsAt, spec.name);
    if (spec.when !== alert.status) {
      decisions.push({ kind: 'not_applicable', rule: spec.name, jobId, reason: `rule acts on ${spec.when} alerts, this one is ${alert.status}` });
      return;
    }
    decisions.push(planJob(table, rule, alert, ctx, jobId));
  });
  if (decisions.length === 0) decisions.push({ kind: 'no_match', reason: 'no rule matched' });
  return { verdicts, decisions };
}

function planJob(table: RuleTable, rule: CompiledRule, alert: AlertInfo, ctx: WebhookContext, jobId: string): Decision {
  const spec: RuleSpec = rule.spec;
  const tctx: TemplateContext = { labels: alert.labels, annotations: alert.annotations };
  const job = (target: string | undefined, params: unknown, refusal?: JobSpec['refusal']): JobSpec => ({
    jobId,
    rule: spec.name,
    action: spec.action,
    target,
    params,
    dryRun: ctx.dryRun || spec.dry_run,
    alert,
    groupKey: ctx.groupKey,
    receiver: ctx.receiver,
    externalURL: ctx.externalURL,
    receivedAt: ctx.receivedAt,
    ...(refusal ? { refusal } : {}),
  });
  // A matching rule that cannot act still becomes a job, one that fails at once with the reason:
  // the run is audited, told to Slack and escalated to PagerDuty, so a person acts instead.
  const refuse = (kind: 'invalid' | 'refused', reason: string, target?: string): Decision => ({
    kind,
    rule: spec.name,
    jobId,
    reason,
    job: job(target, {}, { reason: kind === 'refused' ? 'refused_target' : 'bad_params', message: reason }),
  });
  let target: string | undefined;
  let params: unknown;
  try {
    target = spec.target === undefined ? undefined : renderString(spec.target, tctx);
    params = renderDeep(spec.params, tctx);
  } catch (err) {
    if (err instanceof TemplateError) return refuse('invalid', `template: ${err.message}`);
    throw err;
  }
  const checked = checkAction(table, rule.remediation, target, params);
  if (!checked.ok) return refuse(checked.reason === 'refused_target' ? 'refused' : 'invalid', checked.message, target);
  // The job carries the params as rendered: the worker checks them again (the schemas transform, e.g. durations).
  return { kind: 'enqueue', rule: spec.name, jobId, job: job(target, params) };
}

/**
 * The one check of what a run may act on, at intake and again just before it acts (the table may
 * have changed in between): the target is declared and of the action's kind, the params pass the
 * action's schema. Target configs hold the target's own allow-lists, checked by the remediation.
 */
export function checkAction(
  table: RuleTable,
  action: ActionSpec,
  target: string | undefined,
  params: unknown,
): { ok: true; target?: Target; params: unknown } | { ok: false; reason: 'refused_target' | 'bad_params'; message: string } {
  let t: Target | undefined;
  if (action.targetKind !== null) {
    t = target === undefined ? undefined : table.targets.get(target);
    if (!t || t.kind !== action.targetKind) {
      const message = t
        ? `target ${JSON.stringify(target)} is of kind ${t.kind}, not ${action.targetKind}`
        : target === undefined ? `action ${action.name} needs a target of kind ${action.targetKind}` : `target ${JSON.stringify(target)} is not declared`;
      return { ok: false, reason: 'refused_target', message };
    }
  }
  const checked = action.paramsSchema.safeParse(params);
  if (!checked.success) {
    const i = checked.error.issues[0]!;
    return { ok: false, reason: 'bad_params', message: `params.${i.path.join('.')}: ${i.message}` };
  }
  return { ok: true, ...(t ? { target: t } : {}), params: checked.data };
}
