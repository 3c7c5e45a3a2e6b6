import type { Redis } from 'ioredis';

// KEYS: lock, waiters. ARGV: owner, ttl ms, waiter ttl ms.
// Takes the lock (or takes back one's own, or one handed to it), leaving the line; else joins the
// line once, keeping its place. Atomic, so a release between a failed take and joining the line
// can never leave a waiter behind unseen.
const acquireScript = `
if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') or redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('lrem', KEYS[2], 0, ARGV[1])
  return 1
end
if not redis.call('lpos', KEYS[2], ARGV[1]) then redis.call('rpush', KEYS[2], ARGV[1]) end
redis.call('pexpire', KEYS[2], ARGV[3])
return 0`;
// KEYS: lock, waiters. ARGV: owner, ttl ms. Releases if owned: hands the lock to the first waiter
// (returned) or frees it (false). Handing it over keeps the line in order: a run that just arrived
// cannot take the target from one that has waited.
const releaseScript = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return false end
local nextOwner = redis.call('lpop', KEYS[2])
if nextOwner then
  redis.call('set', KEYS[1], nextOwner, 'PX', ARGV[2])
  return nextOwner
end
redis.call('del', KEYS[1])
return false`;
// PTTL rather than SET KEEPTTL, which needs Redis 6.
const handOverScript = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('pttl', KEYS[1])
if ttl > 0 then redis.call('set', KEYS[1], ARGV[2], 'PX', ttl) else redis.call('set', KEYS[1], ARGV[2]) end
return 1`;

/**
 * One remediation at a time per target (BullMQ groups are Pro-only): SET NX PX with the run id
 * as owner. The same run (a stalled job running again) may take its own lock back. A run that
 * finds the target busy joins the target's line and waits as a delayed job; the run that releases
 * the target hands the lock to the first in line (the caller wakes that job), so a busy target
 * costs a handover, not a poll every few seconds, and runs act in the order they came.
 */
export class TargetLock {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(name: string): string {
    return `${this.prefix}:lock:${name}`;
  }

  private waiters(name: string): string {
    return `${this.prefix}:lock:${name}:waiting`;
  }

  /** Takes the lock; false when another run holds it (this one then waits in line). */
  async acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(acquireScript, 2, this.key(name), this.waiters(name), owner, String(ttlMs), String(ttlMs * 2))) === 1;
  }

  /**
   * Gives the lock to another owner, keeping its expiry. A run abandoned at its deadline but still
   * running keeps the target under a name its own retry does not match, so the retry waits for it.
   */
  async handOver(name: string, from: string, to: string): Promise<boolean> {
    return (await this.redis.eval(handOverScript, 1, this.key(name), from, to)) === 1;
  }

  /**
   * Releases the lock if `owner` holds it: the first run in line now holds it (returned: wake it;
   * if it no longer exists, release on its behalf), or nobody does.
   */
  async release(name: string, owner: string, ttlMs = 360_000): Promise<string | undefined> {
    const next = await this.redis.eval(releaseScript, 2, this.key(name), this.waiters(name), owner, String(ttlMs));
    return typeof next === 'string' ? next : undefined;
  }
}
