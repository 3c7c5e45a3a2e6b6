import type { z } from 'zod';

/**
 * What the rule table needs to know of an action to check rules against it: its params, and the
 * kind of target it takes with that kind's fields. Every remediation is one (src/remediations);
 * the rules layer is given the catalog and never imports the remediations themselves.
 */
export interface ActionSpec {
  name: string;
  /** The `kind` of target it acts on, or null for actions that need no target (notify). */
  targetKind: string | null;
  /** Strict zod schema of `params` in a rule. */
  paramsSchema: z.ZodType<unknown, z.ZodTypeDef, unknown>;
  /** Strict zod schema of a target of `targetKind` (without `kind`), for the action that declares the kind. */
  targetSchema?: z.ZodType<unknown, z.ZodTypeDef, unknown>;
}

/** The actions a rule may name, by name. */
export type Catalog = ReadonlyMap<string, ActionSpec>;

/** The schema of each target kind, taken from the action that declares it. */
export function targetKinds(catalog: Catalog): Map<string, z.ZodType<unknown, z.ZodTypeDef, unknown>> {
  const out = new Map<string, z.ZodType<unknown, z.ZodTypeDef, unknown>>();
  for (const a of catalog.values()) if (a.targetKind && a.targetSchema) out.set(a.targetKind, a.targetSchema);
  return out;
}
