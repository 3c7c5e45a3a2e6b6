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
import { fanOut, startIngestStage } from '../../src/workers/intake.js';
import type { IngestRecord } from '../../src/store/journal-store.js';
import { dropPrefix, eventually, REDIS_URL, startTestService } from '../helpers/service.js';
import { firingWebhook } from '../helpers/webhook.js';

const table = compileRules(
  [{ file: 'r.yml', text: `rules:\n  - name: page\n    match: ['alertname=~"Stage.*"']\n    action: notify\n` }],
  buildRegistry(),
);
const STARTS = '2026-11-29T10:00:00Z';
const body = (fp: string) => JSON.stringify(firingWebhook('StageTest', fp, { startsAt: STARTS }));

describe('ingest stage against a real Redis', () => {
  const prefix = `stage-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  const remediations = new Queue('remediations', { connection: redis, prefix });
  const ingest = new Queue('ingest', { connection: redis, prefix });
  const base = { redis, prefix, remediations, ingest, table: () => table, log: silentLogger, dryRun: false };
  const auditJobs = async () => (await ingest.getJobs(['waiting'])).map((j) => j.data as IngestRecord);

  before(async () => ensureGroup(redis, prefix));
  after(async () => {
    await remediations.close();
    await ingest.close();
    redis.disconnect();
    await dropPrefix(REDIS_URL, prefix);
  });

  test('one batch: the same firing twice makes one job; the second delivery is audited as a duplicate', async () => {
    for (let i = 0; i < 2; i++) await appendDelivery(redis, prefix, { body: body('5a0001'), receivedAt: new Date().toISOString(), dryRun: false });
    const { deliveries } = await readDeliveries(redis, prefix, 'c1', { count: 10, blockMs: 100, pending: false });
    assert.equal(deliveries.length, 2);
    await fanOut(base, deliveries);
    const id = jobIdFor('5a0001', STARTS, 'page');
    const jobs = await remediations.getJobs(['waiting']);
    assert.deepEqual(jobs.map((j) => j.id), [id]);
    const decided = (await auditJobs()).flatMap((r) => r.alerts.flatMap((a) => a.decisions.map((d) => d.decision)));
    assert.deepEqual(decided.sort(), ['duplicate', 'enqueued']);
  });

  test('a delivery fanned out twice (a worker died before acknowledging it) adds nothing the second time', async () => {
    await appendDelivery(redis, prefix, { body: body('5a0002'), receivedAt: new Date().toISOString(), dryRun: true });
    const { deliveries } = await readDeliveries(redis, prefix, 'c1', { count: 10, blockMs: 100, pending: false });
    const before = (await auditJobs()).length;
    await fanOut(base, deliveries);
    await fanOut(base, deliveries);
    const job = await remediations.getJob(jobIdFor('5a0002', STARTS, 'page'));
    assert.equal(job?.data.dryRun, true, "the receiver's DRY_RUN travels with the delivery");
    const records = await auditJobs();
    assert.equal(records.length - before, 1, 'one audit record for the delivery');
    assert.equal(records.find((r) => r.alerts[0]!.alert.fingerprint === '5a0002')!.alerts[0]!.decisions[0]!.decision, 'enqueued');
  });

  test("a consumer that dies holding deliveries: another stage takes them over, fans them out and empties the stream", async () => {
    await appendDelivery(redis, prefix, { body: body('5a0003'), receivedAt: new Date().toISOString(), dryRun: false });
    // Read by a consumer that never finishes (a SIGKILLed worker): pending, unacknowledged.
    const dead = await readDeliveries(redis, prefix, 'dead-worker', { count: 10, blockMs: 100, pending: false });
    assert.equal(dead.deliveries.length, 1);
    const stage = startIngestStage({ ...base, blocking: redis.duplicate(), claimIdleMs: 200 });
    try {
      await eventually(async () => remediations.getJob(jobIdFor('5a0003', STARTS, 'page')), 'job from the taken-over delivery', 10_000);
      await eventually(async () => (await redis.xlen(streamKey(prefix))) === 0, 'stream emptied');
      const pendingCount = ((await redis.xpending(streamKey(prefix), INGEST_GROUP)) as [number])[0];
      assert.equal(pendingCount, 0);
    } finally {
      await stage.close();
    }
    // A stopped stage leaves no consumer behind; the dead one (nothing pending any more) stays until its own restart.
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
