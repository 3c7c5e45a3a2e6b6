import { formatDuration } from '../../core/duration.js';
import type { BudgetKey } from '../../redis/safety-state.js';
import type { CompiledRule, RuleTable } from '../../rules/load.js';
import type { Gate } from './types.js';

/** The budgets a run of this rule takes from: its own, and its action's blast-radius cap. */
export function budgetsFor(rule: CompiledRule, table: RuleTable): (BudgetKey & { label: string })[] {
  const out: (BudgetKey & { label: string })[] = [];
  const b = rule.spec.budget;
  if (b) out.push({ key: `rule:${rule.spec.name}`, runs: b.runs, perMs: b.per, label: `rule ${rule.spec.name}: ${b.runs} runs per ${formatDuration(b.per)}` });
  const a = table.actionLimits.get(rule.spec.action);
  if (a) out.push({ key: `action:${rule.spec.action}`, runs: a.runs, perMs: a.per, label: `action ${rule.spec.action} (all rules): ${a.runs} runs per ${formatDuration(a.per)}` });
  return out;
}

/**
 * Sliding-window run budgets, all taken at once or none (src/redis/safety-state.ts). Last in the
 * list, because checking takes a slot; a dry run only checks.
 */
export const budget: Gate = {
  name: 'budget',
  async check(c) {
    const budgets = budgetsFor(c.rule, c.table);
    if (budgets.length === 0) return undefined;
    const spent = await c.safety.takeBudget(budgets, c.spec.jobId, c.now, c.spec.dryRun);
    if (!spent) return undefined;
    const b = budgets.find((x) => x.key === spent.key)!;
    // One page per spent budget and window, not one per alert.
    const first = await c.safety.once(`budget:${spent.key}`, spent.perMs);
    return {
      skip: 'budget',
      message: `Budget spent: ${b.label}. Not run.`,
      details: { budget: b.key, runs: b.runs, per_ms: b.perMs },
      ...(first ? { page: `budget spent (${b.label})` } : {}),
    };
  },
};
