import { createHash } from 'node:crypto';
import type { RuleTable } from './load.js';
import { closest } from './schema-doc.js';

/** The names a pause scope can name in one rule table. */
export interface ScopeNames {
  rules: string[];
  targets: string[];
  /** Actions some rule uses (a pause of an action no rule runs holds nothing back). */
  actions: string[];
}

export function scopeNames(table: RuleTable): ScopeNames {
  const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
  return {
    rules: sorted(table.rules.map((r) => r.spec.name)),
    targets: sorted(table.targets.keys()),
    actions: sorted(table.rules.map((r) => r.spec.action)),
  };
}

/**
 * A short hash of what a table does (every rule as compiled, every target): two processes with
 * the same hash run the same rules, whatever the file names or comments. Workers advertise it in
 * their heartbeat, so `remediator status` shows processes that run different rules.
 */
export function rulesHash(table: RuleTable): string {
  const rules = [...table.rules].map((r) => r.spec).sort((a, b) => (a.name < b.name ? -1 : 1));
  const targets = [...table.targets.values()].map(({ name, kind, config }) => ({ name, kind, config })).sort((a, b) => (a.name < b.name ? -1 : 1));
  return createHash('sha256').update(JSON.stringify({ rules, targets })).digest('hex').slice(0, 12);
}

/**
 * Why a pause scope names nothing known (a misspelt rule would hold nothing back while saying
 * "paused"), or undefined when it does. Rules and targets are looked up in `known` (the CLI's
 * RULES_DIR, the live workers' tables: known when any of them has the name); actions in `catalog`,
 * every action remediator has, so an action can be paused before a rule uses it.
 */
export function unknownScope(scope: string, known: ScopeNames[], catalog: readonly string[]): string | undefined {
  const m = /^(rule|action|target):(.+)$/.exec(scope);
  if (!m) return undefined; // "all", or a malformed scope the operator's own check refuses
  const kind = m[1] as 'rule' | 'action' | 'target';
  const name = m[2]!;
  const names = kind === 'action' ? [...catalog].sort() : [...new Set(known.flatMap((k) => k[`${kind}s`]))].sort();
  if (names.includes(name)) return undefined;
  if (kind !== 'action' && known.length === 0) return `scope: cannot check ${scope}: no rule table to check it against`;
  const near = closest(name, names);
  const what = kind === 'action' ? 'no action is named' : `no ${kind} is named`;
  return `scope: ${what} ${JSON.stringify(name)}${near ? ` (did you mean ${kind}:${near}?)` : names.length ? ` (known: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''})` : ''}`;
}
