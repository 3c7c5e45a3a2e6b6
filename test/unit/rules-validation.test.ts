import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileRules, loadRules, RuleLoadError } from '../../src/rules/load.js';
import { buildRegistry } from '../../src/remediations/registry.js';

const registry = buildRegistry();
const dir = join(import.meta.dirname, '../fixtures/rules-invalid');

// One fixture per bad case; its first line says which message `rules check` must print.
for (const name of readdirSync(dir).filter((f) => f.endsWith('.yml')).sort()) {
  test(`invalid rules fixture ${name} is refused with file, rule and field`, () => {
    const text = readFileSync(join(dir, name), 'utf8');
    const expected = /^# expect: (.*)$/m.exec(text)![1]!;
    const file = join(dir, name);
    assert.throws(
      () => compileRules([{ file, text }], registry),
      (err: unknown) => {
        assert.ok(err instanceof RuleLoadError);
        const hit = err.problems.find((p) => p.startsWith(`${file}: `) && p.includes(expected));
        assert.ok(hit, `expected a problem containing ${JSON.stringify(expected)}, got:\n${err.problems.join('\n')}`);
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
      assert.match(err.problems[0]!, /^a\.yml: rule a: action: unknown action "nope"/);
      assert.match(err.problems[1]!, /^b\.yml: rule b: attempts: /);
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
