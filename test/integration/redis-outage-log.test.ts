import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as wait } from 'node:timers/promises';
import { createLogger } from '../../src/log.js';
import { freePort, startRedis, type Child } from '../helpers/process.js';
import { eventually, startTestService } from '../helpers/service.js';

const rules = { 'none.yml': 'rules:\n  - name: nothing\n    match: [\'alertname="NeverSent"\']\n    action: notify\n' };

/**
 * A Redis outage is two log lines, not a line per connection per reconnect attempt: one when it
 * starts, one when it ends. A private redis-server is stopped for a few seconds, then started
 * again on the same port, under the full service (receiver, workers, notifiers).
 */
test('a Redis outage is logged once when it starts and once when it ends', async () => {
  const port = await freePort();
  // AOF on, as in production: the persistence check after the reconnect stays quiet.
  const dir = await mkdtemp(join(tmpdir(), 'remediator-redis-'));
  const args = ['--dir', dir, '--appendonly', 'yes', '--save', ''];
  let redis: Child | undefined = await startRedis(port, args);
  const lines: { level: string; msg: string; [k: string]: unknown }[] = [];
  const svc = await startTestService({ rules, env: { REDIS_URL: `redis://127.0.0.1:${port}` }, log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l))) });
  try {
    const before = lines.length;
    await redis.stop();
    redis = undefined;
    await eventually(async () => lines.slice(before).some((l) => l.msg === 'redis unreachable'), 'the outage logged');
    // Several seconds down: each connection retries every 200 ms to 2 s, BullMQ's workers and
    // blocking commands fail over and over. None of that may become a log line.
    await wait(4000);
    redis = await startRedis(port, args);
    await eventually(async () => lines.slice(before).some((l) => l.msg === 'redis reachable again'), 'the recovery logged');
    await wait(1000); // late reconnects of the other connections, which must not log either
    // (the persistence re-check after a reconnect is its own, expected line)
    const during = lines.slice(before).filter((l) => /redis|connect|worker error/i.test(`${l.msg} ${JSON.stringify(l.error ?? '')}`) && !/persistence/.test(l.msg));
    assert.deepEqual(during.map((l) => `${l.level} ${l.msg}`), ['warn redis unreachable', 'info redis reachable again'], JSON.stringify(during, null, 1));
    assert.match(String(during[0]!.error), /ECONNREFUSED|Connection is closed|ECONNRESET/);
    assert.equal(typeof during[1]!.downMs, 'number');
  } finally {
    redis ??= await startRedis(port, args); // close() needs Redis to end the workers' blocking calls
    await svc.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
