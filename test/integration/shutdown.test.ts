import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { FakeBreaker } from '../fakes/breaker.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';
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

    // The second: a deadline of ten minutes, cut short by a second SIGTERM, sent deliberately
    // later (a copy within SIGNAL_REPEAT_WINDOW_MS is the same stop request, see below).
    patient.proc.kill('SIGTERM');
    await eventually(async () => /"msg":"shutting down"/.test(patient.output()), 'shutting down');
    await sleep(1500);
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

/**
 * `npm start` in its own process group, signalled as a group (systemd's default KillMode, a
 * terminal's Ctrl-C, `timeout`): node gets the signal directly and, 1-15 ms later, again from npm.
 * One stop request must drain: the running remediation completes and the process exits 0. A
 * signal sent seconds later still forces (exit 1).
 */
async function npmStartGroup(breaker: FakeBreaker, params: string, grace: string) {
  const n = names();
  const dir = await mkdtemp(join(tmpdir(), 'remediator-sig-'));
  await writeFile(join(dir, 'r.yml'), `targets:${breaker.targetYaml('svc')}
rules:
  - name: slow-reset
    match: ['alertname="Slow"']
    action: breaker-reset
    target: svc
    params: ${params}
    attempts: 1
`);
  const env = { ...process.env, ...n.env, RULES_DIR: dir, REDIS_URL, WEBHOOK_TOKEN: 'test-webhook-token', BREAKER_TOKEN: breaker.token, SHUTDOWN_GRACE: grace, LOG_LEVEL: 'info' };
  const proc = spawn('npm', ['start', '--silent'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(proc, 'exit') as Promise<[number | null, string | null]>;
  const url = await eventually(async () => /"msg":"remediator started".*?"listening":"(http:[^"]+)"/.exec(out)?.[1], `npm start to be ready:\n${out}`, 90_000, 100);
  const group = (signal: NodeJS.Signals) => process.kill(-proc.pid!, signal);
  return {
    url, exited, group, output: () => out, schema: n.env.DATABASE_SCHEMA,
    async cleanup() {
      try {
        group('SIGKILL');
      } catch {
        /* gone */
      }
      await rm(dir, { recursive: true, force: true });
      await n.drop();
    },
  };
}

const runState = async (schema: string) => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  try {
    return (await pool.query(`SELECT state, attempts FROM "${schema}".runs`)).rows[0] as { state: string; attempts: number } | undefined;
  } finally {
    await pool.end();
  }
};

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} to the npm start process group is one stop request: the running remediation completes, exit 0`, async () => {
    const breaker = await new FakeBreaker().start();
    breaker.closeAfterPolls = 8; // about 2.4 s of polling after the reset
    const svc = await npmStartGroup(breaker, '{ poll_interval: 300ms, verify_timeout: 30s }', '20000');
    try {
      assert.equal((await postWebhook(svc.url, firingWebhook('Slow', 'c0ffee0000000001'))).status, 200);
      await eventually(async () => breaker.resets === 1, 'the reset sent (the run is polling now)', 20_000);
      svc.group(signal);
      const [code] = await svc.exited;
      assert.equal(code, 0, svc.output());
      assert.doesNotMatch(svc.output(), /second signal during shutdown/);
      assert.match(svc.output(), /"msg":"shut down"/);
      assert.deepEqual(await runState(svc.schema), { state: 'succeeded', attempts: 1 }, svc.output());
      assert.equal(breaker.state, 'closed');
    } finally {
      await svc.cleanup();
      await breaker.stop();
    }
  });
}

test('a second signal to the npm start process group seconds later still forces the exit (1)', async () => {
  const breaker = await new FakeBreaker().start();
  breaker.stuck = true; // the run polls for its whole verify_timeout
  const svc = await npmStartGroup(breaker, '{ poll_interval: 200ms, verify_timeout: 60s }', '30000');
  try {
    assert.equal((await postWebhook(svc.url, firingWebhook('Slow', 'c0ffee0000000002'))).status, 200);
    await eventually(async () => breaker.resets === 1, 'the reset sent', 20_000);
    svc.group('SIGTERM');
    await eventually(async () => /"msg":"shutting down"/.test(svc.output()), 'shutting down');
    await sleep(2000); // a deliberate second request, not npm's copy of the first
    const t0 = Date.now();
    svc.group('SIGTERM');
    const [code] = await svc.exited;
    assert.equal(code, 1, svc.output());
    assert.ok(Date.now() - t0 < 3000, `forced exit took ${Date.now() - t0} ms`);
    assert.match(svc.output(), /"msg":"second signal during shutdown: exiting now"/);
    assert.equal((await runState(svc.schema))?.state, 'running', 'handed back: its lock expires and it runs again elsewhere');
  } finally {
    await svc.cleanup();
    await breaker.stop();
  }
});
