import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMatcher, MatcherError } from '../../src/rules/matchers.js';
import { parseDuration, formatDuration } from '../../src/rules/duration.js';
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
