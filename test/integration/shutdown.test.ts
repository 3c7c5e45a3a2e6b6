import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DATABASE_URL } from '../helpers/pg.js';
import { freePort, startChild, startRedis, startRemediator } from '../helpers/process.js';
import { dropPrefix, eventually, REDIS_URL } from '../helpers/service.js';

/** The schema and queue prefix of one process under test, removed afterwards. */
function names() {
  const id = randomBytes(4).toString('hex');
  const schema = `sd_${id}`;
  const prefix = `sd-${id}`;
  return {
    env: { PORT: '0', HOST: '127.0.0.1', DATABASE_URL, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix, RULES_DIR: 'rules', WEBHOOK_TOKEN: 'x' },
    async drop(redisUrl = REDIS_URL) {
      const pool = new pg.Pool({ connectionString: DATABASE_URL });
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
      await dropPrefix(redisUrl, prefix).catch(() => undefined);
    },
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('SIGTERM to the `npm start` process reaches node: it drains, closes and exits 0', async () => {
  const n = names();
  // Builds dist/ first when stale (prestart), so allow for one tsc run.
  const npm = await startChild('npm', ['start', '--silent'], {
    env: { ...n.env, REDIS_URL, SHUTDOWN_GRACE: '2000', LOG_LEVEL: 'info' },
    ready: /"msg":"remediator started"/,
    timeoutMs: 90_000,
  });
  try {
    // npm runs the script through sh; with `exec` the shell's process is node itself.
    const kids = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(npm.proc.pid)], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(kids.length, 1, kids.join('\n'));
    assert.match(kids[0]!, /node dist\/main\.js/);
    const nodePid = Number(kids[0]!.trim().split(/\s+/)[0]);
    const code = await npm.stop('SIGTERM');
    assert.equal(code, 0, npm.output());
    await eventually(async () => !alive(nodePid), `node ${nodePid} to be gone`, 5000);
    const steps = [...npm.output().matchAll(/"msg":"([^"]+)"/g)].map((m) => m[1]);
    const from = steps.indexOf('shutting down');
    assert.deepEqual(steps.slice(from), ['shutting down', 'stopped accepting webhooks', 'workers drained', 'shut down'], npm.output());
  } finally {
    await npm.stop('SIGKILL');
    await n.drop();
  }
});

test('with Redis gone, shutdown ends at its deadline (SHUTDOWN_GRACE + margin); a second signal ends it at once', async () => {
  const port = await freePort();
  const redisUrl = `redis://127.0.0.1:${port}`;
  const redis = await startRedis(port);
  const n = names();
  const grace = 1000;
  const slow = await startRemediator({ ...n.env, REDIS_URL: redisUrl, SHUTDOWN_GRACE: String(grace) });
  const patient = await startRemediator({ ...n.env, REDIS_URL: redisUrl, SHUTDOWN_GRACE: '600000' });
  try {
    await redis.stop('SIGKILL');
    // The first: nothing answers, so close() never returns; the deadline ends the process.
    const t0 = Date.now();
    const exited = once(slow.proc, 'exit');
    slow.proc.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    const took = Date.now() - t0;
    assert.equal(code, 1, slow.output());
    assert.ok(took >= grace + 5000 - 200 && took < grace + 5000 + 4000, `exited after ${took} ms`);
    assert.match(slow.output(), /"msg":"shutdown deadline reached: exiting now".*"deadlineMs":6000/);

    // The second: a deadline of ten minutes, cut short by a second SIGTERM.
    patient.proc.kill('SIGTERM');
    await eventually(async () => /"msg":"shutting down"/.test(patient.output()), 'shutting down');
    const t1 = Date.now();
    const code2 = await patient.stop('SIGTERM');
    assert.equal(code2, 1, patient.output());
    assert.ok(Date.now() - t1 < 3000, `second signal took ${Date.now() - t1} ms`);
    assert.match(patient.output(), /"msg":"second signal during shutdown: exiting now"/);
  } finally {
    await slow.stop('SIGKILL');
    await patient.stop('SIGKILL');
    await redis.stop('SIGKILL');
    await n.drop(redisUrl);
  }
});
