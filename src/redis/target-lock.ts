import type { Redis } from 'ioredis';

const releaseScript = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
// PTTL rather than SET KEEPTTL, which needs Redis 6.
const handOverScript = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('pttl', KEYS[1])
if ttl > 0 then redis.call('set', KEYS[1], ARGV[2], 'PX', ttl) else redis.call('set', KEYS[1], ARGV[2]) end
return 1`;

/**
 * One remediation at a time per target (BullMQ groups are Pro-only): SET NX PX with the run id
 * as owner. The same run (a stalled job running again) may take its own lock back.
 */
export class TargetLock {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(name: string): string {
    return `${this.prefix}:lock:${name}`;
  }

  async acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const key = this.key(name);
    if ((await this.redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK') return true;
    if ((await this.redis.get(key)) === owner) {
      await this.redis.pexpire(key, ttlMs);
      return true;
    }
    return false;
  }

  /**
   * Gives the lock to another owner, keeping its expiry. A run abandoned at its deadline but still
   * running keeps the target under a name its own retry does not match, so the retry waits for it.
   */
  async handOver(name: string, from: string, to: string): Promise<boolean> {
    return (await this.redis.eval(handOverScript, 1, this.key(name), from, to)) === 1;
  }

  async release(name: string, owner: string): Promise<void> {
    await this.redis.eval(releaseScript, 1, this.key(name), owner);
  }
}
