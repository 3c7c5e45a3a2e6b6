import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { SafetyState } from '../../src/redis/safety-state.js';
import { DATABASE_URL } from '../helpers/pg.js';
import { freePort } from '../helpers/process.js';
import { dropPrefix, REDIS_URL } from '../helpers/service.js';

const root = join(import.meta.dirname, '../..');

/** `npm run demo`, exactly as the README says, with this test's own schema and queue prefix. */
async function demo(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  try {
    const r = await promisify(execFile)('npm', ['run', '--silent', 'demo'], { cwd: root, env: { ...process.env, LOG_LEVEL: '', ...env }, timeout: 60_000 });
    return { code: 0, ...r, ms: Date.now() - t0 };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, ms: Date.now() - t0 };
  }
}

test('npm run demo: one alert through a real remediator to a local stand-in, outcome and where to see it, exit 0', async () => {
  const id = `${process.pid}_${Date.now().toString(36)}`;
  const env = { DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: `demo_${id}`, QUEUE_PREFIX: `demo-${id}` };
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  try {
    const r = await demo(env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(r.ms < 60_000, `finished in ${r.ms} ms`);
    assert.match(r.stdout, /^1\. A stand-in service listens on http:\/\/127\.0\.0\.1:\d+ with its circuit breaker open$/m);
    assert.match(r.stdout, /^ {3}POST http:\/\/127\.0\.0\.1:\d+\/webhooks\/alertmanager -> 200 \{"status":"accepted","alerts":1\}$/m);
    assert.match(r.stdout, /^ {3}step {6}Reset sent: POST http:\/\/127\.0\.0\.1:\d+\/api\/admin\/reset-circuit-breaker$/m);
    assert.match(r.stdout, /^ {3}=> succeeded after 1 attempt, \d+ ms$/m);
    assert.match(r.stdout, /^ {3}The stand-in's breaker is now closed \(1 reset received\)\.$/m);
    assert.match(r.stdout, /^ {3}curl -s -H 'Authorization: Bearer [0-9a-f]{32}' http:\/\/127\.0\.0\.1:\d+\/api\/runs/m);
    assert.match(r.stdout, new RegExp(`FROM demo_${id}\\.runs ORDER BY queued_at DESC`));
    const runs = (await pool.query(`SELECT rule, state, attempts FROM "demo_${id}".runs`)).rows;
    assert.deepEqual(runs, [{ rule: 'demo-breaker-open', state: 'succeeded', attempts: 1 }]);

    // Again, in dry run and on the same schema: a new firing, not taken for the first one's duplicate.
    const dry = await demo({ ...env, DRY_RUN: 'true' });
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /^ {3}=> dry_run after 1 attempt/m);
    assert.match(dry.stdout, /The stand-in's breaker is now open \(0 resets received\)/);
    const states = (await pool.query(`SELECT state FROM "demo_${id}".runs ORDER BY queued_at`)).rows.map((x) => x.state);
    assert.deepEqual(states, ['succeeded', 'dry_run']);
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "demo_${id}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, `demo-${id}`);
  }
});

test('npm run demo succeeds however often it is run (6 in a row on one schema and prefix); its last line names a README section that exists', async () => {
  const id = `${process.pid}_${Date.now().toString(36)}`;
  const env = { DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: `demo_${id}`, QUEUE_PREFIX: `demo-${id}` };
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const headings = new Set([...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim()));
  try {
    for (let i = 1; i <= 6; i++) {
      const r = await demo(env);
      assert.equal(r.code, 0, `run ${i}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^ {3}=> succeeded after 1 attempt/m, `run ${i}`);
      const last = r.stdout.trimEnd().split('\n').at(-1)!;
      const section = /README\.md, "([^"]+)"/.exec(last)?.[1];
      assert.ok(section && headings.has(section), `run ${i}: the last line names a README section that exists: ${last}`);
      // The printed CLI command carries the demo's prefix and schema, so it sees the demo's state.
      assert.match(r.stdout, new RegExp(`^ {3}QUEUE_PREFIX=demo-${id} DATABASE_SCHEMA=demo_${id} npx remediator status`, 'm'));
    }
    const states = (await pool.query(`SELECT state FROM "demo_${id}".runs ORDER BY queued_at`)).rows.map((x) => x.state);
    assert.deepEqual(states, Array(6).fill('succeeded'));
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "demo_${id}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, `demo-${id}`);
  }
});

test('npm run demo after a quarantine of its rule (an earlier version of it left one): lifted first, said, exit 0', async () => {
  const id = `${process.pid}_${Date.now().toString(36)}`;
  const env = { DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: `demo_${id}`, QUEUE_PREFIX: `demo-${id}` };
  const redis = new Redis(REDIS_URL);
  try {
    await new SafetyState(redis, env.QUEUE_PREFIX).quarantine({ rule: 'demo-breaker-open', target: 'demo-breaker', at: new Date().toISOString(), runs: ['a', 'b', 'c'], reason: '3 ineffective fixes in a row' });
    const r = await demo(env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {3}\(lifted the quarantine an earlier demo left on demo-breaker-open@demo-breaker: /m);
    assert.equal(await new SafetyState(redis, env.QUEUE_PREFIX).quarantined('demo-breaker-open', 'demo-breaker'), undefined);
  } finally {
    redis.disconnect();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "demo_${id}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, `demo-${id}`);
  }
});

test('npm run demo without PostgreSQL: exit 1, names PostgreSQL, DATABASE_URL and the fix', async () => {
  const port = await freePort();
  const r = await demo({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`, REDIS_URL });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`^demo: cannot start remediator: PostgreSQL at postgres://postgres@127\\.0\\.0\\.1:${port}/postgres \\(DATABASE_URL\\) is not reachable`, 'm'));
  assert.match(r.stderr, /^ {2}fix: start PostgreSQL, or set DATABASE_URL to where it runs$/m);
});
