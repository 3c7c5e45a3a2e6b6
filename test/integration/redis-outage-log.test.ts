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
    // Whatever the socket said (ECONNREFUSED, ECONNRESET, write EPIPE, "Connection is closed"...,
    // depending on where the connection was when Redis went): the line carries it.
    assert.equal(typeof during[0]!.error, 'string');
    assert.notEqual(during[0]!.error, '');
    assert.equal(typeof during[1]!.downMs, 'number');
  } finally {
    // Bounded: a cleanup step that hangs fails the test with its name instead of holding the run.
    await within('restarting Redis for the cleanup', async () => {
      redis ??= await startRedis(port, args); // close() needs Redis to end the workers' blocking calls
    });
    await within('closing the service', () => svc.close());
    await within('stopping Redis', async () => {
      if ((await Promise.race([redis!.stop(), wait(5000, 'hung')])) === 'hung') await redis!.stop('SIGKILL');
    });
    await rm(dir, { recursive: true, force: true });
  }
});

/** Runs one cleanup step with a deadline; past it the step is abandoned and the test fails naming it. */
async function within(step: string, fn: () => Promise<unknown>, ms = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`cleanup: ${step} did not finish within ${ms} ms`));
      // What hangs still holds sockets: end this file's process once the failure is reported.
      setTimeout(() => process.exit(1), 2000).unref();
    }, ms);
  });
  try {
    await Promise.race([fn(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
