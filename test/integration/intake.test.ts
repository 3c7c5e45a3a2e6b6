import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { silentLogger } from '../../src/log.js';
import { compileRules } from '../../src/rules/load.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { jobIdFor } from '../../src/core/run.js';
import { appendDelivery, INGEST_GROUP, readDeliveries, ensureGroup, streamKey } from '../../src/redis/delivery-stream.js';
import { Journal } from '../../src/run/journal.js';
import { JournalStore } from '../../src/store/journal-store.js';
import { RunReader } from '../../src/store/runs.js';
import { startIntake, takeIn } from '../../src/workers/intake.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { testSchema } from '../helpers/pg.js';
import { dropPrefix, eventually, REDIS_URL, startTestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

const table = compileRules(
  [{ file: 'r.yml', text: `rules:\n  - name: page\n    match: ['alertname=~"Stage.*"']\n    action: notify\n` }],
  buildRegistry(),
);
const STARTS = '2026-11-29T10:00:00Z';
const body = (fp: string) => JSON.stringify(firingWebhook('StageTest', fp, { startsAt: STARTS }));

describe('intake against a real Redis and PostgreSQL', () => {
  const prefix = `stage-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  const remediations = new Queue('remediations', { connection: redis, prefix });
  let db: Awaited<ReturnType<typeof testSchema>>;
  let base: Parameters<typeof takeIn>[0];
  let runs: RunReader;

  before(async () => {
    await ensureGroup(redis, prefix);
    db = await testSchema('intake');
    runs = new RunReader(db.pool, db.schema);
    const journal = new Journal(new JournalStore(db.pool, db.schema), runs, { log: silentLogger });
    base = { remediations: [remediations], journal, lanes: { redis, prefix }, table: () => table, log: silentLogger, dryRun: false };
  });
  after(async () => {
    await remediations.close();
    redis.disconnect();
    await dropPrefix(REDIS_URL, prefix);
    await db.drop();
  });
  const decisions = async (fp: string) => (await db.pool.query(`SELECT decision FROM "${db.schema}".decisions WHERE fingerprint = $1 ORDER BY decision`, [fp])).rows.map((r) => r.decision);

  test('one batch: the same firing twice makes one run and one job; the second delivery is a duplicate', async () => {
    for (let i = 0; i < 2; i++) await appendDelivery(redis, prefix, { body: body('5a0001'), receivedAt: new Date().toISOString(), dryRun: false });
    const { deliveries } = await readDeliveries(redis, prefix, 'c1', { count: 10, blockMs: 100, pending: false });
    assert.equal(deliveries.length, 2);
    await takeIn(base, deliveries);
    const id = jobIdFor('5a0001', STARTS, 'page');
    assert.deepEqual((await remediations.getJobs(['waiting'])).map((j) => j.id), [id]);
    assert.deepEqual(await decisions('5a0001'), ['duplicate', 'enqueued']);
    assert.equal((await runs.getRun(id))?.state, 'queued', 'the run exists before its job can start');
  });

  test('a delivery taken in twice (a worker died before acknowledging it) adds nothing the second time', async () => {
    await appendDelivery(redis, prefix, { body: body('5a0002'), receivedAt: new Date().toISOString(), dryRun: true });
    const { deliveries } = await readDeliveries(redis, prefix, 'c1', { count: 10, blockMs: 100, pending: false });
    await takeIn(base, deliveries);
    await takeIn(base, deliveries);
    const job = await remediations.getJob(jobIdFor('5a0002', STARTS, 'page'));
    assert.equal(job?.data.dryRun, true, "the receiver's DRY_RUN travels with the delivery");
    assert.deepEqual(await decisions('5a0002'), ['enqueued'], 'one alert and one decision for the delivery');
    assert.deepEqual((await runs.runEvents(job!.id!)).map((e) => e.state), ['queued']);
  });

  test('a consumer that dies holding deliveries: another intake takes them over, takes them in and empties the stream', async () => {
    await appendDelivery(redis, prefix, { body: body('5a0003'), receivedAt: new Date().toISOString(), dryRun: false });
    // Read by a consumer that never finishes (a SIGKILLed worker): pending, unacknowledged.
    const dead = await readDeliveries(redis, prefix, 'dead-worker', { count: 10, blockMs: 100, pending: false });
    assert.equal(dead.deliveries.length, 1);
    const intake = startIntake({ ...base, redis, prefix, blocking: redis.duplicate(), claimIdleMs: 200 });
    try {
      await eventually(async () => remediations.getJob(jobIdFor('5a0003', STARTS, 'page')), 'job from the taken-over delivery', 10_000);
      await eventually(async () => (await redis.xlen(streamKey(prefix))) === 0, 'stream emptied');
      const pendingCount = ((await redis.xpending(streamKey(prefix), INGEST_GROUP)) as [number])[0];
      assert.equal(pendingCount, 0);
    } finally {
      await intake.close();
    }
    // A stopped intake leaves no consumer behind; the dead one (nothing pending any more) stays until its own restart.
    const consumers = ((await redis.xinfo('CONSUMERS', streamKey(prefix), INGEST_GROUP)) as unknown[][]).map((c) => String(c[1]));
    assert.deepEqual(consumers.sort(), ['c1', 'dead-worker']);
  });
});

describe('the receiver writes one entry per delivery and nothing else', () => {
  test('with no worker running, a 200 means the delivery is in the stream; a worker started later runs it', async () => {
    const rules = { 'r.yml': `rules:\n  - name: page\n    match: ['alertname=~"Stage.*"']\n    action: notify\n` };
    const receiver = await startTestService({ rules, env: { REMEDIATOR_ROLE: 'receiver' } });
    try {
      const redis = new Redis(REDIS_URL);
      const keys = async () => (await redis.keys(`${receiver.config.QUEUE_PREFIX}:*`)).sort();
      try {
        const before = await keys();
        const res = await fetch(`${receiver.url}/webhooks/alertmanager`, {
          method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer test-webhook-token' }, body: body('5b0001'),
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { status: 'accepted', alerts: 1 });
        assert.equal(await redis.xlen(streamKey(receiver.config.QUEUE_PREFIX)), 1);
        const added = (await keys()).filter((k) => !before.includes(k));
        assert.deepEqual(added, before.includes(streamKey(receiver.config.QUEUE_PREFIX)) ? [] : [streamKey(receiver.config.QUEUE_PREFIX)], 'no job written by the receiver');
        const worker = await startTestService({
          rules, env: { REMEDIATOR_ROLE: 'worker' }, keep: { schema: receiver.config.DATABASE_SCHEMA, prefix: receiver.config.QUEUE_PREFIX },
        });
        try {
          const run = await eventually(async () => {
            const { rows } = await worker.pool.query(`SELECT state FROM "${receiver.config.DATABASE_SCHEMA}".runs WHERE fingerprint = '5b0001'`);
            return rows[0]?.state === 'notified' && rows;
          }, 'the run, once a worker is up');
          assert.equal(run.length, 1);
          await eventually(async () => (await redis.xlen(streamKey(receiver.config.QUEUE_PREFIX))) === 0, 'stream emptied');
        } finally {
          await worker.close();
        }
      } finally {
        redis.disconnect();
      }
    } finally {
      await receiver.close();
    }
  });
});

/**
 * A firing and its resolution accepted before any worker runs: the run must end `skipped` with
 * reason `resolved`, and nothing may act. Both orders, 50 alerts each, taken in by a worker started
 * afterwards (each pair lands in one intake batch).
 */
describe('a resolution accepted with its firing always stops the run', () => {
  const breaker = new FakeBreaker();
  before(async () => breaker.start());
  after(async () => breaker.stop());

  for (const order of ['firing, then resolution', 'resolution, then firing'] as const) {
    test(`${order}: 50 of 50 skipped as resolved, no call to the target`, async () => {
      breaker.state = 'open';
      const rules = {
        'r.yml': `targets:${breaker.targetYaml('svc')}\nrules:\n  - name: reset\n    match: ['alertname="D1"']\n    action: breaker-reset\n    target: svc\n`,
      };
      const env = { BREAKER_TOKEN: breaker.token };
      const receiver = await startTestService({ rules, env: { ...env, REMEDIATOR_ROLE: 'receiver' } });
      const calls = breaker.calls.length;
      try {
        const startsAt = new Date(Date.now() - 60_000).toISOString();
        for (let i = 0; i < 50; i++) {
          const fp = `d1${order[0] === 'f' ? 'a' : 'b'}${String(i).padStart(4, '0')}`;
          const hook = firingWebhook('D1', fp, { startsAt });
          const resolved = { ...hook, status: 'resolved', alerts: [{ ...hook.alerts[0]!, status: 'resolved', endsAt: new Date().toISOString() }] };
          const pair = order === 'firing, then resolution' ? [hook, resolved] : [resolved, hook];
          for (const b of pair) assert.equal((await postWebhook(receiver.url, b)).status, 200);
        }
        const worker = await startTestService({ rules, env: { ...env, REMEDIATOR_ROLE: 'worker' }, keep: { schema: receiver.config.DATABASE_SCHEMA, prefix: receiver.config.QUEUE_PREFIX } });
        try {
          const rows = await eventually(async () => {
            const { rows: r } = await worker.pool.query(`SELECT state, error_reason, alert_resolved_at FROM "${receiver.config.DATABASE_SCHEMA}".runs`);
            return r.length === 50 && r.every((x) => x.state === 'skipped') && r;
          }, '50 runs ended', 30_000);
          assert.ok(rows.every((r) => r.error_reason === 'resolved' && r.alert_resolved_at), JSON.stringify(rows.filter((r) => r.error_reason !== 'resolved')));
          assert.equal(breaker.calls.length - calls, 0, 'nothing acted: not even a status read');
          assert.equal(breaker.resets, 0);
        } finally {
          await worker.close();
        }
      } finally {
        await receiver.close();
      }
    });
  }
});
