import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Outbox } from '../../src/redis/outbox.js';
import { Pacer } from '../../src/redis/pacer.js';
import { dropPrefix, REDIS_URL } from '../helpers/service.js';

const redis = new Redis(REDIS_URL);
const prefix = `outbox-${randomBytes(4).toString('hex')}`;
after(async () => {
  redis.disconnect();
  await dropPrefix(REDIS_URL, prefix);
});

test('one drain per destination: urgent items first, coalesced, a later round brought forward by an earlier item, the flag cleared when empty', async () => {
  const box = new Outbox(redis, prefix);
  const t = 1_000_000;
  const first = await box.mark('slack:#a', [{ item: 'run:1', urgent: false }, { item: 'run:2', urgent: false }], t);
  assert.ok(first && 'start' in first, 'a drain starts');
  assert.equal(await box.mark('slack:#a', [{ item: 'run:1', urgent: false }, { item: 'run:3', urgent: true }], t + 1), undefined, 'one drain at a time; run:1 is coalesced');
  assert.equal(await box.pending('slack:#a'), 3);
  assert.deepEqual(await box.take('slack:#a', 1000, 500, t + 2), { item: 'run:3', urgent: true }, 'urgent first');
  assert.deepEqual(await box.take('slack:#a', 1000, 500, t + 2), { item: 'run:1', urgent: false });
  assert.deepEqual(await box.take('slack:#a', 1000, 500, t + 2), { item: 'run:2', urgent: false });
  for (const i of ['run:3', 'run:1', 'run:2']) await box.done('slack:#a', i);
  // A summary due in 30 s: the drain schedules a later round instead of holding on.
  await box.mark('slack:#a', [{ item: 'summary:r', urgent: false, dueMs: t + 30_000 }], t + 3);
  const later = await box.take('slack:#a', 1000, 500, t + 4);
  assert.ok('waitMs' in later && later.round !== undefined && later.waitMs > 29_000, JSON.stringify(later));
  // A new incident's first message: the scheduled round is brought forward.
  const forward = await box.mark('slack:#a', [{ item: 'run:9', urgent: true }], t + 5);
  assert.deepEqual(forward, { promote: (later as { round: number }).round });
  assert.deepEqual(await box.take('slack:#a', 1000, 500, t + 6), { item: 'run:9', urgent: true });
  await box.done('slack:#a', 'run:9');
  // A short wait is slept through by the drain (no new round).
  const short = await box.take('slack:#a', 1000, 60_000, t + 7);
  assert.ok('waitMs' in short && short.round === undefined);
  assert.deepEqual(await box.take('slack:#a', 1000, 500, t + 30_001), { item: 'summary:r', urgent: false });
  await box.done('slack:#a', 'summary:r');
  assert.deepEqual(await box.take('slack:#a', 1000, 500, t + 30_002), { empty: true });
  assert.ok((await box.mark('slack:#a', [{ item: 'run:10', urgent: false }], t + 30_003)) !== undefined, 'empty: the next mark starts a drain again');
});

test('an item whose drainer died comes back when its lease ends', async () => {
  const box = new Outbox(redis, prefix);
  const t = 2_000_000;
  await box.mark('pd:x', [{ item: 'incident:k', urgent: false }], t);
  assert.deepEqual(await box.take('pd:x', 1000, 500, t), { item: 'incident:k', urgent: false });
  const during = await box.take('pd:x', 1000, 5000, t + 10);
  assert.ok('waitMs' in during, 'leased: not handed out again');
  // Back, and first: it has waited long enough already.
  assert.deepEqual(await box.take('pd:x', 1000, 500, t + 1001), { item: 'incident:k', urgent: true }, 'lease ended: back');
});

test('the pacer holds a destination to its rate, and a Retry-After pauses it', async () => {
  const pacer = new Pacer(redis, prefix);
  const t = 3_000_000;
  const pace = { rate: 1, burst: 3 };
  const waits = [];
  for (let i = 0; i < 5; i++) waits.push(await pacer.take('slack:#p', pace, t));
  assert.deepEqual(waits.map((w) => w === 0), [true, true, true, false, false], 'the burst, then wait');
  assert.equal(await pacer.take('slack:#p', pace, t + 1000), 0, 'one more a second later');
  await pacer.pause('slack:#p', t + 5000);
  assert.ok((await pacer.take('slack:#p', pace, t + 4000)) >= 1000, 'paused until its Retry-After');
  assert.equal(await pacer.take('slack:#p', pace, t + 6001), 0);
});
