/**
 * Alertmanager label matchers, with the semantics of Alertmanager's own parser
 * (pkg/labels/parse.go ParseMatcher and matcher.go): `name="value"`, `name=~"re"`,
 * `name!="value"`, `name!~"re"`; the value may be quoted (Go string escapes) or bare;
 * regexes are anchored (`^(?:re)$`); a missing label matches as the empty string.
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

const matcherRe = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*([\s\S]*?)\s*$/;

export class MatcherError extends Error {}

export function parseMatcher(input: string): Matcher {
  const m = matcherRe.exec(input);
  if (!m) throw new MatcherError(`bad matcher ${JSON.stringify(input)}: expected name="value" with =, !=, =~ or !~`);
  const name = m[1]!;
  const type = m[2] as MatchType;
  const raw = m[3]!;
  let value: string;
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) {
      throw new MatcherError(`bad matcher ${JSON.stringify(input)}: unterminated quoted value`);
    }
    value = unquote(raw.slice(1, -1), input);
  } else {
    if (raw.includes('"')) throw new MatcherError(`bad matcher ${JSON.stringify(input)}: stray quote in value`);
    value = raw;
  }
  let test: (v: string) => boolean;
  if (type === '=~' || type === '!~') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${value})$`, 's');
    } catch (err) {
      throw new MatcherError(`bad matcher ${JSON.stringify(input)}: invalid regex: ${(err as Error).message}`);
    }
    test = type === '=~' ? (v) => re.test(v) : (v) => !re.test(v);
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

/** Go-style unquoting of the escapes Alertmanager users write: \" \\ \n \t. */
function unquote(body: string, input: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') throw new MatcherError(`bad matcher ${JSON.stringify(input)}: unescaped quote inside value`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    switch (n) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      default:
        throw new MatcherError(`bad matcher ${JSON.stringify(input)}: unknown escape \\${n ?? ''}`);
    }
  }
  return out;
}
