import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { freePort, startRedis, type Child } from '../helpers/process.js';
import { startTestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

const rules = { 'none.yml': 'rules:\n  - name: nothing\n    match: [\'alertname="NeverSent"\']\n    action: notify\n' };

interface Started {
  logs: { level: string; msg: string; [k: string]: unknown }[];
  metrics: string;
  webhookStatus: number;
}

/**
 * Starts a private redis-server with `args`, then the service on it with a log that is kept;
 * returns the log, /metrics and the answer to one webhook.
 */
async function startWith(args: string[]): Promise<Started> {
  const dir = await mkdtemp(join(tmpdir(), 'remediator-redis-'));
  const port = await freePort();
  let redis: Child | undefined;
  try {
    redis = await startRedis(port, ['--dir', dir, ...args]);
    const lines: string[] = [];
    const svc = await startTestService({ rules, env: { REDIS_URL: `redis://127.0.0.1:${port}` }, log: createLogger('info', {}, (l) => lines.push(l)) });
    try {
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      const res = await postWebhook(svc.url, firingWebhook('PersistenceTest', 'ffff000000000001'));
      return { logs: lines.map((l) => JSON.parse(l)), metrics, webhookStatus: res.status };
    } finally {
      await svc.close();
    }
  } finally {
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const persistenceWarnings = (s: Started) => s.logs.filter((l) => l.level === 'warn' && /persist/i.test(l.msg));
const series = (s: Started) => s.metrics.split('\n').filter((l) => l.startsWith('remediator_redis_persistence{'));

describe('Redis persistence is checked at start', () => {
  test('no AOF and no snapshots: a loud warning saying alerts are lost and how to fix it', async () => {
    const s = await startWith(['--appendonly', 'no', '--save', '']);
    const [w, ...more] = persistenceWarnings(s);
    assert.equal(more.length, 0);
    assert.match(w!.msg, /^REDIS PERSISTENCE IS OFF/);
    assert.match(w!.msg, /lost if Redis restarts/);
    assert.match(w!.msg, /appendonly yes/);
    assert.match(String(w!.redis), /^redis:\/\/127\.0\.0\.1:\d+/);
    assert.deepEqual(series(s), ['remediator_redis_persistence{mode="aof"} 0', 'remediator_redis_persistence{mode="rdb"} 0']);
    assert.equal(s.webhookStatus, 200);
  });

  test('snapshots only: warned that what came after the last snapshot is lost', async () => {
    const s = await startWith(['--appendonly', 'no', '--save', '60 1']);
    const [w, ...more] = persistenceWarnings(s);
    assert.equal(more.length, 0);
    assert.match(w!.msg, /RDB SNAPSHOTS ONLY \(save "60 1"\).*since the last snapshot.*appendonly yes/);
    assert.deepEqual(series(s), ['remediator_redis_persistence{mode="aof"} 0', 'remediator_redis_persistence{mode="rdb"} 1']);
  });

  test('appendonly yes: no warning, an info line, and the gauge says aof', async () => {
    const s = await startWith(['--appendonly', 'yes', '--save', '']);
    assert.deepEqual(persistenceWarnings(s), []);
    assert.ok(s.logs.some((l) => l.level === 'info' && l.msg === 'redis persistence checked' && l.appendonly === 'yes'));
    assert.deepEqual(series(s), ['remediator_redis_persistence{mode="aof"} 1', 'remediator_redis_persistence{mode="rdb"} 0']);
  });

  test('a Redis that refuses CONFIG: "could not check", and the service still starts and accepts webhooks', async () => {
    const s = await startWith(['--appendonly', 'no', '--save', '', '--rename-command', 'CONFIG', '']);
    const [w, ...more] = persistenceWarnings(s);
    assert.equal(more.length, 0);
    assert.match(w!.msg, /^could not check Redis persistence/);
    assert.match(String(w!.error), /unknown command/i);
    assert.ok(s.logs.some((l) => l.msg === 'remediator started'));
    assert.equal(s.webhookStatus, 200);
    assert.deepEqual(series(s), []);
    assert.match(s.metrics, /# TYPE remediator_redis_persistence gauge/);
  });
});
