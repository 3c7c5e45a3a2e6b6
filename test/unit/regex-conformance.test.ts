import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileAnchored, RegexError } from '../../src/rules/regex.js';

// What Go's regexp says (test/fixtures/re2-go/gen.go, run with a Go toolchain) about each pattern
// compiled as Alertmanager compiles it, "^(?:" + pattern + ")$": valid or not, and which inputs match.
interface Expected {
  go: string;
  inputs: string[];
  results: { pattern: string; valid: boolean; matches?: string }[];
}
const expected = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/re2-go/expected.json'), 'utf8')) as Expected;

test(`matcher regexes accept, refuse and match as Go's regexp does (${expected.results.length} patterns, ${expected.go})`, () => {
  const differences: string[] = [];
  for (const { pattern, valid, matches } of expected.results) {
    let full: ((v: string) => boolean) | undefined;
    try {
      full = compileAnchored(pattern);
    } catch (err) {
      if (!(err instanceof RegexError)) throw err;
      if (valid) differences.push(`${JSON.stringify(pattern)}: Go accepts it, we refuse it: ${err.message}`);
      continue;
    }
    if (!valid) {
      differences.push(`${JSON.stringify(pattern)}: Go refuses it, we accept it`);
      continue;
    }
    expected.inputs.forEach((input, i) => {
      const want = matches![i] === '1';
      if (full(input) !== want) differences.push(`${JSON.stringify(pattern)} on ${JSON.stringify(input)}: Go says ${want}`);
    });
  }
  assert.deepEqual(differences, []);
  assert.ok(expected.results.filter((r) => r.valid).length > 100, 'the fixture covers accepted patterns');
  assert.ok(expected.results.filter((r) => !r.valid).length > 40, 'the fixture covers refused patterns');
});

test('named groups as Go 1.22 and later accept them: (?<name>re) as well as (?P<name>re)', () => {
  // The fixture was made with an older Go, which refused (?<name>re); Alertmanager is built with a newer one.
  assert.equal(compileAnchored('(?<code>5..)')('503'), true);
  assert.equal(compileAnchored('(?<code>5..)|(?<code>4..)')('404'), true);
});
