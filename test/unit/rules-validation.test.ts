import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileRules, loadRules, RuleLoadError } from '../../src/rules/load.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { missingSecrets } from '../../src/rules/secrets.js';

const registry = buildRegistry();
const dir = join(import.meta.dirname, '../fixtures/rules-invalid');

// One fixture per bad case. `# expect: LINE:COL: message` lines (one or more) say what `rules check`
// must print after the file name; `# problems: N` that nothing else is reported.
for (const name of readdirSync(dir).filter((f) => f.endsWith('.yml')).sort()) {
  test(`invalid rules fixture ${name} is refused with file, line, column, rule and field`, () => {
    const text = readFileSync(join(dir, name), 'utf8');
    const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1]!);
    assert.ok(expected.length > 0, 'fixture has an expect line');
    const count = /^# problems: (\d+)$/m.exec(text)?.[1];
    const file = join(dir, name);
    assert.throws(
      () => compileRules([{ file, text }], registry),
      (err: unknown) => {
        assert.ok(err instanceof RuleLoadError);
        for (const e of expected) {
          const hit = err.problems.find((p) => p.startsWith(`${file}:${e}`));
          assert.ok(hit, `expected a problem starting with ${JSON.stringify(`${file}:${e}`)}, got:\n${err.problems.join('\n')}`);
        }
        if (count !== undefined) assert.equal(err.problems.length, Number(count), err.problems.join('\n'));
        return true;
      },
    );
  });
}

test('the shipped rules/ directory is valid', async () => {
  const table = await loadRules(join(import.meta.dirname, '../../rules'), registry);
  assert.ok(table.rules.length >= 2);
  const names = table.rules.map((r) => r.spec.name);
  assert.ok(names.includes('image-gen-breaker-open'));
  assert.ok(names.includes('voice-calls-down'));
});

test('every remediation ships an example rule file that loads', () => {
  for (const r of registry.values()) {
    const table = compileRules([{ file: `example:${r.name}`, text: r.exampleRules }], registry);
    assert.ok(table.rules.some((rule) => rule.spec.action === r.name), `example of ${r.name} has no rule using it`);
  }
});

test('problems from several files are all reported, each with its file', () => {
  assert.throws(
    () =>
      compileRules(
        [
          { file: 'a.yml', text: "rules:\n  - name: a\n    match: ['x=\"1\"']\n    action: nope\n" },
          { file: 'b.yml', text: "rules:\n  - name: b\n    match: ['x=\"1\"']\n    action: notify\n    attempts: 0\n" },
        ],
        registry,
      ),
    (err: unknown) => {
      assert.ok(err instanceof RuleLoadError);
      assert.equal(err.problems.length, 2);
      assert.match(err.problems[0]!, /^a\.yml:4:13: rule "a": action: unknown action "nope"/);
      assert.match(err.problems[1]!, /^b\.yml:5:15: rule "b": attempts: /);
      return true;
    },
  );
});

test('a templated param is checked when the alert fills it in, not at load', () => {
  const table = compileRules(
    [{ file: 'r.yml', text: "targets:\n  b:\n    kind: http-breaker\n    status: { url: 'http://127.0.0.1:1/s' }\n    reset: { url: 'http://127.0.0.1:1/r' }\nrules:\n  - name: t\n    match: ['a=\"1\"']\n    action: breaker-reset\n    target: b\n    params: { verify_timeout: '{{ labels.wait }}' }\n" }],
    registry,
  );
  assert.equal(table.rules.length, 1);
});

test('problems are sorted by file, line and column, whatever order the files come in', () => {
  assert.throws(
    () =>
      compileRules(
        [
          { file: 'b.yml', text: "rules:\n  - name: b\n    match: ['x=\"1\"']\n    action: nope\n" },
          { file: 'a.yml', text: "rules:\n  - name: a2\n    match: ['x=\"1\"']\n    action: notify\n    attempts: 0\n  - name: a1\n    match: []\n    action: notify\n" },
        ],
        registry,
      ),
    (err: unknown) => {
      assert.ok(err instanceof RuleLoadError);
      assert.deepEqual(
        err.problems.map((p) => p.split(': ')[0]),
        ['a.yml:5:15', 'a.yml:7:12', 'b.yml:4:13'],
      );
      return true;
    },
  );
});

test('every secret a target or rule names is listed with its place; unset ones are problems that say what fails', () => {
  const text = [
    'targets:',
    '  b:',
    '    kind: http-breaker',
    "    status: { url: 'http://127.0.0.1:1/s', token_env: B_TOKEN }",
    "    reset: { url: 'http://127.0.0.1:1/r', token_env: B_TOKEN }",
    'rules:',
    '  - name: r',
    "    match: ['a=\"1\"']",
    '    action: breaker-reset',
    '    target: b',
    '    notify:',
    '      pagerduty: { routing_key_env: OPS_PD_KEY }',
    '',
  ].join('\n');
  const table = compileRules([{ file: 's.yml', text }], registry);
  assert.deepEqual(
    table.secrets.map((s) => `${s.file}:${s.line}:${s.col} ${s.subject} ${s.path} ${s.variable}`),
    ['s.yml:4:55 target "b" status.token_env B_TOKEN', 's.yml:5:54 target "b" reset.token_env B_TOKEN', 's.yml:12:37 rule "r" notify.pagerduty.routing_key_env OPS_PD_KEY'],
  );
  assert.deepEqual(missingSecrets(table.secrets, { B_TOKEN: 'x', OPS_PD_KEY: 'y' }), []);
  const missing = missingSecrets(table.secrets, { B_TOKEN: '' });
  assert.equal(missing.length, 3);
  assert.match(missing[0]!.message, /^environment variable B_TOKEN is not set: runs that need it fail with reason missing_secret$/);
  assert.match(missing[2]!.message, /^environment variable OPS_PD_KEY is not set: PagerDuty events of this rule are not sent$/);
});

test("match: Alertmanager's legacy map form is exact matchers, values taken as written", () => {
  const table = compileRules([{
    file: 'm.yml',
    text: [
      'rules:',
      '  - name: m',
      '    match: { alertname: Disk, code: 500, note: \'say "hi" \\ é\' }',
      '    action: notify',
      '',
    ].join('\n'),
  }], registry);
  const rule = table.rules[0]!;
  assert.deepEqual(rule.spec.match, ['alertname="Disk"', 'code="500"', 'note="say \\"hi\\" \\\\ é"']);
  assert.deepEqual(rule.matchers.map((m) => [m.name, m.type, m.value]), [['alertname', '=', 'Disk'], ['code', '=', '500'], ['note', '=', 'say "hi" \\ é']]);
  assert.ok(rule.matchers.every((m) => m.matches({ alertname: 'Disk', code: '500', note: 'say "hi" \\ é' })));
  assert.ok(!rule.matchers.every((m) => m.matches({ alertname: 'Disk', code: '501', note: 'say "hi" \\ é' })));
});

test('backoff: a bare number or a bad map field says how to write it; an unknown key lists the allowed ones', () => {
  const problems = (backoff: string) => {
    try {
      compileRules([{ file: 'b.yml', text: `rules:\n  - name: b\n    match: ['alertname="X"']\n    action: notify\n    backoff: ${backoff}\n` }], registry);
      return [];
    } catch (err) {
      return (err as RuleLoadError).problems;
    }
  };
  assert.deepEqual(problems('{ type: fixed, delay: 5 }'), ['b.yml:5:36: rule "b": backoff.delay: bad duration 5: a number has no unit: write a duration such as 5s (or 10m, 1h30m)']);
  assert.deepEqual(problems('{ type: fixed, dealy: 5s }'), [
    'b.yml:5:14: rule "b": backoff.delay: is required: a duration such as 30s, 10m or 1h30m',
    'b.yml:5:29: rule "b": backoff.dealy: unknown key (did you mean "delay"?)',
  ]);
  assert.deepEqual(problems('[5s]'), ['b.yml:5:14: rule "b": backoff: must be a duration such as 30s, 10m or 1h30m, not a list']);
  assert.deepEqual(problems('{ type: fixed, delay: 5s }'), []);
});
