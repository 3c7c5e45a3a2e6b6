/**
 * What we store and send: alert labels are hostile input, and so is anything a target answers.
 * PostgreSQL refuses NUL in text and jsonb and refuses lone surrogates in jsonb; Slack's form
 * encoding (encodeURIComponent) throws "URI malformed" on a lone surrogate. So every string that
 * crosses into PostgreSQL, Slack or PagerDuty is made well-formed here, once, at the boundary:
 * NUL and lone surrogates become U+FFFD, so the value stays visibly "not what was sent".
 */
const BAD = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ANY_BAD = /[\u0000\uD800-\uDFFF]/;

export const REPLACEMENT = '\uFFFD';

/** The string with NUL and lone surrogates replaced by U+FFFD (the same string when clean). */
export function storable(s: string): string {
  // Fast path: most strings have no NUL and no surrogate at all.
  if (!ANY_BAD.test(s)) return s;
  return s.replace(BAD, REPLACEMENT);
}

/** A string map with keys and values made storable. */
export function storableRecord(r: Record<string, string>): Record<string, string> {
  let clean = true;
  for (const [k, v] of Object.entries(r)) {
    if (ANY_BAD.test(k) || ANY_BAD.test(v)) {
      clean = false;
      break;
    }
  }
  if (clean) return r;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r)) out[storable(k)] = storable(v);
  return out;
}

/** Any JSON-like value with every string (keys too) made storable; other values unchanged. */
export function storableDeep<T>(v: T): T {
  if (typeof v === 'string') return storable(v) as T;
  if (Array.isArray(v)) return v.map((x) => storableDeep(x)) as T;
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[storable(k)] = storableDeep(x);
    return out as T;
  }
  return v;
}

/** Cuts a string to at most `max` UTF-16 units without splitting a surrogate pair. */
export function truncate(s: string, max: number, marker = '…'): string {
  if (s.length <= max) return s;
  let end = max - marker.length;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return s.slice(0, Math.max(0, end)) + marker;
}

/**
 * RFC 3339 as Alertmanager writes it (Go's time.Time JSON): a four-digit year, so every value is
 * one PostgreSQL's timestamptz and JavaScript's Date both hold. `-000001-...` and `+275760-...`
 * parse in JavaScript but are not RFC 3339.
 */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export function isRfc3339(s: string): boolean {
  return RFC3339.test(s) && !Number.isNaN(Date.parse(s.replace(' ', 'T')));
}
