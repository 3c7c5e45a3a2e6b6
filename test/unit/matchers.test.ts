import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMatcher, MatcherError } from '../../src/rules/matchers.js';
import { parseDuration, formatDuration } from '../../src/core/duration.js';
import { renderDeep, renderString, checkTemplate, TemplateError } from '../../src/rules/template.js';

const m = (s: string, labels: Record<string, string>) => parseMatcher(s).matches(labels);

test('equality and inequality, quoted and bare values', () => {
  assert.equal(m('alertname="CircuitBreakerOpen"', { alertname: 'CircuitBreakerOpen' }), true);
  assert.equal(m('alertname = CircuitBreakerOpen', { alertname: 'CircuitBreakerOpen' }), true);
  assert.equal(m('alertname="CircuitBreakerOpen"', { alertname: 'CircuitBreakerOpenX' }), false);
  assert.equal(m('env!="dev"', { env: 'prod' }), true);
  assert.equal(m('env!="dev"', { env: 'dev' }), false);
});

test('a missing label matches as the empty string (Alertmanager semantics)', () => {
  assert.equal(m('env!="dev"', {}), true);
  assert.equal(m('env=""', {}), true);
  assert.equal(m('env="prod"', {}), false);
  assert.equal(m('service=~"image-gen|"', {}), true);
});

test('regexes are anchored at both ends', () => {
  assert.equal(m('severity=~"critical|page"', { severity: 'critical' }), true);
  assert.equal(m('severity=~"critical|page"', { severity: 'page' }), true);
  assert.equal(m('severity=~"critical|page"', { severity: 'noncritical' }), false);
  assert.equal(m('severity=~"crit"', { severity: 'critical' }), false);
  assert.equal(m('severity=~"crit.*"', { severity: 'critical' }), true);
  assert.equal(m('team!~"x|y"', { team: 'x' }), false);
  assert.equal(m('team!~"x|y"', { team: 'xy' }), true);
  assert.equal(m('team!~"x|y"', {}), true);
});

test('quoted values use Go escapes', () => {
  assert.equal(parseMatcher('msg="say \\"hi\\""').value, 'say "hi"');
  assert.equal(parseMatcher('path="a\\\\b"').value, 'a\\b');
  assert.equal(parseMatcher('v="a,b"').value, 'a,b');
  assert.equal(parseMatcher('v="=~"').value, '=~');
  assert.equal(parseMatcher('v=~"a\\\\.b"').matches({ v: 'a.b' }), true);
  assert.equal(parseMatcher('v=~"a\\\\.b"').matches({ v: 'axb' }), false);
});

test('bad matchers are refused with a reason', () => {
  for (const [input, why] of [
    ['alertname', /expected name="value"/],
    ['1abc="x"', /expected name="value"/],
    ['a="x', /unterminated/],
    ['a="x\\"', /unknown escape|unterminated/],
    ['a=x"y', /stray quote/],
    ['a="x"y"', /unescaped quote/],
    ['a=~"("', /invalid regex/],
    ['a="\\q"', /unknown escape/],
  ] as const) {
    assert.throws(() => parseMatcher(input), (e: unknown) => e instanceof MatcherError && why.test(e.message), input);
  }
});

test("regexes use Go's RE2 syntax, as Alertmanager: flags, Unicode classes, POSIX classes", () => {
  assert.equal(m('service=~"(?i)image-gen"', { service: 'Image-Gen' }), true);
  assert.equal(m('service=~"(?i:image)-gen"', { service: 'IMAGE-GEN' }), false);
  assert.equal(m('service=~"(?i:image)-gen"', { service: 'IMAGE-gen' }), true);
  assert.equal(m('city=~"\\\\pL+"', { city: 'Zürich' }), true);
  assert.equal(m('city=~"\\\\p{Greek}+"', { city: 'Αθήνα' }), true);
  assert.equal(m('city=~"\\\\p{Greek}+"', { city: 'Athens' }), false);
  assert.equal(m('code=~"[[:digit:]]{3}"', { code: '503' }), true);
  assert.equal(m('path=~"\\\\Q/api/v1.0\\\\E.*"', { path: '/api/v1.0/calls' }), true);
  assert.equal(m('path=~"\\\\Q/api/v1.0\\\\E.*"', { path: '/api/v1x0/calls' }), false);
  // Go accepts a group name used twice (RE2/J alone would not).
  assert.equal(m('code=~"(?P<c>5..)|(?P<c>4..)"', { code: '429' }), true);
});

test("`.` does not match a newline unless (?s), as in Go's regexp with no flags (Alertmanager sets none)", () => {
  const labels = { msg: 'disk full\nretrying' };
  assert.equal(m('msg=~".*"', labels), false);
  assert.equal(m('msg=~"disk.*"', labels), false);
  assert.equal(m('msg=~"(?s)disk.*"', labels), true);
  assert.equal(m('msg=~"disk[^x]*"', labels), true, 'a negated class does match a newline in Go');
  assert.equal(m('msg=~"disk full\\\\sretrying"', labels), true);
  // $ is the end of the text: no match before a trailing newline.
  assert.equal(m('msg=~"a"', { msg: 'a\n' }), false);
});

test('a value that closes the group behaves as in Alertmanager (anchors are only in the text around it)', () => {
  // "^(?:" + "a)|(b" + ")$" is "^(?:a)|(b)$": starts with a, or ends with b.
  assert.equal(m('x=~"a)|(b"', { x: 'a-anything' }), true);
  assert.equal(m('x=~"a)|(b"', { x: 'anything-b' }), true);
  assert.equal(m('x=~"a)|(b"', { x: 'b-anything' }), false);
});

test('matching takes linear time: pathological patterns against long values finish with the right answer', () => {
  const long = 'a'.repeat(5000);
  // With a backtracking engine each of these takes longer than the age of the universe.
  assert.equal(m('v=~"(a+)+"', { v: `${long}!` }), false);
  assert.equal(m('v=~"(a+)+"', { v: long }), true);
  assert.equal(m('v!~"(a+)+"', { v: `${long}!` }), true);
  assert.equal(m('v=~"(a+)+!"', { v: `${long}!` }), true);
  assert.equal(m('v=~"(a|aa)*b"', { v: long }), false);
  assert.equal(m('v=~"(.*a){20}"', { v: `${long}b` }), false);
  assert.equal(m('v=~"(\\\\w+\\\\s?)*"', { v: `${'word '.repeat(2000)}!` }), false);
  assert.equal(m('v=~"(x+x+)+y"', { v: 'x'.repeat(5000) }), false);
});

test('what RE2 leaves out is refused, naming the matcher and why', () => {
  for (const [input, why] of [
    ['v=~"(?<=a)b"', /bad matcher "v=~\\"\(\?<=a\)b\\"": invalid regex: invalid named capture: `\(\?<=a\)b`: lookbehind is not supported/],
    ['v=~"(?<!a)b"', /invalid regex: .*lookbehind is not supported/],
    ['v=~"a(?=x)"', /bad matcher "v=~\\"a\(\?=x\)\\"": invalid regex: invalid or unsupported Perl syntax: `\(\?=`: lookahead is not supported/],
    ['v=~"a(?!x)"', /invalid regex: invalid or unsupported Perl syntax: `\(\?!`: lookahead is not supported/],
    ['v=~"(a)\\\\1"', /invalid regex: invalid escape sequence: `\\1`: backreferences are not supported/],
    ['v=~"a++"', /invalid regex: invalid nested repetition operator: `\+\+`/],
    ['v=~"(?>a)"', /invalid regex: invalid or unsupported Perl syntax: `\(\?>`/],
    ['v=~"a\\\\Z"', /invalid regex: invalid escape sequence: `\\Z`/],
    ['v=~"a{1001}"', /invalid regex: invalid repeat count: `\{1001\}`/],
    ['v=~"(critical"', /invalid regex: missing closing \): `\(critical`/],
    ['v!~"x)"', /invalid regex: unexpected \): `x\)`/],
  ] as const) {
    assert.throws(() => parseMatcher(input), (e: unknown) => e instanceof MatcherError && why.test(e.message), input);
  }
});

test('quoted values are Go string literals, bare values follow the classic parser', () => {
  assert.equal(parseMatcher('v="a\\tb"').value, 'a\tb');
  assert.equal(parseMatcher('v="caf\\u00e9"').value, 'café');
  assert.equal(parseMatcher('v="caf\\xc3\\xa9"').value, 'café');
  assert.equal(parseMatcher('v="\\101\\U0001F642"').value, 'A🙂');
  assert.equal(parseMatcher('v="🙂\\n"').value, '🙂\n');
  assert.equal(parseMatcher('code=~5\\d\\d').value, '5\\d\\d');
  assert.equal(parseMatcher('code=~5\\d\\d').matches({ code: '503' }), true);
  assert.equal(parseMatcher('v=~a\\\\.b').value, 'a\\.b');
  assert.equal(parseMatcher('v=~a\\\\.b').matches({ v: 'a.b' }), true);
  assert.equal(parseMatcher('v=~a\\\\.b').matches({ v: 'axb' }), false);
  for (const [input, why] of [
    ['code=~"5\\d\\d"', /unknown escape \\d \(a quoted value is a Go string: write \\\\ for a backslash/],
    ["v=\"it\\'s\"", /unknown escape \\'/],
    ['v="\\xff"', /not valid UTF-8/],
    ['v="\\x4"', /bad escape \\x4/],
    ['v="\\400"', /bad escape \\400/],
    ['v="\\0"', /bad escape \\0/],
    ['v="\\ud800"', /not a Unicode code point/],
    ['v="\\U00110000"', /not a Unicode code point/],
    ['v="x"\u00a0', /unterminated quoted value/],
  ] as const) {
    assert.throws(() => parseMatcher(input), (e: unknown) => e instanceof MatcherError && why.test(e.message), input);
  }
});

test('durations', () => {
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('48h'), 172_800_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('10'), undefined);
  assert.equal(parseDuration('ten minutes'), undefined);
  assert.equal(parseDuration('-5m'), undefined);
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(250), '250ms');
});

test('templating fills labels and annotations, and nothing else', () => {
  const ctx = { labels: { namespace: 'stario', deployment: 'video-gen-worker' }, annotations: { summary: 'slow' } };
  assert.equal(renderString('{{ labels.namespace }}/{{labels.deployment}}', ctx), 'stario/video-gen-worker');
  assert.deepEqual(renderDeep({ a: ['{{ annotations.summary }}', 3], b: { c: 'x' } }, ctx), { a: ['slow', 3], b: { c: 'x' } });
  assert.throws(() => renderString('{{ labels.pod }}', ctx), (e: unknown) => e instanceof TemplateError && /alert has no label pod/.test(e.message));
  assert.equal(checkTemplate('{{ labels.a }}'), undefined);
  assert.match(checkTemplate('{{ env.HOME }}')!, /unsupported placeholder/);
  assert.match(checkTemplate('{{ labels.a | upper }}')!, /unsupported placeholder/);
  assert.match(checkTemplate('{{ labels.a }') ?? '', /unbalanced/);
  // A label value is inserted as text, never evaluated again.
  assert.equal(renderString('{{ labels.x }}', { labels: { x: '{{ labels.y }}' }, annotations: {} }), '{{ labels.y }}');
});
