import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

/**
 * `npm start` in a copy of the checkout without dist/: the first start compiles src/ (tens of
 * seconds on a slow machine), and must say so as it begins, then how long it took.
 */
test('the first npm start says "building dist/ (first start)" before compiling, then how long it took', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'remediator-first-start-'));
  try {
    for (const f of ['src', 'bin', 'rules', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) await cp(join(root, f), join(dir, f), { recursive: true });
    await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
    const stamp = join(dir, 'dist', '.build-stamp');

    // PORT=x: once built, the service refuses its configuration at once (exit 2) instead of running.
    const child = spawn('npm', ['start'], { cwd: dir, env: { ...process.env, PORT: 'x' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let builtWhenSaid: boolean | undefined;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // The moment the line arrives, the build has not finished: it was said first, not after.
      if (builtWhenSaid === undefined && /building dist\//.test(stderr)) builtWhenSaid = existsSync(stamp);
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^remediator: building dist\/ \(first start\): compiling src\/ with tsc, this can take a minute\.\.\.$/m);
    assert.equal(builtWhenSaid, false, 'said before the build, not after it');
    assert.match(stderr, /^remediator: built dist\/ in \d+\.\d s$/m);
    assert.ok(stderr.indexOf('building dist/') < stderr.indexOf('built dist/ in'));
    assert.match(stderr, /PORT: /, 'then the service itself started (and refused PORT=x)');

    // Current: nothing to say, nothing done.
    const current = spawn(process.execPath, ['bin/build.js', '--if-stale'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let quiet = '';
    current.stderr.on('data', (d: Buffer) => (quiet += d.toString()));
    assert.deepEqual(await once(current, 'exit'), [0, null]);
    assert.equal(quiet, '');

    // After a source changed it says why it builds again (stopped there: the build itself is shown above).
    const past = new Date(Date.now() - 3_600_000);
    await utimes(stamp, past, past);
    const again = spawn(process.execPath, ['bin/build.js', '--if-stale'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let said = '';
    await new Promise<void>((resolve) => again.stderr.on('data', (d: Buffer) => ((said += d.toString()), said.includes('\n') && resolve())));
    process.kill(-again.pid!, 'SIGKILL'); // the group: node and its tsc
    await once(again, 'exit');
    assert.match(said, /^remediator: building dist\/ \(src\/ changed since the last build\): /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
