/**
 * Rule templating: string values may use `{{ labels.NAME }}` and `{{ annotations.NAME }}`.
 * Nothing else is evaluated: no expressions, no functions, so an alert can only supply text.
 */
const placeholder = /\{\{\s*([^}]*?)\s*\}\}/g;
const reference = /^(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)$/;

export class TemplateError extends Error {}

export interface TemplateContext {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function hasTemplate(value: string): boolean {
  return value.includes('{{');
}

/** Checks the syntax of every placeholder; returns the problem or undefined. */
export function checkTemplate(value: string): string | undefined {
  for (const m of value.matchAll(placeholder)) {
    if (!reference.test(m[1]!)) return `unsupported placeholder {{ ${m[1]} }}: use {{ labels.NAME }} or {{ annotations.NAME }}`;
  }
  const rest = value.replace(placeholder, '');
  if (rest.includes('{{') || rest.includes('}}')) return `unbalanced braces in ${JSON.stringify(value)}`;
  return undefined;
}

/** Renders one string; a reference to a label or annotation the alert lacks is an error. */
export function renderString(value: string, ctx: TemplateContext): string {
  return value.replace(placeholder, (_all, ref: string) => {
    const m = reference.exec(ref);
    if (!m) throw new TemplateError(`unsupported placeholder {{ ${ref} }}`);
    const source = m[1] === 'labels' ? ctx.labels : ctx.annotations;
    const v = source[m[2]!];
    if (v === undefined || v === '') throw new TemplateError(`alert has no ${m[1] === 'labels' ? 'label' : 'annotation'} ${m[2]}`);
    return v;
  });
}

/** Renders every string inside a JSON-like value. */
export function renderDeep<T>(value: T, ctx: TemplateContext): T {
  if (typeof value === 'string') return renderString(value, ctx) as T;
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, ctx)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, ctx);
    return out as T;
  }
  return value;
}

/** Visits every string in a JSON-like value with its path. */
export function eachString(value: unknown, visit: (s: string, path: (string | number)[]) => void, path: (string | number)[] = []): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => eachString(v, visit, [...path, i]));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) eachString(v, visit, [...path, k]);
}
