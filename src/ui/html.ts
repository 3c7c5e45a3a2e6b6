/**
 * Server-side HTML with escaping by default: every value interpolated into `html` is escaped
 * unless it is itself the result of `html` (or `raw`). Alert labels, annotations and summaries
 * come from whoever can reach Alertmanager; they are hostile input.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for an element body or a quoted attribute value. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => entities[c]!);
}

type Value = Html | string | number | boolean | null | undefined | Date | readonly Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v instanceof Date) return escapeHtml(v.toISOString());
  return escapeHtml(v);
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

/** Markup we wrote ourselves; never pass input through this. */
export function raw(markup: string): Html {
  return new Html(markup);
}

/** A link's href: only relative paths and http(s) URLs (a `javascript:` URL in a label is refused). */
export function safeHref(u: string | null | undefined): string | undefined {
  if (!u) return undefined;
  if (u.startsWith('/') && !u.startsWith('//')) return u;
  try {
    const p = new URL(u);
    return p.protocol === 'http:' || p.protocol === 'https:' ? p.toString() : undefined;
  } catch {
    return undefined;
  }
}
