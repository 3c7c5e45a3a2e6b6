import type { Redis } from 'ioredis';

/**
 * What each notification destination (a Slack channel, a PagerDuty routing key) still has to be
 * told, shared by every process. An item (a run's thread, an incident, a storm summary) is a
 * member of the destination's set, not one message per event: a run whose events come faster
 * than the destination takes them is brought up to date once, with its latest state (coalescing).
 * Urgent items (a run's first message, failures, approvals, pages) come before the rest.
 *
 * One drain at a time per destination (src/workers/notification.ts), told by a flag holding the
 * drain's round and when it runs (`<round>:0` running or due now, `<round>:<ms>` scheduled then).
 * `mark` starts a drain when none exists, or brings a scheduled one forward when an item is due
 * earlier; `take` hands out the next due item, schedules the next round when nothing is due for a
 * while, and clears the flag when nothing is left. Both are one script each, so a mark is never
 * lost between the last take and the end of a drain. An item taken is leased; one whose drainer
 * died comes back when its lease ends.
 */

/** Score = class * CLASS + due time (ms): urgent items (class 0) before normal ones (class 1), each by due time. */
const CLASS = 1e13;

// KEYS: items, flag, rounds. ARGV: score, item, score, item...
// Returns {round, 1} to start a drain, {round, 2} to bring a scheduled one forward, {0, 0} otherwise.
const MARK = `
local soonest = nil
for i = 1, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  redis.call('ZADD', KEYS[1], 'LT', score, ARGV[i + 1])
  local due = score % ${CLASS}
  if soonest == nil or due < soonest then soonest = due end
end
local flag = redis.call('GET', KEYS[2])
if not flag then
  local round = redis.call('INCR', KEYS[3])
  redis.call('SET', KEYS[2], round .. ':0')
  return {round, 1}
end
local sep = string.find(flag, ':')
local round = tonumber(string.sub(flag, 1, sep - 1))
local at = tonumber(string.sub(flag, sep + 1))
if at > 0 and soonest < at then
  redis.call('SET', KEYS[2], round .. ':0')
  return {round, 2}
end
return {0, 0}
`;

// KEYS: items, flag, leases, rounds. ARGV: now, lease ms, longest wait the drain sleeps through.
// Returns {item, class} | {'', waitMs, 0} (sleep, then take again) | {'', waitMs, round} (end this
// drain; round `round` is scheduled in waitMs) | {'', -1, 0} (empty: flag cleared).
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
    return {got[1], class, 0}
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
    return {'', -1, 0}
  end
  local lease = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  soonest = tonumber(lease[2])
end
local wait = math.max(1, soonest - now)
if wait <= tonumber(ARGV[3]) then return {'', wait, 0} end
local round = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[2], round .. ':' .. soonest)
return {'', wait, round}
`;

// KEYS: flag, rounds. ARGV: when the next round runs (ms, 0 = now). The drain hands over to a new round.
const HAND_OVER = `
local round = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], round .. ':' .. ARGV[1])
return round
`;

export interface Mark {
  item: string;
  urgent: boolean;
  /** Not before this time (ms); default now. */
  dueMs?: number;
}

export type Taken = { item: string; urgent: boolean } | { waitMs: number; round?: number } | { empty: true };

/** What a mark asks of the caller: start a drain round, or bring a scheduled one forward. */
export type MarkResult = { start: number } | { promote: number } | undefined;

type Scripts = {
  outboxMark(...a: string[]): Promise<[number, number]>;
  outboxTake(...a: string[]): Promise<[string, number, number]>;
  outboxHandOver(...a: string[]): Promise<number>;
};

export class Outbox {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    const r = redis as unknown as Record<string, unknown>;
    if (!r.outboxMark) redis.defineCommand('outboxMark', { numberOfKeys: 3, lua: MARK });
    if (!r.outboxTake) redis.defineCommand('outboxTake', { numberOfKeys: 4, lua: TAKE });
    if (!r.outboxHandOver) redis.defineCommand('outboxHandOver', { numberOfKeys: 2, lua: HAND_OVER });
  }

  private get scripts(): Scripts {
    return this.redis as unknown as Scripts;
  }

  private keys(destination: string) {
    const base = `${this.prefix}:outbox:${destination}`;
    return { items: `${base}:items`, flag: `${base}:draining`, leases: `${base}:leases`, rounds: `${this.prefix}:outbox:rounds` };
  }

  /** Marks items of a destination as needing a sync; says whether a drain must be started or brought forward. */
  async mark(destination: string, marks: Mark[], now = Date.now()): Promise<MarkResult> {
    const args = marks.flatMap((m) => [String((m.urgent ? 0 : CLASS) + (m.dueMs ?? now)), m.item]);
    const k = this.keys(destination);
    const [round, what] = await this.scripts.outboxMark(k.items, k.flag, k.rounds, ...args);
    return what === 1 ? { start: Number(round) } : what === 2 ? { promote: Number(round) } : undefined;
  }

  /**
   * The next due item (leased for `leaseMs`); else how long until one is due (with the round
   * scheduled for it when that is longer than `sleepMaxMs`); else empty (the drain ends).
   */
  async take(destination: string, leaseMs: number, sleepMaxMs: number, now = Date.now()): Promise<Taken> {
    const k = this.keys(destination);
    const [item, n, round] = await this.scripts.outboxTake(k.items, k.flag, k.leases, k.rounds, String(now), String(leaseMs), String(sleepMaxMs));
    if (item) return { item, urgent: Number(n) === 0 };
    if (Number(n) < 0) return { empty: true };
    return Number(round) > 0 ? { waitMs: Number(n), round: Number(round) } : { waitMs: Number(n) };
  }

  /** Done with an item (synced, or given up on): its lease ends. */
  async done(destination: string, item: string): Promise<void> {
    await this.redis.zrem(this.keys(destination).leases, item);
  }

  /** Puts an item back for later (a transient failure, a rate limit); it stays urgent if it was. */
  async later(destination: string, item: string, urgent: boolean, dueMs: number): Promise<void> {
    const k = this.keys(destination);
    await this.redis.multi().zrem(k.leases, item).zadd(k.items, 'LT', (urgent ? 0 : CLASS) + dueMs, item).exec();
  }

  /** The drain hands over to a new round running at `atMs` (0: now); returns the round. */
  async handOver(destination: string, atMs = 0): Promise<number> {
    const k = this.keys(destination);
    return Number(await this.scripts.outboxHandOver(k.flag, k.rounds, String(atMs)));
  }

  /** How many items wait at a destination (for /metrics and tests). */
  async pending(destination: string): Promise<number> {
    return this.redis.zcard(this.keys(destination).items);
  }
}
