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
