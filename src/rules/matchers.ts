import { compileAnchored, RegexError } from './regex.js';

/**
 * Alertmanager label matchers: `name="value"`, `name=~"re"`, `name!="value"`, `name!~"re"`, split
 * as Alertmanager's parser splits them (pkg/labels/parse.go ParseMatcher); a missing label matches
 * as the empty string. Regexes are Go's RE2, anchored as `^(?:re)$` (see regex.ts), so matching
 * takes linear time whatever the label value.
 *
 * Values: a quoted value is a Go string literal, as Alertmanager's UTF-8 matcher parser reads it
 * (matcher/parse, strconv.Unquote): `\"`, `\\`, `\n`, `\t`, `\xHH`, `\u00e9`... and an unknown
 * escape such as `\d` is refused (write `\\d`). Alertmanager's older parser, which it still falls
 * back to with a deprecation warning, would keep `\d` as it is; refusing says so at load rather than
 * leaving two meanings. A bare value follows the older parser (the only one that accepts bare
 * values with a backslash or a space): `\n`, `\"` and `\\` are escapes, any other backslash is literal.
 */
export type MatchType = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  readonly name: string;
  readonly type: MatchType;
  readonly value: string;
  /** The matcher as written in canonical form, for messages. */
  readonly text: string;
  matches(labels: Record<string, string>): boolean;
}

// Go's \s is [\t\n\f\r ] (not JavaScript's wider set); `=~` before `=` so that `~` is not taken as the value.
const matcherRe = /^[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)[\t\n\f\r ]*([\s\S]*?)[\t\n\f\r ]*$/;

export class MatcherError extends Error {}

export function parseMatcher(input: string): Matcher {
  const bad = (why: string) => new MatcherError(`bad matcher ${JSON.stringify(input)}: ${why}`);
  const m = matcherRe.exec(input);
  if (!m) throw bad('expected name="value" with =, !=, =~ or !~');
  const name = m[1]!;
  const type = m[2] as MatchType;
  const raw = m[3]!;
  let value: string;
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) throw bad('unterminated quoted value');
    value = unquoteGo(raw.slice(1, -1), bad);
  } else {
    value = unescapeBare(raw, bad);
  }
  let test: (v: string) => boolean;
  if (type === '=~' || type === '!~') {
    let full: (v: string) => boolean;
    try {
      full = compileAnchored(value);
    } catch (err) {
      if (err instanceof RegexError) throw bad(`invalid regex: ${err.message}`);
      throw err;
    }
    test = type === '=~' ? full : (v) => !full(v);
  } else {
    test = type === '=' ? (v) => v === value : (v) => v !== value;
  }
  return {
    name,
    type,
    value,
    text: `${name}${type}${JSON.stringify(value)}`,
    matches: (labels) => test(labels[name] ?? ''),
  };
}

type Bad = (why: string) => MatcherError;

const simpleEscapes: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };
const hex = /^[0-9a-fA-F]+$/;
const octal = /^[0-7]+$/;

/**
 * The body of a Go double-quoted string literal (https://go.dev/ref/spec#String_literals), as
 * strconv.Unquote reads it: \xHH and \ooo are bytes, \uHHHH and \UHHHHHHHH code points, and
 * the result must be valid UTF-8 (Alertmanager checks that too).
 */
function unquoteGo(body: string, bad: Bad): string {
  const bytes: number[] = [];
  const utf8 = (s: string) => bytes.push(...new TextEncoder().encode(s));
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') throw bad('unescaped quote inside value (write \\")');
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      if (cp > 0xffff) i++; // the second half of a surrogate pair
      utf8(String.fromCodePoint(cp));
      continue;
    }
    const e = body[++i];
    if (e === undefined) throw bad('unterminated quoted value');
    const simple = simpleEscapes[e];
    if (simple !== undefined) {
      bytes.push(simple);
    } else if (e === 'x' || octal.test(e)) {
      // One byte: \x and two hex digits, or three octal digits.
      const digits = e === 'x' ? body.slice(i + 1, i + 3) : body.slice(i, i + 3);
      const n = digits.length === (e === 'x' ? 2 : 3) && (e === 'x' ? hex : octal).test(digits) ? parseInt(digits, e === 'x' ? 16 : 8) : 256;
      if (n > 255) throw bad(`bad escape \\${e === 'x' ? 'x' : ''}${digits}`);
      bytes.push(n);
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const count = e === 'u' ? 4 : 8;
      const digits = body.slice(i + 1, i + 1 + count);
      const n = digits.length === count && hex.test(digits) ? parseInt(digits, 16) : -1;
      if (n < 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) throw bad(`bad escape \\${e}${digits}: not a Unicode code point`);
      utf8(String.fromCodePoint(n));
      i += count;
    } else {
      throw bad(`unknown escape \\${e} (a quoted value is a Go string: write \\\\ for a backslash, as in "\\\\d+")`);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    throw bad('value is not valid UTF-8');
  }
}

/** Alertmanager's classic unescaping of a bare value (pkg/labels/parse.go): \n, \" and \\; other backslashes stay. */
function unescapeBare(raw: string, bad: Bad): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '"') throw bad('stray quote in value');
    const n = raw[i + 1];
    if (c !== '\\' || n === undefined) {
      out += c;
    } else {
      out += n === 'n' ? '\n' : n === '"' || n === '\\' ? n : `\\${n}`;
      i++;
    }
  }
  return out;
}
