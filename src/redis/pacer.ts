import type { Redis } from 'ioredis';

// Token bucket per destination. KEYS: bucket hash. ARGV: now ms, rate per second, burst.
// Returns 0 when a token was taken, else the ms until one will be there (or until a pause ends).
const TAKE = `
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'until')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
local pausedUntil = tonumber(b[3]) or 0
if pausedUntil > now then return pausedUntil - now end
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
  return math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return 0
`;

/** How fast a destination takes calls: `rate` per second with bursts of `burst`. */
export interface Pace {
  rate: number;
  burst: number;
}

/**
 * Paces the calls to each destination, shared by every process (Redis), so that a channel or a
 * routing key is sent no faster than the service allows: Slack posts about 1 message per second
 * per channel with short bursts, PagerDuty takes 120 events per minute per routing key. A 429's
 * Retry-After pauses the whole destination, not one message.
 * https://docs.slack.dev/apis/web-api/rate-limits , https://developer.pagerduty.com/docs/events-api-v2/rate-limiting
 */
export class Pacer {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    if (!(redis as unknown as Record<string, unknown>).pacerTake) redis.defineCommand('pacerTake', { numberOfKeys: 1, lua: TAKE });
  }

  private key(destination: string): string {
    return `${this.prefix}:pace:${destination}`;
  }

  /** 0 when a call may go now (a token was taken), else how long to wait before asking again. */
  async take(destination: string, pace: Pace, now = Date.now()): Promise<number> {
    return Number(await (this.redis as unknown as { pacerTake(...a: string[]): Promise<number> }).pacerTake(this.key(destination), String(now), String(pace.rate), String(pace.burst)));
  }

  /** The destination said "not before" (429 Retry-After): nobody calls it until then. */
  async pause(destination: string, untilMs: number): Promise<void> {
    await this.redis.multi().hset(this.key(destination), 'until', String(untilMs), 'tokens', '0', 'at', String(untilMs)).pexpire(this.key(destination), 3_600_000).exec();
  }

  /** Waits (without busy-looping) until a call may go; `signal` ends the wait early. */
  async wait(destination: string, pace: Pace, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const ms = await this.take(destination, pace);
      if (ms <= 0) return;
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }
}
