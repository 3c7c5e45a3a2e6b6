import type { Registry } from '../remediations/registry.js';
import type { Remediation } from '../remediations/types.js';
import { describeFields, type FieldDoc } from '../rules/schema-doc.js';

/**
 * `remediator remediations list [name]`: what each remediation does, its params (with defaults),
 * the fields of its target kind, the permissions it needs and a complete example rule file.
 * Everything is read from the remediation itself, so it cannot drift from what the loader accepts.
 */
export function listRemediations(registry: Registry, name: string | undefined, out: (line: string) => void): void {
  const list = [...registry.values()].filter((r) => name === undefined || r.name === name);
  list.forEach((r, i) => {
    if (i > 0) out('');
    describe(r, out);
  });
}

function describe(r: Remediation<any, any>, out: (line: string) => void): void {
  out(`${r.name}  (${r.targetKind ? `target kind: ${r.targetKind}` : 'no target'})`);
  out(`  ${r.description}`);
  const params = describeFields(r.paramsSchema);
  out('  params:');
  table(params.length ? params : [], out, '(none)');
  if (r.targetKind) {
    out(`  target fields (kind: ${r.targetKind}):`);
    table([{ path: 'kind', type: JSON.stringify(r.targetKind), required: true }, ...(r.targetSchema ? describeFields(r.targetSchema) : [])], out, '(none)');
  }
  out('  permissions:');
  if (r.permissions.length === 0) out('    (none)');
  for (const p of r.permissions) out(`    - ${p}`);
  out('  example (a complete rules file):');
  for (const line of r.exampleRules.replace(/^\n+|\s+$/g, '').split('\n')) out(`    ${line}`);
}

/** Fields as aligned columns: path, type, then "required" or the default. */
function table(fields: FieldDoc[], out: (line: string) => void, empty: string): void {
  if (fields.length === 0) {
    out(`    ${empty}`);
    return;
  }
  const w1 = Math.max(...fields.map((f) => f.path.length));
  const w2 = Math.max(...fields.map((f) => f.type.length));
  for (const f of fields) {
    const when = f.default !== undefined ? `default ${show(f.default)}` : f.required ? 'required' : 'optional';
    out(`    ${f.path.padEnd(w1)}  ${f.type.padEnd(w2)}  ${when}`.trimEnd());
  }
}

/** A default as it would be written in YAML: 60s, [idle], {}. */
function show(v: unknown): string {
  if (typeof v === 'string') return /^[\w./:-]+$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  return JSON.stringify(v);
}
