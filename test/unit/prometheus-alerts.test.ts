import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createMetrics } from '../../src/metrics.js';
import { registerSharedGauges } from '../../src/receivers/metrics.js';

const run = promisify(execFile);
const dir = join(import.meta.dirname, '../../deploy/prometheus');

function promtool(): string | undefined {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return 'promtool';
  } catch {
    return undefined;
  }
}

test('every remediator_* series the shipped alerts use is one remediator exposes', async () => {
  const text = await readFile(join(dir, 'remediator-alerts.yml'), 'utf8');
  const m = createMetrics();
  registerSharedGauges(m);
  const names = new Set<string>();
  for (const { name, type } of await m.registry.getMetricsAsJSON()) {
    names.add(name);
    if (String(type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  const used = new Set(text.match(/\bremediator_\w+/g));
  assert.ok(used.size >= 8, [...used].join(', '));
  for (const name of used) assert.ok(names.has(name), `${name} is used by an alert but not exposed`);
});

const tool = promtool();
test('promtool check rules and test rules pass on deploy/prometheus', { skip: tool ? false : 'promtool not installed (Debian: apt-get install prometheus): alert rules not checked' }, async () => {
  const check = await run(tool!, ['check', 'rules', 'remediator-alerts.yml'], { cwd: dir });
  assert.match(check.stdout, /SUCCESS: 7 rules found/);
  const unit = await run(tool!, ['test', 'rules', 'remediator-alerts.test.yml'], { cwd: dir });
  assert.match(unit.stdout, /SUCCESS/);
});
