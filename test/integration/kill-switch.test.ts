import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { runCli } from '../../src/cli.js';
import { liveWorkers } from '../../src/redis/heartbeat.js';
import { SafetyState } from '../../src/redis/safety-state.js';
import { freePort } from '../helpers/process.js';
import { dropPrefix, eventually, REDIS_URL, startTestService, type TestService } from '../helpers/service.js';

/**
 * The kill switch cannot silently miss: pause, resume and status say which Redis and prefix they
 * wrote to and how many live workers (heartbeats, src/redis/heartbeat.ts) read there; none: exit 3
 * and a WARNING. A scope naming no known rule, target or action is refused unless forced.
 */

const rules = {
  'r.yml': `
rules:
  - name: tell-ops
    match: ['alertname="Tell"']
    action: notify
`,
};

let svc: TestService;
let redis: Redis;
before(async () => {
  svc = await startTestService({ rules });
  redis = new Redis(REDIS_URL);
});
after(async () => {
  redis.disconnect();
  await svc?.close();
});

function cli(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const base = {
    REDIS_URL: svc.config.REDIS_URL, QUEUE_PREFIX: svc.config.QUEUE_PREFIX, DATABASE_URL: svc.config.DATABASE_URL,
    DATABASE_SCHEMA: svc.config.DATABASE_SCHEMA, RULES_DIR: svc.rulesDir,
  };
  return runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l), env: { ...base, ...env } }).then((code) => ({ code, out: out.join('\n'), err: err.join('\n') }));
}
const pauses = async (prefix = svc.config.QUEUE_PREFIX) => (await new SafetyState(redis, prefix).pauses(new Date())).map((p) => p.scope);

describe('remediator pause | resume | status', () => {
  test('the running service registers itself: pause says where it wrote and that 1 live worker reads there (exit 0)', async () => {
    const workers = await eventually(async () => { const w = await liveWorkers(redis, svc.config.QUEUE_PREFIX); return w.length > 0 && w; }, 'the first heartbeat');
    assert.equal(workers.length, 1);
    assert.equal(workers[0]!.pid, process.pid);
    assert.equal(workers[0]!.prefix, svc.config.QUEUE_PREFIX);
    assert.deepEqual(workers[0]!.scopes.rules, ['tell-ops']);
    assert.match(workers[0]!.rulesHash, /^[0-9a-f]{12}$/);

    const r = await cli(['pause', 'rule:tell-ops', '--reason', 'maintenance', '--by', 'alice']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^paused rule:tell-ops \(by cli:alice\): maintenance$/m);
    assert.match(r.out, new RegExp(`^written to redis://127\\.0\\.0\\.1:6379/0 \\(REDIS_URL\\), prefix ${svc.config.QUEUE_PREFIX} \\(QUEUE_PREFIX\\)$`, 'm'));
    assert.match(r.out, /^live workers there: 1$/m);
    assert.match(r.out, new RegExp(`^  \\S+:${process.pid}:[0-9a-f]+ role all, version \\S+, rules ${workers[0]!.rulesHash} \\(1\\), seen \\d+s ago$`, 'm'));
    assert.doesNotMatch(r.err, /WARNING/);

    const st = await cli(['status']);
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /rule:tell-ops by cli:alice/);
    assert.match(st.out, /^live workers there: 1$/m);
    const json = await cli(['status', '--json']);
    assert.equal(json.code, 0);
    assert.equal(JSON.parse(json.out).reach.live, 1);

    const rs = await cli(['resume', 'rule:tell-ops']);
    assert.equal(rs.code, 0, rs.err);
    assert.match(rs.out, /^live workers there: 1$/m);
    assert.deepEqual(await pauses(), []);
  });

  test('a wrong QUEUE_PREFIX or Redis reaches no live worker: WARNING and exit 3, naming where it wrote', async () => {
    const prefix = `${svc.config.QUEUE_PREFIX}-typo`;
    try {
      const r = await cli(['pause', 'all', '--reason', 'stop everything'], { QUEUE_PREFIX: prefix });
      assert.equal(r.code, 3, r.out + r.err);
      assert.match(r.out, /^paused all/m);
      assert.match(r.out, new RegExp(`prefix ${prefix} \\(QUEUE_PREFIX\\)`));
      assert.match(r.out, /^live workers there: 0$/m);
      assert.match(r.err, new RegExp(`^WARNING: no live worker reads redis://127\\.0\\.0\\.1:6379/0 with prefix ${prefix}: the running service does not see this`, 'm'));
      assert.deepEqual(await pauses(), [], 'the service itself is not paused');
      const st = await cli(['status'], { QUEUE_PREFIX: prefix });
      assert.equal(st.code, 3);
      const rs = await cli(['resume', 'all'], { QUEUE_PREFIX: prefix });
      assert.equal(rs.code, 3);
    } finally {
      await dropPrefix(REDIS_URL, prefix);
    }
    // Another Redis database (a laptop's REDIS_URL): the same.
    const other = 'redis://127.0.0.1:6379/7';
    try {
      const r = await cli(['pause', 'all', '--reason', 'x'], { REDIS_URL: other });
      assert.equal(r.code, 3);
      assert.match(r.out, /^written to redis:\/\/127\.0\.0\.1:6379\/7 \(REDIS_URL\)/m);
    } finally {
      await dropPrefix(other, svc.config.QUEUE_PREFIX);
    }
  });

  test('a scope naming no known rule, target or action is refused (exit 2, nothing written) unless --force', async () => {
    const typo = await cli(['pause', 'rule:tell-opps', '--reason', 'x']);
    assert.equal(typo.code, 2);
    assert.match(typo.err, /^scope: no rule is named "tell-opps" \(did you mean rule:tell-ops\?\); nothing paused \(--force pauses it anyway\)$/m);
    const target = await cli(['pause', 'target:nowhere', '--reason', 'x']);
    assert.equal(target.code, 2);
    assert.match(target.err, /no target is named "nowhere"/);
    const action = await cli(['pause', 'action:worker-restrat', '--reason', 'x']);
    assert.equal(action.code, 2);
    assert.match(action.err, /no action is named "worker-restrat" \(did you mean action:worker-restart\?\)/);
    assert.deepEqual(await pauses(), []);
    // An action no rule uses yet can be paused ahead (every worker has every action).
    const ahead = await cli(['pause', 'action:worker-restart', '--reason', 'cluster upgrade']);
    assert.equal(ahead.code, 0, ahead.err);
    assert.match(ahead.out, /^live workers there: 1$/m);
    assert.equal((await cli(['resume', 'action:worker-restart'])).code, 0);

    // Without RULES_DIR here (a laptop), the live workers' rules are the reference.
    const laptop = await cli(['pause', 'rule:tell-ops', '--reason', 'x'], { RULES_DIR: '/nonexistent' });
    assert.equal(laptop.code, 0, laptop.err);
    assert.match(laptop.err, /note: rules in RULES_DIR \/nonexistent not loaded/);
    assert.equal((await cli(['resume', 'rule:tell-ops'])).code, 0);

    const forced = await cli(['pause', 'rule:tell-opps', '--reason', 'x', '--force']);
    assert.equal(forced.code, 3, 'written, but no live worker runs such a rule');
    assert.match(forced.err, /WARNING: none of the 1 live workers has rule:tell-opps in its rules/);
    assert.deepEqual(await pauses(), ['rule:tell-opps']);
    assert.equal((await cli(['resume', 'rule:tell-opps'])).code, 0);
  });

  test('Redis or PostgreSQL down: the dependency, its variable and a fix line, exit 1, no ioredis stack', async () => {
    const port = await freePort();
    const bin = join(import.meta.dirname, '../../bin/remediator.js');
    const run = (args: string[], env: Record<string, string>) =>
      promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    for (const args of [['status'], ['pause', 'all', '--reason', 'x'], ['resume', 'all']]) {
      const r = await run(args, { REDIS_URL: `redis://127.0.0.1:${port}` });
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\) is not reachable: connect ECONNREFUSED`, 'm'));
      assert.match(r.stderr, /^ {2}fix: start Redis, or set REDIS_URL to where it runs$/m);
      assert.doesNotMatch(r.stderr, /ioredis|Unhandled error event|\n\s+at /, r.stderr);
    }
    const pgDown = await run(['status'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`, QUEUE_PREFIX: svc.config.QUEUE_PREFIX });
    assert.equal(pgDown.code, 1);
    assert.match(pgDown.stderr, /^error: PostgreSQL at .* \(DATABASE_URL\) is not reachable/m);
    assert.match(pgDown.stderr, /^ {2}fix: start PostgreSQL/m);
    const state = await run(['rules', 'test', '--alert', 'alertname="Tell"', '--state', '--dir', svc.rulesDir], { REDIS_URL: `redis://127.0.0.1:${port}` });
    assert.equal(state.code, 1);
    assert.match(state.stderr, /^ {2}fix: start Redis/m);
    assert.doesNotMatch(state.stderr, /ioredis|Unhandled error event/);
  });
});

describe('POST /api/pause', () => {
  const admin = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
  const post = (url: string, path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: admin, body: JSON.stringify(body) });

  test('answers where it wrote and the live workers; refuses an unknown scope with 400 unless forced', async () => {
    const typo = await post(svc.url, '/api/pause', { scope: 'rule:tell-opps', reason: 'x', by: 'alice' });
    assert.equal(typo.status, 400);
    assert.match(((await typo.json()) as { error: string }).error, /^scope: no rule is named "tell-opps" \(did you mean rule:tell-ops\?\); nothing paused \(send "force": true/);
    assert.deepEqual(await pauses(), []);

    const ok = await post(svc.url, '/api/pause', { scope: 'rule:tell-ops', reason: 'x', by: 'alice' });
    assert.equal(ok.status, 201);
    const body = (await ok.json()) as { reach: { redis: string; prefix: string; live: number; applies: number; warning?: string } };
    assert.equal(body.reach.redis, 'redis://127.0.0.1:6379/0');
    assert.equal(body.reach.prefix, svc.config.QUEUE_PREFIX);
    assert.equal(body.reach.live, 1);
    assert.equal(body.reach.applies, 1);
    assert.equal(body.reach.warning, undefined);
    const safety = (await (await fetch(`${svc.url}/api/safety`, { headers: admin })).json()) as { reach: { live: number } };
    assert.equal(safety.reach.live, 1);
    assert.equal((await post(svc.url, '/api/resume', { scope: 'rule:tell-ops', by: 'alice' })).status, 200);

    const forced = await post(svc.url, '/api/pause', { scope: 'rule:tell-opps', reason: 'x', by: 'alice', force: true });
    assert.equal(forced.status, 201);
    assert.match(((await forced.json()) as { reach: { warning: string } }).reach.warning, /none of the 1 live workers has rule:tell-opps/);
    assert.equal((await post(svc.url, '/api/resume', { scope: 'rule:tell-opps', by: 'alice' })).status, 200);
  });

  test('a receiver with no live worker on its prefix says so in the answer', async () => {
    const receiver = await startTestService({ rules, env: { REMEDIATOR_ROLE: 'receiver' } });
    try {
      const r = await post(receiver.url, '/api/pause', { scope: 'all', reason: 'x', by: 'alice' });
      assert.equal(r.status, 201);
      const body = (await r.json()) as { reach: { live: number; warning: string } };
      assert.equal(body.reach.live, 0);
      assert.match(body.reach.warning, /^no live worker reads redis:\/\/127\.0\.0\.1:6379\/0 with prefix it-/);
    } finally {
      await receiver.close();
    }
  });
});

test('a stopped worker leaves the live list at once', async () => {
  const other = await startTestService({ rules });
  const prefix = other.config.QUEUE_PREFIX;
  await eventually(async () => (await liveWorkers(redis, prefix)).length === 1, 'the first heartbeat');
  await other.close();
  assert.equal((await liveWorkers(redis, prefix)).length, 0);
});

test('status names the shards no live worker consumes (SHARDS=4, the only worker takes 0-1)', async () => {
  const part = await startTestService({ rules, env: { SHARDS: '4', SHARDS_CONSUMED: '0-1' } });
  try {
    const prefix = part.config.QUEUE_PREFIX;
    const [w] = await eventually(async () => { const ws = await liveWorkers(redis, prefix); return ws.length === 1 && ws; }, 'the first heartbeat');
    assert.deepEqual(w!.shards, { total: 4, consumed: [0, 1] });
    const st = await cli(['status'], { QUEUE_PREFIX: prefix, DATABASE_SCHEMA: part.config.DATABASE_SCHEMA, RULES_DIR: part.rulesDir });
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /, shards 0-1 of 4, seen \d+s ago$/m);
    assert.match(st.out, /^warning: no live worker consumes shards 2-3 of 4: their deliveries and runs wait \(check SHARDS_CONSUMED\)$/m);
  } finally {
    await part.close();
  }
  // Every shard consumed: no warning.
  const whole = await startTestService({ rules, env: { SHARDS: '4' } });
  try {
    await eventually(async () => (await liveWorkers(redis, whole.config.QUEUE_PREFIX)).length === 1, 'the first heartbeat');
    const st = await cli(['status'], { QUEUE_PREFIX: whole.config.QUEUE_PREFIX, DATABASE_SCHEMA: whole.config.DATABASE_SCHEMA, RULES_DIR: whole.rulesDir });
    assert.match(st.out, /, shards 0-3 of 4, seen/);
    assert.doesNotMatch(st.out, /no live worker consumes/);
  } finally {
    await whole.close();
  }
});
