import { RE2JS, RE2JSSyntaxException } from 're2js';

/**
 * Regular expressions exactly as Alertmanager runs them: Go's `regexp` package (RE2 syntax,
 * matching in time linear in the input), compiled as `^(?:` + pattern + `)$` with no flags
 * (pkg/labels/matcher.go NewMatcher) and tested with MatchString.
 *
 * re2js is a pure-JavaScript port of RE2/J, so no label value can make matching slow (the
 * backtracking JavaScript RegExp we used before spent seconds on `(a+)+` against 29 characters,
 * blocking webhooks and /healthz), and the syntax accepted is Go's: flags (?i) (?m) (?s) (?U),
 * \pL and \p{Greek}, [[:alpha:]], \Q...\E; no backreferences, no lookahead or lookbehind.
 * As in Go without flags, `.` does not match a newline unless the pattern sets (?s).
 * https://pkg.go.dev/regexp/syntax
 *
 * Checked against Go's own verdicts in test/fixtures/re2-go. One known gap: Go 1.25 also takes long
 * and case-folded Unicode class names (\p{Letter}, \p{greek}); re2js knows the usual short ones
 * (\p{L}, \p{Greek}), so such a pattern is refused at load, never matched differently.
 */

export class RegexError extends Error {}

/** Whether a whole value matches (the pattern is anchored at both ends). */
export type FullMatch = (value: string) => boolean;

export function compileAnchored(pattern: string): FullMatch {
  const anchored = `^(?:${pattern})$`;
  let compiled = tryCompile(anchored);
  // RE2/J refuses two groups with the same name; Go accepts them (a match needs no names), so
  // the names are dropped and the pattern compiled again.
  if (compiled instanceof RE2JSSyntaxException && compiled.getDescription() === 'duplicate capture group name') {
    compiled = tryCompile(withoutGroupNames(anchored));
  }
  if (compiled instanceof RE2JSSyntaxException) throw new RegexError(explain(pattern, compiled));
  const re = compiled;
  // test() is an unanchored search, like Go's MatchString: the anchors are in the pattern itself,
  // so a value that closes the group early (`a)|(b`) behaves exactly as it does in Alertmanager.
  return (value) => re.test(value);
}

function tryCompile(pattern: string): RE2JS | RE2JSSyntaxException {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    if (err instanceof RE2JSSyntaxException) return err;
    throw err;
  }
}

/** Go's wording of the error (Alertmanager's too), plus a hint for what RE2 leaves out on purpose. */
function explain(pattern: string, anchoredErr: RE2JSSyntaxException): string {
  // Quote the text as written rather than our ^(?: ... )$ around it, when it fails the same way alone.
  const own = tryCompile(pattern);
  const err = own instanceof RE2JSSyntaxException && own.getDescription() === anchoredErr.getDescription() ? own : anchoredErr;
  const at = err.getPattern();
  const what = at === null ? err.getDescription() : `${err.getDescription()}: \`${at}\``;
  return `${what}${hint(at ?? '')}`;
}

function hint(at: string): string {
  const why = " (RE2 syntax, as in Alertmanager, leaves it out so that matching takes linear time)";
  if (/^\(\?<[=!]/.test(at)) return `: lookbehind is not supported${why}`;
  if (/^\(\?[=!]/.test(at)) return `: lookahead is not supported${why}`;
  if (/^\\[1-9]$/.test(at)) return `: backreferences are not supported${why}`;
  return '';
}

/**
 * The pattern with `(?P<name>` and `(?<name>` turned into plain `(`, outside escapes, \Q...\E and
 * character classes (scanned as Go's parser does). Only used after RE2/J refused duplicate names.
 */
function withoutGroupNames(p: string): string {
  const named = /\(\?P?<[A-Za-z0-9_]+>/y;
  let out = '';
  let i = 0;
  while (i < p.length) {
    let next = i + 1;
    if (p.startsWith('\\Q', i)) {
      const end = p.indexOf('\\E', i + 2);
      next = end < 0 ? p.length : end + 2;
    } else if (p[i] === '\\') {
      next = i + 2;
    } else if (p[i] === '[') {
      next = classEnd(p, i);
    } else {
      named.lastIndex = i;
      if (named.test(p)) {
        out += '(';
        i = named.lastIndex;
        continue;
      }
    }
    out += p.slice(i, next);
    i = next;
  }
  return out;
}

/** Index after the character class opening at `start` (Go: a leading `]` is literal, `[:name:]` is one item). */
function classEnd(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === '^') i++;
  if (p[i] === ']') i++;
  while (i < p.length && p[i] !== ']') {
    if (p[i] === '\\') {
      i += 2;
    } else if (p.startsWith('[:', i) && p.indexOf(':]', i + 2) >= 0) {
      i = p.indexOf(':]', i + 2) + 2;
    } else {
      i++;
    }
  }
  return Math.min(i + 1, p.length);
}
