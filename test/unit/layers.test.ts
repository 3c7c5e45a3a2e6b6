import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const depcruise = join(root, 'node_modules/.bin/depcruise');

/** Runs the project's dependency rules over a tiny tree; returns what depcruise printed. */
async function cruise(files: Record<string, string>): Promise<{ ok: boolean; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'layers-'));
  try {
    cpSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    cpSync(join(root, 'tsconfig.json'), join(dir, 'tsconfig.json'));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    try {
      const r = await run(depcruise, ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: dir });
      return { ok: true, out: r.stdout + r.stderr };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an import that runs back up a layer fails, naming the rule', async () => {
  const bad = await cruise({
    'src/main.ts': "import './run/journal.js';\n",
    'src/run/journal.ts': "import '../core/run.js';\nexport const j = 1;\n",
    'src/core/run.ts': "import '../run/journal.js';\nexport const r = 1;\n",
  });
  assert.equal(bad.ok, false);
  assert.match(bad.out, /core-points-down: src\/core\/run\.ts → src\/run\/journal\.ts/);
  assert.match(bad.out, /no-circular/);
});

test('imports that point down pass; a module nothing imports is dead code', async () => {
  const good = await cruise({
    'src/main.ts': "import './run/journal.js';\n",
    'src/run/journal.ts': "import '../core/run.js';\nexport const j = 1;\n",
    'src/core/run.ts': 'export const r = 1;\n',
  });
  assert.equal(good.ok, true, good.out);
  const orphan = await cruise({ 'src/main.ts': 'export {};\n', 'src/run/forgotten.ts': 'export const f = 1;\n' });
  assert.match(orphan.out, /no-orphans: src\/run\/forgotten\.ts/);
});
