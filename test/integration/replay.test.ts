import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runCli } from '../../src/cli.js';
import { SafetyState } from '../../src/redis/safety-state.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/** `rules replay`: a changed rule table against what the audit recorded, with budgets and pauses. */
let breaker: FakeBreaker;
let svc: TestService;
let newDir: string;
const rules = (b: FakeBreaker, extra = '') => `
targets:${b.targetYaml('svc')}
rules:
  - name: reset
    match: ['alertname="Open"']
    action: breaker-reset
    target: svc
    params: { poll_interval: 20ms }${extra}
`;

before(async () => {
  breaker = await new FakeBreaker().start();
  svc = await startTestService({ rules: { 'r.yml': rules(breaker) }, env: { BREAKER_TOKEN: breaker.token } });
  newDir = await mkdtemp(join(tmpdir(), 'remediator-replay-'));
  await writeFile(join(newDir, 'r.yml'), rules(breaker, '\n    budget: { runs: 1, per: 1h }'));
});
after(async () => {
  await svc.close();
  await breaker.stop();
  await rm(newDir, { recursive: true, force: true });
});

const cli = async (args: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const env = { DATABASE_URL: svc.config.DATABASE_URL, DATABASE_SCHEMA: svc.config.DATABASE_SCHEMA, REDIS_URL: svc.config.REDIS_URL, QUEUE_PREFIX: svc.config.QUEUE_PREFIX, BREAKER_TOKEN: breaker.token };
  const code = await runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l), env });
  return { code, out, err };
};

test('replay --since: the new budget would have skipped the 2nd and 3rd runs; a pause now would skip all', async () => {
  for (const fp of ['e0000000000000a1', 'e0000000000000a2', 'e0000000000000a3']) {
    breaker.state = 'open';
    assert.equal((await postWebhook(svc.url, firingWebhook('Open', fp))).status, 200);
    await eventually(async () => (await svc.pool.query(`SELECT 1 FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = $1 AND state IN ('succeeded', 'skipped')`, [fp])).rowCount, `run ${fp}`);
  }
  const r = await cli(['rules', 'replay', '--since', '1h', '--dir', newDir]);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.deepEqual(r.out.filter((l) => l.startsWith('alert ')).map((l) => l.split(' ')[2]), ['e0000000000000a2', 'e0000000000000a3']);
  assert.ok(r.out.includes('  before: reset: runs breaker-reset on svc'), r.out.join('\n'));
  assert.ok(r.out.includes('  after:  reset: skipped (budget)'), r.out.join('\n'));
  assert.match(r.out.at(-1)!, /^3 alerts replayed, 2 with a different outcome: runs=1 budget=2$/);

  const redis = new Redis(svc.config.REDIS_URL);
  try {
    await new SafetyState(redis, svc.config.QUEUE_PREFIX).pause({ scope: 'target:svc', by: 'test', reason: 'maintenance', at: new Date().toISOString() });
    const p = await cli(['rules', 'replay', '--since', '1h', '--dir', svc.rulesDir, '--json']);
    const report = JSON.parse(p.out.join('\n')) as { differ: number; report: { after: string[] }[] };
    assert.equal(report.differ, 3);
    assert.deepEqual(report.report.map((x) => x.after), [['reset: skipped (paused)'], ['reset: skipped (paused)'], ['reset: skipped (paused)']]);

    // rules test --state: the same pause, and the new rule's budget, for one payload.
    const payload = join(newDir, 'payload.json');
    await writeFile(payload, JSON.stringify(firingWebhook('Open', 'e0000000000000b1')));
    const t = await cli(['rules', 'test', payload, '--dir', newDir, '--state']);
    assert.equal(t.code, 0, t.err.join('\n'));
    assert.ok(t.out.includes('    HELD: would be skipped (paused: target:svc by test: maintenance)'), t.out.join('\n'));
    assert.ok(t.out.includes('    budget: rule reset: 1 runs per 1h'), t.out.join('\n'));
  } finally {
    await new SafetyState(redis, svc.config.QUEUE_PREFIX).resume('target:svc');
    redis.disconnect();
  }
});

test('replay --file: webhook bodies one per line; a bad line is named by file and line', async () => {
  const file = join(newDir, 'payloads.jsonl');
  const t = Date.now();
  const lines = [1, 2].map((i) => JSON.stringify(firingWebhook('Open', `f00000000000000${i}`, { startsAt: new Date(t - (3 - i) * 60_000).toISOString() })));
  await writeFile(file, lines.join('\n') + '\n');
  const r = await cli(['rules', 'replay', '--file', file, '--dir', newDir]);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.deepEqual(r.out.filter((l) => l.startsWith('  ')), ['  reset: runs breaker-reset on svc', '  reset: skipped (budget)']);
  assert.equal(r.out.at(-1), '2 alerts replayed: runs=1 budget=1');
  await writeFile(file, `${lines[0]}\n{"version":"4"}\n`);
  const bad = await cli(['rules', 'replay', '--file', file, '--dir', newDir]);
  assert.equal(bad.code, 2);
  assert.match(bad.err[0]!, /payloads\.jsonl:2: /);
});

/** A second service for one test: its own schema, rules and (maybe) DRY_RUN. */
async function withService(o: { rules: string; env?: Record<string, string> }, body: (s: TestService) => Promise<void>): Promise<void> {
  const s = await startTestService({ rules: { 'r.yml': o.rules }, env: { BREAKER_TOKEN: breaker.token, ...o.env } });
  try {
    await body(s);
  } finally {
    await s.close();
  }
}

const cliOn = async (s: TestService, args: string[], extra: Record<string, string> = {}) => {
  const out: string[] = [];
  const err: string[] = [];
  const env = { DATABASE_URL: s.config.DATABASE_URL, DATABASE_SCHEMA: s.config.DATABASE_SCHEMA, REDIS_URL: s.config.REDIS_URL, QUEUE_PREFIX: s.config.QUEUE_PREFIX, ...extra };
  const code = await runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l), env });
  return { code, out, err };
};

async function fireAndWait(s: TestService, body: ReturnType<typeof firingWebhook>, states: string[]): Promise<void> {
  breaker.state = 'open';
  assert.equal((await postWebhook(s.url, body)).status, 200);
  const fp = body.alerts[0]!.fingerprint;
  await eventually(async () => (await s.pool.query(`SELECT 1 FROM "${s.config.DATABASE_SCHEMA}".runs WHERE fingerprint = $1 AND state = ANY($2)`, [fp, states])).rowCount, `run ${fp}`);
}

test('replay of a DRY_RUN service\'s audit with unchanged rules: no difference, whatever DRY_RUN the shell has', async () => {
  await withService({ rules: rules(breaker), env: { DRY_RUN: 'true' } }, async (s) => {
    for (const fp of ['d0000000000000a1', 'd0000000000000a2']) await fireAndWait(s, firingWebhook('Open', fp), ['dry_run']);
    for (const shell of [{}, { DRY_RUN: 'false' }, { DRY_RUN: 'true' }] as Record<string, string>[]) {
      const r = await cliOn(s, ['rules', 'replay', '--since', '1h', '--dir', s.rulesDir, '--all'], shell);
      assert.equal(r.code, 0, r.err.join('\n'));
      assert.ok(r.out.includes('  before: reset: runs breaker-reset on svc (dry run)'), r.out.join('\n'));
      assert.ok(r.out.includes('  after:  reset: runs breaker-reset on svc (dry run)'), r.out.join('\n'));
      assert.equal(r.out.at(-1), '2 alerts replayed, 0 with a different outcome: runs=2', JSON.stringify(shell));
    }
  });
});

test('replay simulates cooldowns: unchanged rules agree with the audit; without the cooldown the 2nd and 3rd would run', async () => {
  await withService({ rules: rules(breaker, '\n    cooldown: 10m') }, async (s) => {
    const first = firingWebhook('Open', 'c0000000000000a1');
    await fireAndWait(s, first, ['succeeded']);
    // The same firing again (Alertmanager's repeat): the same run, not a second one.
    assert.equal((await postWebhook(s.url, first)).status, 200);
    await eventually(async () => (await s.pool.query(`SELECT 1 FROM "${s.config.DATABASE_SCHEMA}".decisions WHERE decision = 'duplicate'`)).rowCount, 'the duplicate decision');
    for (const fp of ['c0000000000000a2', 'c0000000000000a3']) await fireAndWait(s, firingWebhook('Open', fp), ['skipped']);
    const same = await cliOn(s, ['rules', 'replay', '--since', '1h', '--dir', s.rulesDir], { DRY_RUN: 'true' });
    assert.equal(same.code, 0, same.err.join('\n'));
    assert.equal(same.out.at(-1), '4 alerts replayed, 0 with a different outcome: runs=2 cooldown=2', same.out.join('\n'));

    const without = await mkdtemp(join(tmpdir(), 'remediator-replay-'));
    try {
      await writeFile(join(without, 'r.yml'), rules(breaker));
      const r = await cliOn(s, ['rules', 'replay', '--since', '1h', '--dir', without]);
      assert.equal(r.code, 0, r.err.join('\n'));
      assert.deepEqual(r.out.filter((l) => l.startsWith('alert ')).map((l) => l.split(' ')[2]), ['c0000000000000a2', 'c0000000000000a3']);
      assert.ok(r.out.includes('  before: reset: skipped (cooldown)'), r.out.join('\n'));
      assert.ok(r.out.includes('  after:  reset: runs breaker-reset on svc'), r.out.join('\n'));
      assert.equal(r.out.at(-1), '4 alerts replayed, 2 with a different outcome: runs=4');
    } finally {
      await rm(without, { recursive: true, force: true });
    }
  });
});

test('replay --file takes a JSON array, one pretty-printed body, or JSON lines; anything else says how to write it', async () => {
  const file = join(newDir, 'bodies.json');
  const t = Date.now();
  const bodies = [1, 2].map((i) => firingWebhook('Open', `f10000000000000${i}`, { startsAt: new Date(t - (3 - i) * 60_000).toISOString() }));
  const expectTwo = async () => {
    const r = await cli(['rules', 'replay', '--file', file, '--dir', newDir]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.equal(r.out.at(-1), '2 alerts replayed: runs=1 budget=1');
  };
  await writeFile(file, JSON.stringify(bodies, null, 2));
  await expectTwo();
  await writeFile(file, bodies.map((b) => JSON.stringify(b)).join('\n'));
  await expectTwo();
  await writeFile(file, JSON.stringify(bodies[0], null, 2));
  const one = await cli(['rules', 'replay', '--file', file, '--dir', newDir]);
  assert.equal(one.code, 0, one.err.join('\n'));
  assert.equal(one.out.at(-1), '1 alerts replayed: runs=1');
  await writeFile(file, `${JSON.stringify(bodies[0])}\n{"version": "4",\n`);
  const bad = await cli(['rules', 'replay', '--file', file, '--dir', newDir]);
  assert.equal(bad.code, 2);
  assert.match(bad.err[0]!, /bodies\.json:2: not JSON \(.*\): --file takes a JSON array of webhook bodies, one body, or one body per line$/);
  await writeFile(file, JSON.stringify([bodies[0], { version: '4' }], null, 2));
  const badItem = await cli(['rules', 'replay', '--file', file, '--dir', newDir]);
  assert.equal(badItem.code, 2);
  assert.match(badItem.err[0]!, /bodies\.json: \[1\]: /);
});
