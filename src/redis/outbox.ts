import type { Redis } from 'ioredis';

/**
 * What each notification destination (a Slack channel, a PagerDuty routing key) still has to be
 * told, shared by every process. An item (a run's thread, an incident, a storm summary) is a
 * member of the destination's set, not one message per event: a run whose events come faster
 * than the destination takes them is brought up to date once, with its latest state (coalescing).
 * Urgent items (a run's first message, failures, approvals, pages) come before the rest.
 *
 * One drainer at a time per destination (src/workers/notification.ts): `mark` starts a drain job
 * when none runs (a flag set in the same script), `take` hands out the next due item and clears
 * the flag atomically when nothing is left, so a mark is never lost between the last take and the
 * end of a drain. An item taken is leased; one whose drainer died comes back when its lease ends.
 */

/** Score = class * CLASS + due time (ms): urgent items (class 0) before normal ones (class 1), each by due time. */
const CLASS = 1e13;

const MARK = `
local added = 0
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'LT', tonumber(ARGV[i]), ARGV[i + 1])
end
if redis.call('SET', KEYS[2], '1', 'NX') then return redis.call('INCR', KEYS[3]) end
return 0
`;

// KEYS: items, draining flag, leases. ARGV: now, lease ms.
// Returns {item, class} | {'', waitMs} | {'', -1} (empty: flag cleared).
const TAKE = `
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZADD', KEYS[1], 'LT', now, m)
end
for class = 0, 1 do
  local got = redis.call('ZRANGEBYSCORE', KEYS[1], class * ${CLASS}, class * ${CLASS} + now, 'LIMIT', 0, 1)
  if #got > 0 then
    redis.call('ZREM', KEYS[1], got[1])
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), got[1])
    return {got[1], class}
  end
end
local soonest = nil
for class = 0, 1 do
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], class * ${CLASS}, (class + 1) * ${CLASS} - 1, 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then
    local due = tonumber(first[2]) - class * ${CLASS}
    if soonest == nil or due < soonest then soonest = due end
  end
end
if soonest == nil then
  if redis.call('ZCARD', KEYS[3]) == 0 then
    redis.call('DEL', KEYS[2])
    return {'', -1}
  end
  local lease = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  soonest = tonumber(lease[2])
end
return {'', math.max(1, soonest - now)}
`;

export interface Mark {
  item: string;
  urgent: boolean;
  /** Not before this time (ms); default now. */
  dueMs?: number;
}

export type Taken = { item: string; urgent: boolean } | { waitMs: number } | { empty: true };

export class Outbox {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    const r = redis as unknown as Record<string, unknown>;
    if (!r.outboxMark) redis.defineCommand('outboxMark', { numberOfKeys: 3, lua: MARK });
    if (!r.outboxTake) redis.defineCommand('outboxTake', { numberOfKeys: 3, lua: TAKE });
  }

  private keys(destination: string): [string, string, string] {
    const base = `${this.prefix}:outbox:${destination}`;
    return [`${base}:items`, `${base}:draining`, `${this.prefix}:outbox:rounds`];
  }

  /** Marks items of a destination as needing a sync; returns a round number when a drain must be started. */
  async mark(destination: string, marks: Mark[], now = Date.now()): Promise<number> {
    const args = marks.flatMap((m) => [String((m.urgent ? 0 : CLASS) + (m.dueMs ?? now)), m.item]);
    const [items, flag, rounds] = this.keys(destination);
    return (await (this.redis as unknown as { outboxMark(...a: string[]): Promise<number> }).outboxMark(items, flag, rounds, ...args)) ?? 0;
  }

  /** The next due item (leased for `leaseMs`), how long until one is due, or empty (the drain ends). */
  async take(destination: string, leaseMs: number, now = Date.now()): Promise<Taken> {
    const [items, flag] = this.keys(destination);
    const [item, n] = (await (this.redis as unknown as { outboxTake(...a: string[]): Promise<[string, number]> }).outboxTake(items, flag, this.leases(destination), String(now), String(leaseMs)));
    if (item) return { item, urgent: Number(n) === 0 };
    return Number(n) < 0 ? { empty: true } : { waitMs: Number(n) };
  }

  /** Done with an item (synced, or given up on): its lease ends. */
  async done(destination: string, item: string): Promise<void> {
    await this.redis.zrem(this.leases(destination), item);
  }

  /** Puts an item back for later (a transient failure, a rate limit); it stays urgent if it was. */
  async later(destination: string, item: string, urgent: boolean, dueMs: number): Promise<void> {
    const [items] = this.keys(destination);
    await this.redis.multi().zrem(this.leases(destination), item).zadd(items, 'LT', (urgent ? 0 : CLASS) + dueMs, item).exec();
  }

  /** A new drain round number (a drain that hands over to a later job of its own). */
  async nextRound(): Promise<number> {
    return this.redis.incr(`${this.prefix}:outbox:rounds`);
  }

  /** How many items wait at a destination (for /metrics and tests). */
  async pending(destination: string): Promise<number> {
    const [items] = this.keys(destination);
    return this.redis.zcard(items);
  }

  private leases(destination: string): string {
    return `${this.prefix}:outbox:${destination}:leases`;
  }
}
