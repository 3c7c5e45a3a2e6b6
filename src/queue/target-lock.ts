import type { Redis } from 'ioredis';

const releaseScript = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

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

  async release(name: string, owner: string): Promise<void> {
    await this.redis.eval(releaseScript, 1, this.key(name), owner);
  }
}
