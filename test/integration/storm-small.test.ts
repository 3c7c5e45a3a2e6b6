import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import assert from 'node:assert/strict';
import { startRemediator, type Child } from '../helpers/process.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { postWebhook } from '../helpers/webhook.js';

/**
 * A small storm (bench/storm.ts runs 10,000 alerts): 200 alerts, each delivered 3 times, spread
 * over 2 receivers, 2 workers, one of them SIGKILLed mid-storm. Counts only, never timings:
 * exactly one run per alert, none lost, none stuck, every delivery in the audit.
 */
const ALERTS = 200;
const PER_DELIVERY = 20;
const rules = { 'storm.yml': `rules:\n  - name: storm\n    match: ['alertname="SmallStorm"']\n    action: notify\n` };
let receivers: TestService[] = [];
let survivor: TestService | undefined;
let doomed: Child | undefined;
let redis: Redis | undefined;

before(async () => {
  const first = await startTestService({ rules, env: { REMEDIATOR_ROLE: 'receiver' } });
  const keep = { schema: first.config.DATABASE_SCHEMA, prefix: first.config.QUEUE_PREFIX };
  receivers = [first, await startTestService({ rules, env: { REMEDIATOR_ROLE: 'receiver' }, keep })];
  const shared = {
    PORT: '0', HOST: '127.0.0.1', RULES_DIR: first.rulesDir, REDIS_URL: first.config.REDIS_URL, DATABASE_URL: first.config.DATABASE_URL,
    DATABASE_SCHEMA: keep.schema, QUEUE_PREFIX: keep.prefix, WORKER_LOCK_MS: '2000',
  };
  doomed = await startRemediator({ ...shared, REMEDIATOR_ROLE: 'worker' });
  survivor = await startTestService({ rules, env: { REMEDIATOR_ROLE: 'worker', WORKER_LOCK_MS: '2000' }, keep });
});
after(async () => {
  redis?.disconnect();
  await doomed?.stop('SIGKILL');
  await survivor?.close();
  await receivers[1]?.close();
  await receivers[0]?.close();
});

test('200 alerts x 3 deliveries, 2 receivers, a worker killed mid-storm: exactly 200 runs, all ended, all audited', async () => {
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  const groups = Array.from({ length: ALERTS / PER_DELIVERY }, (_, g) => ({
    version: '4', groupKey: `{}:{g="${g}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'r', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '',
    alerts: Array.from({ length: PER_DELIVERY }, (_, i) => ({
      status: 'firing', labels: { alertname: 'SmallStorm', n: String(g * PER_DELIVERY + i) }, annotations: {}, startsAt,
      fingerprint: (0x5000 + g * PER_DELIVERY + i).toString(16),
    })),
  }));
  const deliveries = [...groups, ...[...groups].reverse(), ...groups];
  let sent = 0;
  await Promise.all(deliveries.map(async (body, i) => {
    const res = await postWebhook(receivers[i % 2]!.url, body);
    assert.equal(res.status, 200, await res.text());
    // Half-way through, one worker dies without a word: its stream entries and jobs are taken over.
    if (++sent === deliveries.length / 2) await doomed!.stop('SIGKILL');
  }));
  const s = `"${receivers[0]!.config.DATABASE_SCHEMA}"`;
  redis = new Redis(receivers[0]!.config.REDIS_URL);
  const p = receivers[0]!.config.QUEUE_PREFIX;
  const ingestIdle = async () => (await redis!.llen(`${p}:ingest:wait`)) + (await redis!.llen(`${p}:ingest:active`)) + (await redis!.xlen(`${p}:deliveries`)) === 0;
  const pool = receivers[0]!.pool;
  await eventually(async () => {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${s}.runs WHERE state = 'notified'`);
    return rows[0].n === ALERTS;
  }, 'every alert has an ended run', 90_000, 250);
  const runs = (await pool.query(`SELECT count(*)::int AS runs, count(DISTINCT fingerprint)::int AS alerts FROM ${s}.runs`)).rows[0];
  assert.deepEqual(runs, { runs: ALERTS, alerts: ALERTS }, 'one run per alert: none lost, none doubled');
  // A delivery whose audit job was running in the killed worker is written again by the survivor,
  // unless its transaction had not committed: at least every delivery, each alert's decisions complete.
  const audited = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${s}.alerts`)).rows[0].n as number;
  await eventually(async () => (await audited()) >= ALERTS * 3 && (await ingestIdle()), 'every delivery audited', 120_000, 250)
    .catch(async (err) => assert.fail(`${(err as Error).message}: ${await audited()} alerts audited`));
  const perAlert = (await pool.query(`SELECT fingerprint, count(*)::int AS n FROM ${s}.decisions GROUP BY fingerprint HAVING count(*) < 3`)).rows;
  assert.deepEqual(perAlert, [], 'a decision per alert for each of its 3 deliveries');
});
