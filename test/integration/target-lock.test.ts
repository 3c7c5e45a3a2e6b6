import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { TargetLock } from '../../src/redis/target-lock.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { dropPrefix, eventually, REDIS_URL, startTestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

const redis = new Redis(REDIS_URL);
const prefix = `lock-${randomBytes(4).toString('hex')}`;
after(async () => {
  redis.disconnect();
  await dropPrefix(REDIS_URL, prefix);
});

test('a busy target has a line: released, it goes to the first in line; a newcomer cannot jump the line', async () => {
  const lock = new TargetLock(redis, prefix);
  assert.equal(await lock.acquire('svc', 'A', 60_000), true);
  assert.equal(await lock.acquire('svc', 'B', 60_000), false);
  assert.equal(await lock.acquire('svc', 'C', 60_000), false);
  assert.equal(await lock.acquire('svc', 'B', 60_000), false, 'B asks again: keeps its place');
  assert.equal(await lock.release('svc', 'X'), undefined, 'only the holder releases');
  assert.equal(await lock.release('svc', 'A'), 'B', 'handed to B');
  assert.equal(await lock.acquire('svc', 'D', 60_000), false, 'D, just arrived, waits behind C');
  assert.equal(await lock.acquire('svc', 'B', 60_000), true, 'B finds it handed over');
  assert.equal(await lock.release('svc', 'B'), 'C');
  assert.equal(await lock.acquire('svc', 'C', 60_000), true);
  assert.equal(await lock.release('svc', 'C'), 'D');
  assert.equal(await lock.release('svc', 'D'), undefined, 'nobody left: free');
  assert.equal(await lock.acquire('svc', 'E', 60_000), true);
});

test('40 alerts on one target: the runs never overlap, and each job is taken by a worker at most twice (no polling)', async () => {
  const breaker = await new FakeBreaker().start();
  breaker.state = 'closed';
  const svc = await startTestService({
    rules: { 'r.yml': `targets:${breaker.targetYaml('checkout')}\nrules:\n  - name: r\n    match: ['alertname="Line"']\n    action: breaker-reset\n    target: checkout\n    params: { poll_interval: 10ms, verify_timeout: 2s }\n` },
    env: { BREAKER_TOKEN: breaker.token, WORKER_CONCURRENCY: '8' },
  });
  try {
    for (let i = 0; i < 40; i++) assert.equal((await postWebhook(svc.url, firingWebhook('Line', `11e${String(i).padStart(5, '0')}`))).status, 200);
    const s = `"${svc.config.DATABASE_SCHEMA}"`;
    const rows = await eventually(async () => {
      const { rows: r } = await svc.pool.query(`SELECT job_id, started_at, finished_at FROM ${s}.runs WHERE finished_at IS NOT NULL ORDER BY started_at`);
      return r.length === 40 && r;
    }, '40 runs ended', 60_000);
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i].started_at >= rows[i - 1].finished_at, `run ${i} started before run ${i - 1} ended`);
    const { Queue } = await import('bullmq');
    const q = new Queue('remediations', { connection: { url: svc.config.REDIS_URL }, prefix: svc.config.QUEUE_PREFIX });
    const starts = await Promise.all(rows.map(async (r) => (await q.getJob(r.job_id))!.attemptsStarted));
    await q.close();
    assert.ok(starts.every((n) => n <= 2), `times taken: ${starts.join(',')}`);
  } finally {
    await svc.close();
    await breaker.stop();
  }
});
