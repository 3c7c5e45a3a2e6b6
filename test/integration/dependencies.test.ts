import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { TcpProxy } from '../fakes/tcp-proxy.js';
import { DATABASE_URL } from '../helpers/pg.js';
import { freePort } from '../helpers/process.js';
import { eventually, REDIS_URL, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

const root = join(import.meta.dirname, '../..');

/** `remediator start` as a child process; resolves with its exit code and output. */
async function start(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const id = `${process.pid}_${Date.now().toString(36)}`;
  const base = { PORT: '0', HOST: '127.0.0.1', RULES_DIR: 'test/fixtures/rules-test', DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: `dep_${id}`, QUEUE_PREFIX: `dep-${id}`, WEBHOOK_TOKEN: 'x', LOG_LEVEL: 'warn' };
  try {
    const r = await promisify(execFile)(process.execPath, [join(root, 'bin/remediator.js'), 'start'], { cwd: root, env: { ...process.env, ...base, ...env }, timeout: 30_000 });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  } finally {
    // Redis is checked after the migration, so a start that fails on Redis leaves this schema behind.
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "dep_${id}" CASCADE`);
    await pool.end();
  }
}

describe('a dependency down at start stops the process with a message naming it, its variable and the fix', () => {
  test('PostgreSQL not reachable: exit 1', async () => {
    const port = await freePort();
    const r = await start({ DATABASE_URL: `postgres://postgres:hunter2@127.0.0.1:${port}/postgres` });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^remediator: cannot start: PostgreSQL at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/postgres \\(DATABASE_URL\\) is not reachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`, 'm'));
    assert.match(r.stderr, /^ {2}fix: start PostgreSQL, or set DATABASE_URL to where it runs \(README: Troubleshooting\)$/m);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  });

  test('PostgreSQL refuses the login: exit 1, says to fix the user in DATABASE_URL', async () => {
    const url = new URL(DATABASE_URL);
    url.username = 'no_such_role_remediator';
    const r = await start({ DATABASE_URL: url.toString() });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot start: PostgreSQL at .* \(DATABASE_URL\) refused the login: role "no_such_role_remediator" does not exist/);
    assert.match(r.stderr, /fix: fix the user or password in DATABASE_URL/);
  });

  test('Redis not reachable: exit 1, as for PostgreSQL', async () => {
    const port = await freePort();
    const r = await start({ REDIS_URL: `redis://127.0.0.1:${port}` });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^remediator: cannot start: Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\) is not reachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`, 'm'));
    assert.match(r.stderr, /^ {2}fix: start Redis, or set REDIS_URL to where it runs/m);
  });
});

describe('readiness of a receiver, in plain words', () => {
  let pgProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let svc: TestService;
  const readyz = async () => {
    const r = await fetch(`${svc.url}/readyz`);
    return { status: r.status, body: (await r.json()) as { status: string; checks: Record<string, { ok: boolean; required: boolean; error?: string }> } };
  };

  before(async () => {
    const pg = new URL(DATABASE_URL);
    const redis = new URL(REDIS_URL);
    pgProxy = await new TcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) }).start();
    redisProxy = await new TcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) }).start();
    const viaPg = new URL(DATABASE_URL);
    viaPg.host = `127.0.0.1:${pgProxy.port}`;
    svc = await startTestService({
      rules: { 'r.yml': "rules:\n  - name: n\n    match: ['alertname=\"N\"']\n    action: notify\n" },
      env: { REMEDIATOR_ROLE: 'receiver', DATABASE_URL: viaPg.toString(), REDIS_URL: `redis://127.0.0.1:${redisProxy.port}` },
    });
  });
  after(async () => {
    await pgProxy.restore().catch(() => {});
    await redisProxy.restore().catch(() => {});
    await svc.close();
    await pgProxy.cut();
    await redisProxy.cut();
  });

  test('PostgreSQL down: still ready and accepting webhooks; /readyz says PostgreSQL is not usable', async () => {
    assert.equal((await readyz()).status, 200);
    await pgProxy.cut();
    const r = await readyz();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.checks.postgres!.ok, false);
    assert.equal(r.body.checks.postgres!.required, false);
    assert.match(r.body.checks.postgres!.error!, /^PostgreSQL \(DATABASE_URL\) is not usable: .*webhooks are still accepted/);
    const hook = await postWebhook(svc.url, firingWebhook('N', 'fe00000000000001'));
    assert.equal(hook.status, 200, await hook.text());
    await pgProxy.restore();
    await eventually(async () => (await readyz()).body.checks.postgres!.ok, 'postgres back');
  });

  test('Redis down: not ready, and /readyz says Redis is down in words, not ioredis\' internals', async () => {
    await redisProxy.cut();
    const r = await eventually(async () => {
      const x = await readyz();
      return x.status === 503 && x;
    }, 'not ready');
    assert.equal(r.body.status, 'not ready');
    assert.equal(r.body.checks.redis!.ok, false);
    assert.match(r.body.checks.redis!.error!, /^Redis \(REDIS_URL\) is down: no connection \((connecting|reconnecting|close|end)\).*; webhooks are answered 503 until it is back$/);
    assert.doesNotMatch(JSON.stringify(r.body), /Stream isn't writeable|enableOfflineQueue/);
    await redisProxy.restore();
    await eventually(async () => (await readyz()).status === 200, 'ready again', 20_000);
  });
});
