import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startRedis } from '../helpers/process.js';

const root = join(import.meta.dirname, '../..');
const run = promisify(execFile);

/** The Quick start's local-Redis commands, as a reader would paste them, on `port` and in `dir`. */
async function readmeRedis(port: number, dir: string): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => /redis-server --daemonize/.test(b));
  assert.ok(block, 'the README has the local Redis commands');
  return block.replace(/^ {3}/gm, '').replaceAll('6379', String(port)).replaceAll('/var/tmp/remediator-redis', dir);
}

async function sh(script: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('sh', ['-c', script], { timeout: 20_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

test("the README's local Redis commands fail visibly when the port is taken, and start Redis when it is free", async () => {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'remediator-readme-redis-')));
  const port = await freePort();
  // Another Redis already on the port: the commands must fail and say why.
  const other = await startRedis(port);
  try {
    const taken = await sh(await readmeRedis(port, dir));
    assert.notEqual(taken.code, 0, taken.out);
    assert.match(taken.out, /Address already in use/);
  } finally {
    await other.stop();
  }
  // A free port: exit 0, and that Redis runs with AOF in the directory given.
  try {
    const free = await sh(await readmeRedis(port, dir));
    assert.equal(free.code, 0, free.out);
    const { stdout } = await run('redis-cli', ['-p', String(port), 'config', 'get', 'appendonly']);
    assert.equal(stdout, 'appendonly\nyes\n');
  } finally {
    await sh(`redis-cli -p ${port} shutdown nosave`);
    await rm(dir, { recursive: true, force: true });
  }
});
