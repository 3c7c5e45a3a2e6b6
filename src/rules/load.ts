import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseDocument, visit, type Node } from 'yaml';
import type { z, ZodIssue } from 'zod';
import { limitsSchema, ruleSchema, type Budget, type RuleSpec } from './schema.js';
import { parseMatcher, type Matcher } from './matchers.js';
import { formatProblem, sortProblems, SourcePositions, type Problem } from './problems.js';
import { closest, keysAt } from './schema-doc.js';
import { findSecrets, type SecretRef } from './secrets.js';
import { eachString, hasTemplate } from './template.js';
import { targetKinds, type ActionSpec, type Catalog } from '../core/action.js';

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
  /** The rule's action as the catalog describes it (the worker runs it from the remediation registry). */
  remediation: ActionSpec;
}

export interface RuleTable {
  rules: CompiledRule[];
  targets: Map<string, Target>;
  files: string[];
  loadedAt: Date;
  /** Every environment variable the targets and rules name as a secret, with where. */
  secrets: SecretRef[];
  /** Blast-radius caps by action, across all rules (top-level `limits.actions` of the files). */
  actionLimits: Map<string, Budget>;
}

/** Every problem found in every file, sorted by file, line and column. */
export class RuleLoadError extends Error {
  /** The problems formatted as `file:line:col: rule "x": path: message`. */
  readonly problems: string[];
  constructor(readonly issues: Problem[]) {
    const lines = sortProblems(issues).map(formatProblem);
    super(`invalid rules (${lines.length} problem${lines.length === 1 ? '' : 's'}):\n  ${lines.join('\n  ')}`);
    this.problems = lines;
  }
}

const isYaml = (f: string) => f.endsWith('.yml') || f.endsWith('.yaml');
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Expanding more aliases than this is refused: a small file must not become gigabytes (an "alias bomb"). */
const MAX_ALIASES = 100;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Reads every *.yml / *.yaml in `dir` (not recursive), in name order, and compiles the table. */
export async function loadRules(dir: string, registry: Catalog): Promise<RuleTable> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isYaml).sort();
  } catch (err) {
    throw new RuleLoadError([{ file: dir, message: `cannot read rules directory: ${(err as Error).message}` }]);
  }
  const unreadable: Problem[] = [];
  const sources = await Promise.all(
    names.map(async (n) => {
      const file = join(dir, n);
      return readFile(file, 'utf8').then(
        (text) => ({ file, text }),
        (err: Error) => (unreadable.push({ file, message: `cannot read: ${err.message}` }), { file, text: '' }),
      );
    }),
  );
  if (unreadable.length) throw new RuleLoadError(unreadable);
  return compileRules(sources, registry);
}

interface ParsedFile {
  pos: SourcePositions;
  value: unknown;
}

/** Parses one file; YAML errors (with their positions) go to `problems`. */
function parseFile(file: string, text: string, problems: Problem[]): ParsedFile | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const pos = new SourcePositions(file, doc, lines);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) problems.push({ file, ...pos.offset(e.pos[0]), subject: 'YAML', message: e.message.split('\n')[0]! });
    return undefined;
  }
  try {
    return { pos, value: doc.toJS({ maxAliasCount: MAX_ALIASES }) };
  } catch (err) {
    let first: Node | undefined;
    visit(doc, { Alias: (_key, node) => ((first = node), visit.BREAK) });
    const at = pos.offset(first?.range?.[0] ?? 0);
    problems.push({ file, ...at, subject: 'YAML', message: `refused: aliases expand too far (${(err as Error).message}); write the values out` });
    return undefined;
  }
}

/** A target declared in some file, valid or not: a rule naming an invalid target is not told the target is unknown. */
interface Declared {
  file: string;
  /** Undefined when the target's kind itself is bad. */
  kind?: string;
}

/** The top-level keys of a rules file. */
const FILE_KEYS = ['targets', 'rules', 'limits'];

/** Compiles rule files given as text (the unit tests feed fixtures through here). */
export function compileRules(sources: { file: string; text: string }[], registry: Catalog): RuleTable {
  const problems: Problem[] = [];
  const kinds = targetKinds(registry);
  const targets = new Map<string, Target>();
  const declared = new Map<string, Declared>();
  const secrets: SecretRef[] = [];
  const rawRules: { pos: SourcePositions; index: number; raw: unknown }[] = [];
  const actionLimits = new Map<string, Budget & { file: string }>();

  for (const { file, text } of sources) {
    const parsed = parseFile(file, text, problems);
    if (!parsed || parsed.value === null || parsed.value === undefined) continue;
    const { pos, value } = parsed;
    if (!isObj(value)) {
      problems.push(pos.problem([], { message: 'a rules file is a map with the keys targets, rules and limits' }));
      continue;
    }
    for (const key of Object.keys(value).filter((k) => !FILE_KEYS.includes(k))) {
      problems.push(pos.problem([key], { field: [key], key: true, message: unknownKey(key, FILE_KEYS) }));
    }
    const limits = limitsSchema.safeParse(value.limits ?? {});
    if (!limits.success) {
      for (const i of limits.error.issues) problems.push(pos.problem(['limits', ...i.path], { field: ['limits', ...i.path], message: i.message }));
    } else {
      for (const [action, limit] of Object.entries(limits.data.actions)) {
        const at = ['limits', 'actions', action];
        if (!registry.get(action)) problems.push(pos.problem(at, { field: at, key: true, message: `unknown action (known: ${[...registry.keys()].sort().join(', ')})` }));
        else if (actionLimits.has(action)) problems.push(pos.problem(at, { field: at, key: true, message: `duplicate limit (also in ${actionLimits.get(action)!.file})` }));
        else actionLimits.set(action, { ...limit, file });
      }
    }
    const ts = value.targets ?? {};
    if (!isObj(ts)) problems.push(pos.problem(['targets'], { field: ['targets'], message: 'must be a map of target names to targets' }));
    else {
      for (const [name, raw] of Object.entries(ts)) {
        const at = ['targets', name];
        const subject = `target ${JSON.stringify(name)}`;
        const problem = (path: (string | number)[], message: string, key = false) =>
          problems.push(pos.problem([...at, ...path], { subject, field: path, message, key }));
        if (!NAME.test(name)) {
          problem([], 'bad target name: use letters, digits, ".", "_" or "-"', true);
          continue;
        }
        const prev = declared.get(name);
        if (prev) {
          problem([], `duplicate target name (also in ${prev.file})`, true);
          continue;
        }
        const d: Declared = { file };
        declared.set(name, d);
        if (!isObj(raw)) {
          problem([], `must be a map with kind (one of ${[...kinds.keys()].sort().join(', ')}) and that kind's fields`);
          continue;
        }
        const { kind, ...rest } = raw;
        const schema = typeof kind === 'string' ? kinds.get(kind) : undefined;
        if (!schema) {
          problem(['kind'], `${kind === undefined ? 'is required' : `unknown kind ${JSON.stringify(kind)}`} (known: ${[...kinds.keys()].sort().join(', ')})`);
          continue;
        }
        d.kind = kind as string;
        const config = schema.safeParse(rest);
        if (!config.success) {
          problems.push(...zodProblems(config.error.issues, { pos, base: at, field: [], subject, schema, extraKeys: ['kind'] }));
          continue;
        }
        targets.set(name, { name, kind: d.kind, config: config.data, file });
        secrets.push(...findSecrets(rest, { pos, base: at, subject }));
      }
    }
    const rs = value.rules ?? [];
    if (!Array.isArray(rs)) problems.push(pos.problem(['rules'], { field: ['rules'], message: 'must be a list of rules' }));
    else rs.forEach((raw, index) => rawRules.push({ pos, index, raw }));
  }

  const rules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  for (const { pos, index, raw } of rawRules) {
    const at = ['rules', index];
    const name = isObj(raw) && typeof raw.name === 'string' ? raw.name : undefined;
    const subject = name !== undefined ? `rule ${JSON.stringify(name)}` : `rule #${index + 1}`;
    const problem = (path: (string | number)[], message: string) => problems.push(pos.problem([...at, ...path], { subject, field: path, message }));
    if (!isObj(raw)) {
      problem([], 'must be a map with name, match and action');
      continue;
    }
    // Every field is checked even when another is bad: one run of `rules check` lists every problem.
    const before = problems.length;
    const parsed = ruleSchema.safeParse(raw);
    const bad = new Set<unknown>();
    if (!parsed.success) {
      for (const i of parsed.error.issues) bad.add(i.path[0]);
      problems.push(...zodProblems(parsed.error.issues, { pos, base: at, field: [], subject, schema: ruleSchema }));
    }
    if (name !== undefined && !bad.has('name')) {
      if (seen.has(name)) problem(['name'], `duplicate rule name (also in ${seen.get(name)})`);
      else seen.set(name, pos.file);
    }
    const action = typeof raw.action === 'string' && !bad.has('action') ? raw.action : undefined;
    const remediation = action === undefined ? undefined : registry.get(action);
    if (action !== undefined && !remediation) problem(['action'], `unknown action ${JSON.stringify(action)} (known: ${[...registry.keys()].sort().join(', ')})`);
    if (remediation) {
      if (!bad.has('target')) for (const m of checkTarget(raw.target as string | undefined, remediation, declared)) problem(['target'], m);
      if (!bad.has('params')) {
        const issues = checkParams((raw.params ?? {}) as Obj, remediation);
        problems.push(...zodProblems(issues, { pos, base: [...at, 'params'], field: ['params'], subject, schema: remediation.paramsSchema }));
      }
    }
    if (parsed.success && remediation && problems.length === before) {
      rules.push({ spec: parsed.data, file: pos.file, remediation, matchers: parsed.data.match.map(parseMatcher) });
      secrets.push(...findSecrets(raw, { pos, base: at, subject }));
    }
  }
  if (problems.length > 0) throw new RuleLoadError(problems);
  const limits = new Map([...actionLimits].map(([a, { runs, per }]) => [a, { runs, per }]));
  return { rules, targets, files: sources.map((s) => s.file), loadedAt: new Date(), secrets, actionLimits: limits };
}

/** Zod issues as located problems; an unknown key is reported on the key, with the allowed ones. */
function zodProblems(
  issues: ZodIssue[],
  o: { pos: SourcePositions; base: (string | number)[]; field: (string | number)[]; subject: string; schema: z.ZodTypeAny; extraKeys?: string[] },
): Problem[] {
  return issues.flatMap((i) => {
    if (i.code === 'unrecognized_keys') {
      const allowed = [...(i.path.length === 0 ? (o.extraKeys ?? []) : []), ...(keysAt(o.schema, i.path) ?? [])];
      return i.keys.map((k) =>
        o.pos.problem([...o.base, ...i.path, k], { subject: o.subject, field: [...o.field, ...i.path, k], key: true, message: unknownKey(k, allowed) }),
      );
    }
    return [o.pos.problem([...o.base, ...i.path], { subject: o.subject, field: [...o.field, ...i.path], message: i.message })];
  });
}

function unknownKey(key: string, allowed: string[]): string {
  const near = closest(key, allowed);
  if (near) return `unknown key (did you mean ${JSON.stringify(near)}?)`;
  return allowed.length ? `unknown key (allowed: ${allowed.join(', ')})` : 'unknown key';
}

function checkTarget(target: string | undefined, r: ActionSpec, declared: Map<string, Declared>): string[] {
  if (r.targetKind === null) return target === undefined ? [] : [`action ${r.name} takes no target`];
  if (target === undefined) return [`action ${r.name} needs a target of kind ${r.targetKind}`];
  if (hasTemplate(target)) {
    const any = [...declared.values()].some((t) => t.kind === r.targetKind);
    return any ? [] : [`no target of kind ${r.targetKind} is declared, so ${JSON.stringify(target)} can never resolve`];
  }
  const t = declared.get(target);
  if (!t) return [`unknown target ${JSON.stringify(target)} (declare it under targets:)`];
  // A target that is declared but invalid has its own problem already; saying more would mislead.
  if (t.kind !== undefined && t.kind !== r.targetKind) return [`target ${target} is of kind ${t.kind}, action ${r.name} needs ${r.targetKind}`];
  return [];
}

/**
 * Validates params against the action's schema. A field whose value is templated can only be
 * checked once an alert fills it in, so issues at templated paths are deferred to render time.
 */
function checkParams(params: Obj, r: ActionSpec): ZodIssue[] {
  const templated = new Set<string>();
  eachString(params, (s, path) => {
    if (hasTemplate(s)) templated.add(path.join('.'));
  });
  const res = (r.paramsSchema as z.ZodTypeAny).safeParse(params);
  if (res.success) return [];
  return res.error.issues.filter((i) => !templated.has(i.path.join('.')));
}
