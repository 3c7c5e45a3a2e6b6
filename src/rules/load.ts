import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ruleFileSchema, ruleSchema, type Budget, type RuleSpec } from './schema.js';
import { parseMatcher, type Matcher } from './matchers.js';
import { eachString, hasTemplate } from './template.js';
import { targetKinds, type Registry } from '../remediations/registry.js';
import type { Remediation } from '../remediations/types.js';

/** A declared target: what a remediation may act on. Secrets are env var names, not values. */
export interface Target {
  name: string;
  kind: string;
  config: unknown;
  file: string;
}

export interface CompiledRule {
  spec: RuleSpec;
  file: string;
  matchers: Matcher[];
  remediation: Remediation<any, any>;
}

export interface RuleTable {
  rules: CompiledRule[];
  targets: Map<string, Target>;
  /** Blast-radius caps by action (top-level `limits.actions` of the rule files). */
  actionLimits: Map<string, Budget>;
  files: string[];
  loadedAt: Date;
}

/** Every problem found, each naming the file, the rule (or target) and the field. */
export class RuleLoadError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid rules:\n  ${problems.join('\n  ')}`);
  }
}

const isYaml = (f: string) => f.endsWith('.yml') || f.endsWith('.yaml');

/** Reads every *.yml / *.yaml in `dir` (not recursive), in name order, and compiles the table. */
export async function loadRules(dir: string, registry: Registry): Promise<RuleTable> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isYaml).sort();
  } catch (err) {
    throw new RuleLoadError([`${dir}: cannot read rules directory: ${(err as Error).message}`]);
  }
  const sources = await Promise.all(names.map(async (n) => ({ file: join(dir, n), text: await readFile(join(dir, n), 'utf8') })));
  return compileRules(sources, registry);
}

/** Compiles rule files given as text (the unit tests feed fixtures through here). */
export function compileRules(sources: { file: string; text: string }[], registry: Registry): RuleTable {
  const problems: string[] = [];
  const kinds = targetKinds(registry);
  const targets = new Map<string, Target>();
  const rawRules: { file: string; index: number; raw: unknown }[] = [];
  const actionLimits = new Map<string, Budget & { file: string }>();

  for (const { file, text } of sources) {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push(`${file}: YAML: ${e.message.split('\n')[0]}`);
      continue;
    }
    const parsed = ruleFileSchema.safeParse(doc.toJS() ?? {});
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${file}: ${fieldPath(i.path)}: ${i.message}`);
      continue;
    }
    for (const [name, raw] of Object.entries(parsed.data.targets)) {
      const where = `${file}: target ${name}`;
      if (targets.has(name)) {
        problems.push(`${where}: duplicate target name (also in ${targets.get(name)!.file})`);
        continue;
      }
      const { kind, ...rest } = raw as { kind?: unknown };
      const schema = typeof kind === 'string' ? kinds.get(kind) : undefined;
      if (!schema) {
        problems.push(`${where}: kind: ${kind === undefined ? 'is required' : `unknown kind ${JSON.stringify(kind)}`} (known: ${[...kinds.keys()].sort().join(', ')})`);
        continue;
      }
      const config = schema.safeParse(rest);
      if (!config.success) {
        for (const i of config.error.issues) problems.push(`${where}: ${fieldPath(i.path)}: ${i.message}`);
        continue;
      }
      targets.set(name, { name, kind: kind as string, config: config.data, file });
    }
    for (const [action, limit] of Object.entries(parsed.data.limits.actions)) {
      const where = `${file}: limits.actions.${action}`;
      if (!registry.get(action)) problems.push(`${where}: unknown action (known: ${[...registry.keys()].sort().join(', ')})`);
      else if (actionLimits.has(action)) problems.push(`${where}: duplicate limit (also in ${actionLimits.get(action)!.file})`);
      else actionLimits.set(action, { ...limit, file });
    }
    parsed.data.rules.forEach((raw, index) => rawRules.push({ file, index, raw }));
  }

  const rules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  for (const { file, index, raw } of rawRules) {
    const label = (raw as { name?: unknown })?.name;
    const where = `${file}: rule ${typeof label === 'string' ? label : `#${index + 1}`}`;
    const parsed = ruleSchema.safeParse(raw);
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${where}: ${fieldPath(i.path)}: ${i.message}`);
      continue;
    }
    const spec = parsed.data;
    if (seen.has(spec.name)) {
      problems.push(`${where}: name: duplicate rule name (also in ${seen.get(spec.name)})`);
      continue;
    }
    seen.set(spec.name, file);
    const remediation = registry.get(spec.action);
    if (!remediation) {
      problems.push(`${where}: action: unknown action ${JSON.stringify(spec.action)} (known: ${[...registry.keys()].sort().join(', ')})`);
      continue;
    }
    problems.push(...checkTarget(spec, remediation, targets).map((p) => `${where}: target: ${p}`));
    problems.push(...checkParams(spec.params, remediation).map((p) => `${where}: ${p}`));
    rules.push({ spec, file, remediation, matchers: spec.match.map(parseMatcher) });
  }
  if (problems.length > 0) throw new RuleLoadError(problems);
  const limits = new Map([...actionLimits].map(([a, { runs, per }]) => [a, { runs, per }]));
  return { rules, targets, actionLimits: limits, files: sources.map((s) => s.file), loadedAt: new Date() };
}

function checkTarget(spec: RuleSpec, r: Remediation<any, any>, targets: Map<string, Target>): string[] {
  if (r.targetKind === null) return spec.target === undefined ? [] : [`action ${r.name} takes no target`];
  if (spec.target === undefined) return [`action ${r.name} needs a target of kind ${r.targetKind}`];
  if (hasTemplate(spec.target)) {
    const any = [...targets.values()].some((t) => t.kind === r.targetKind);
    return any ? [] : [`no target of kind ${r.targetKind} is declared, so ${JSON.stringify(spec.target)} can never resolve`];
  }
  const t = targets.get(spec.target);
  if (!t) return [`unknown target ${JSON.stringify(spec.target)} (declare it under targets:)`];
  if (t.kind !== r.targetKind) return [`target ${t.name} is of kind ${t.kind}, action ${r.name} needs ${r.targetKind}`];
  return [];
}

/**
 * Validates params against the action's schema. A field whose value is templated can only be
 * checked once an alert fills it in, so issues at templated paths are deferred to render time.
 */
function checkParams(params: Record<string, unknown>, r: Remediation<any, any>): string[] {
  const templated = new Set<string>();
  eachString(params, (s, path) => {
    if (hasTemplate(s)) templated.add(path.join('.'));
  });
  const res = (r.paramsSchema as z.ZodTypeAny).safeParse(params);
  if (res.success) return [];
  return res.error.issues
    .filter((i) => !templated.has(i.path.join('.')))
    .map((i) => `params.${fieldPath(i.path)}: ${i.message}`.replace('params.(top level)', 'params'));
}

export function fieldPath(path: (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
