import { z } from 'zod';
import { duration, envName } from './schema.js';

/**
 * Reads the zod schemas of params and targets back as documentation: which fields exist, their
 * type, default and whether they are required. `remediations list` prints it, and the rule
 * loader uses it to name the allowed keys when a rule file has an unknown one.
 */
export interface FieldDoc {
  /** Dot path, `[]` for the items of a list: `status.token_env`, `seed[].number`. */
  path: string;
  type: string;
  required: boolean;
  /** The default as written in a rule file (e.g. "60s"), when there is one. */
  default?: unknown;
}

/** Schemas with a name of their own, recognised by identity before they are unwrapped. */
const named = new Map<z.ZodTypeAny, string>([
  [duration, 'duration'],
  [envName, 'env var name'],
]);

interface Unwrapped {
  schema: z.ZodTypeAny;
  optional: boolean;
  default?: unknown;
}

/** Peels optional/default/refinement wrappers down to the schema that says what the value is. */
function unwrap(s: z.ZodTypeAny): Unwrapped {
  let optional = false;
  let def: unknown;
  for (;;) {
    if (named.has(s)) break;
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      optional = true;
      s = s._def.innerType;
    } else if (s instanceof z.ZodDefault) {
      def ??= s._def.defaultValue();
      s = s._def.innerType;
    } else if (s instanceof z.ZodEffects) {
      s = s._def.schema;
    } else break;
  }
  return { schema: s, optional: optional || def !== undefined, default: def };
}

/** A short type name for people: `duration`, `list of string`, `one of idle | idle in transaction`. */
export function typeName(schema: z.ZodTypeAny): string {
  const s = unwrap(schema).schema;
  const name = named.get(s);
  if (name) return name;
  if (s instanceof z.ZodString) return 'string';
  if (s instanceof z.ZodNumber) return s.isInt ? 'integer' : 'number';
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodLiteral) return JSON.stringify(s.value);
  if (s instanceof z.ZodEnum) return `one of ${(s.options as string[]).join(' | ')}`;
  if (s instanceof z.ZodArray) return `list of ${typeName(s.element)}`;
  if (s instanceof z.ZodRecord) return `map of ${typeName(s.valueSchema)}`;
  if (s instanceof z.ZodObject) return 'object';
  if (s instanceof z.ZodUnion) return (s.options as z.ZodTypeAny[]).map(typeName).join(' or ');
  return 'any';
}

/** Every field of an object schema, nested objects and lists of objects flattened with their paths. */
export function describeFields(schema: z.ZodTypeAny, prefix = ''): FieldDoc[] {
  const obj = unwrap(schema).schema;
  if (!(obj instanceof z.ZodObject)) return [];
  const out: FieldDoc[] = [];
  for (const [key, field] of Object.entries(obj.shape as Record<string, z.ZodTypeAny>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const u = unwrap(field);
    out.push({ path, type: typeName(field), required: !u.optional, ...(u.default !== undefined ? { default: u.default } : {}) });
    if (u.schema instanceof z.ZodObject) out.push(...describeFields(u.schema, path));
    else if (u.schema instanceof z.ZodArray) out.push(...describeFields(u.schema.element, `${path}[]`));
  }
  return out;
}

/** The keys an object at `path` inside `schema` may have, or undefined when there is no object there. */
export function keysAt(schema: z.ZodTypeAny, path: (string | number)[]): string[] | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  for (const seg of [...path, null]) {
    s = unwrap(s).schema;
    if (s instanceof z.ZodUnion) s = (s.options as z.ZodTypeAny[]).map((o) => unwrap(o).schema).find((o) => o instanceof z.ZodObject) ?? s;
    if (seg === null) return s instanceof z.ZodObject ? Object.keys(s.shape as object) : undefined;
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodTypeAny>)[String(seg)];
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else return undefined;
    if (!s) return undefined;
  }
  return undefined;
}

/** "did you mean" for a misspelt key: the allowed key at edit distance <= 2, if exactly one is. */
export function closest(word: string, allowed: string[]): string | undefined {
  const near = allowed.filter((a) => distance(word, a) <= 2);
  return near.length === 1 ? near[0] : undefined;
}

/** Levenshtein distance (a swap of two letters, "actoin", is 2). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
