import type { Redis } from 'ioredis';

/**
 * What operators and PagerDuty decided about automation, kept in Redis under the queue prefix so
 * that every remediator process sees the same state at once and it outlives restarts (Redis with
 * AOF, see the README). Nothing here lives in process memory.
 */

/** What a pause covers: everything, or one rule, one action, or one target. */
export type PauseScope = { kind: 'all' } | { kind: 'rule' | 'action' | 'target'; name: string };

export interface Pause {
  scope: string;
  by: string;
  reason: string;
  at: string;
  /** ISO time the pause ends by itself; none: until resumed. */
  until?: string;
}

/** A person acknowledged a PagerDuty incident of ours: automation keeps its hands off that alert group. */
export interface Hold {
  dedupKey: string;
  by: string;
  incident: string;
  at: string;
  url?: string;
}

export interface Quarantine {
  rule: string;
  target: string;
  at: string;
  /** The ineffective runs that led to it, oldest first. */
  runs: string[];
  reason: string;
}

export function scopeKey(s: PauseScope): string {
  return s.kind === 'all' ? 'all' : `${s.kind}:${s.name}`;
}

/** Parses "all", "rule:NAME", "action:NAME" or "target:NAME" (the CLI and the admin API take these). */
export function parseScope(text: string): PauseScope | undefined {
  if (text === 'all') return { kind: 'all' };
  const m = /^(rule|action|target):(.+)$/.exec(text);
  return m ? { kind: m[1] as 'rule' | 'action' | 'target', name: m[2]! } : undefined;
}

// Sliding-window budgets, checked and taken atomically for every key at once: two processes racing
// for the last slot cannot both win. KEYS: one sorted set per budget (member: job id, score: ms).
// ARGV: now, job id, "take" or "peek", then limit and window (ms) per key. Returns 0 when taken
// (or, peeking, when there is room), else the 1-based index of the first spent budget. A job
// already counted (its retry) is let through.
const TAKE_BUDGET = `
local now = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 + 2 * i])
  local win = tonumber(ARGV[3 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - win)
  if not redis.call('ZSCORE', k, ARGV[2]) and redis.call('ZCARD', k) >= limit then return i end
end
if ARGV[3] == 'peek' then return 0 end
for i, k in ipairs(KEYS) do
  if not redis.call('ZSCORE', k, ARGV[2]) then redis.call('ZADD', k, now, ARGV[2]) end
  redis.call('PEXPIRE', k, tonumber(ARGV[3 + 2 * i]))
end
return 0
`;

/** A budget to take from: its Redis key part, limit and window. */
export interface BudgetKey {
  key: string;
  runs: number;
  perMs: number;
}

/** How long a human-ack hold lasts without PagerDuty's resolve (a lost webhook must not hold forever). */
const HOLD_TTL_S = 7 * 24 * 3600;

export class SafetyState {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    if (!(redis as unknown as { takeBudget?: unknown }).takeBudget) redis.defineCommand('takeBudget', { lua: TAKE_BUDGET });
  }

  private k(...parts: string[]): string {
    return [this.prefix, 'safety', ...parts].join(':');
  }

  // ---- pauses ----

  async pause(p: Pause): Promise<void> {
    await this.redis.hset(this.k('pauses'), p.scope, JSON.stringify(p));
  }

  /** Lifts a pause; returns it, or undefined when there was none. */
  async resume(scope: string): Promise<Pause | undefined> {
    const [[, old]] = (await this.redis.multi().hget(this.k('pauses'), scope).hdel(this.k('pauses'), scope).exec()) as [[null, string | null], unknown];
    return old ? (JSON.parse(old) as Pause) : undefined;
  }

  /** Active pauses; those past their `until` are removed. */
  async pauses(now: Date): Promise<Pause[]> {
    const all = Object.values(await this.redis.hgetall(this.k('pauses'))).map((v) => JSON.parse(v) as Pause);
    const expired = all.filter((p) => p.until && Date.parse(p.until) <= now.getTime());
    if (expired.length) await this.redis.hdel(this.k('pauses'), ...expired.map((p) => p.scope));
    return all.filter((p) => !expired.includes(p));
  }

  /** The first active pause covering a run of this rule/action/target. */
  async pausedFor(o: { rule: string; action: string; target?: string }, now: Date): Promise<Pause | undefined> {
    const scopes = ['all', `rule:${o.rule}`, `action:${o.action}`, ...(o.target ? [`target:${o.target}`] : [])];
    const values = await this.redis.hmget(this.k('pauses'), ...scopes);
    return values
      .filter((v): v is string => v !== null)
      .map((v) => JSON.parse(v) as Pause)
      .find((p) => !p.until || Date.parse(p.until) > now.getTime());
  }

  // ---- budgets ----

  /**
   * Takes one slot from every budget, or none: returns the first spent budget. `peek` only checks
   * (dry runs: they show a spent budget but act on nothing, so they use no slot).
   */
  async takeBudget(budgets: BudgetKey[], jobId: string, now: Date, peek = false): Promise<BudgetKey | undefined> {
    if (budgets.length === 0) return undefined;
    const args = budgets.flatMap((b) => [String(b.runs), String(b.perMs)]);
    const keys = budgets.map((b) => this.k('budget', b.key));
    const spent = (await (this.redis as unknown as { takeBudget(n: number, ...a: string[]): Promise<number> }).takeBudget(
      keys.length, ...keys, String(now.getTime()), jobId, peek ? 'peek' : 'take', ...args,
    ));
    return spent > 0 ? budgets[spent - 1] : undefined;
  }

  /** True the first time it is called for `key` within `ms` (across processes): "page once per window". */
  async once(key: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.k('once', key), '1', 'PX', Math.max(1, ms), 'NX')) === 'OK';
  }

  // ---- human acknowledgments (PagerDuty) ----

  async hold(h: Hold): Promise<void> {
    await this.redis.set(this.k('hold', h.dedupKey), JSON.stringify(h), 'EX', HOLD_TTL_S);
  }

  async release(dedupKey: string): Promise<boolean> {
    return (await this.redis.del(this.k('hold', dedupKey))) > 0;
  }

  async heldBy(dedupKeys: string[]): Promise<Hold | undefined> {
    if (dedupKeys.length === 0) return undefined;
    const v = (await this.redis.mget(...dedupKeys.map((d) => this.k('hold', d)))).find((x) => x !== null);
    return v ? (JSON.parse(v) as Hold) : undefined;
  }

  async holds(): Promise<Hold[]> {
    const out: Hold[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.k('hold', '*'), 'COUNT', 500);
      cursor = next;
      if (keys.length) for (const v of await this.redis.mget(...keys)) if (v) out.push(JSON.parse(v) as Hold);
    } while (cursor !== '0');
    return out;
  }

  // ---- loop detection and quarantine ----

  private qField(rule: string, target: string): string {
    return `${rule}\n${target}`;
  }

  /** Counts one more ineffective fix in a row on (rule, target); returns the new count. */
  async ineffective(rule: string, target: string, runId: string): Promise<string[]> {
    const key = this.k('ineffective', rule, target);
    const [, [, list]] = (await this.redis.multi().rpush(key, runId).lrange(key, 0, -1).expire(key, 30 * 24 * 3600).exec()) as [unknown, [null, string[]]];
    return [...new Set(list)];
  }

  /** The ineffective fixes in a row on (rule, target), oldest first. */
  async streak(rule: string, target: string): Promise<string[]> {
    return [...new Set(await this.redis.lrange(this.k('ineffective', rule, target), 0, -1))];
  }

  /** A fix worked (the alert resolved within the verify window): the count starts again. */
  async effective(rule: string, target: string): Promise<void> {
    await this.redis.del(this.k('ineffective', rule, target));
  }

  /** Quarantines; returns false when it already was (so the page goes out once). */
  async quarantine(q: Quarantine): Promise<boolean> {
    return (await this.redis.hsetnx(this.k('quarantines'), this.qField(q.rule, q.target), JSON.stringify(q))) === 1;
  }

  async quarantined(rule: string, target: string): Promise<Quarantine | undefined> {
    const v = await this.redis.hget(this.k('quarantines'), this.qField(rule, target));
    return v ? (JSON.parse(v) as Quarantine) : undefined;
  }

  async quarantines(): Promise<Quarantine[]> {
    return Object.values(await this.redis.hgetall(this.k('quarantines'))).map((v) => JSON.parse(v) as Quarantine);
  }

  /** Lifts a quarantine (a person decided): the ineffective count starts again too. */
  async lift(rule: string, target: string): Promise<Quarantine | undefined> {
    const q = await this.quarantined(rule, target);
    await this.redis.multi().hdel(this.k('quarantines'), this.qField(rule, target)).del(this.k('ineffective', rule, target)).exec();
    return q;
  }

  // ---- cooldowns and fixes waiting for their verdict ----

  /** The run that started this rule's cooldown on this target, while it lasts. */
  async cooldownOf(rule: string, target: string): Promise<{ runId: string; at: string } | undefined> {
    const v = await this.redis.get(this.k('cooldown', rule, target));
    return v ? (JSON.parse(v) as { runId: string; at: string }) : undefined;
  }

  /** A run acted (or is about to): no other run of the rule acts on the target for `ms`. */
  async startCooldown(rule: string, target: string, runId: string, at: Date, ms: number): Promise<void> {
    await this.redis.set(this.k('cooldown', rule, target), JSON.stringify({ runId, at: at.toISOString() }), 'PX', Math.max(1, ms));
  }

  /** The last successful fix of a rule on a target that has no verdict yet (loop detection). */
  async pendingFix(rule: string, target: string): Promise<{ runId: string; finishedAt: string } | undefined> {
    const v = await this.redis.get(this.k('fix', rule, target));
    return v ? (JSON.parse(v) as { runId: string; finishedAt: string }) : undefined;
  }

  /** A fix succeeded: it waits for its verdict until `ttlMs` (its verify_window and some margin). */
  async setPendingFix(rule: string, target: string, runId: string, finishedAt: Date, ttlMs: number): Promise<void> {
    await this.redis.set(this.k('fix', rule, target), JSON.stringify({ runId, finishedAt: finishedAt.toISOString() }), 'PX', Math.max(1, ttlMs));
  }

  /** The fix of `runId` was judged: it no longer waits (unless a newer fix replaced it). */
  async clearPendingFix(rule: string, target: string, runId: string): Promise<void> {
    await this.redis.eval(`if redis.call('get', KEYS[1]) and cjson.decode(redis.call('get', KEYS[1])).runId == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`, 1, this.k('fix', rule, target), runId);
  }

  // ---- counters and replay protection ----

  /** Counts a decision not to act, by reason, shared by every process (/metrics reads it). */
  async count(reason: string): Promise<void> {
    await this.redis.hincrby(this.k('decisions'), reason, 1);
  }

  async counts(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.k('decisions'));
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /** True the first time an id is seen within `seconds` (SET NX EX): a replayed request is refused. */
  async firstSeen(kind: string, id: string, seconds: number): Promise<boolean> {
    return (await this.redis.set(this.k('seen', kind, id), '1', 'EX', seconds, 'NX')) === 'OK';
  }

  /** Forgets an id (its handling failed: the sender's retry must be handled). */
  async forget(kind: string, id: string): Promise<void> {
    await this.redis.del(this.k('seen', kind, id));
  }
}
