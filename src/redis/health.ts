import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/**
 * One Redis outage, one pair of log lines. A process holds several connections (producer, plain,
 * worker, locks), each retrying every 200 ms to 2 s, and BullMQ's workers report every failed
 * blocking call: logged as they come, an outage would be several lines a second. This watches
 * every connection: "redis unreachable" when the first one loses Redis, "redis reachable again"
 * when none is down any more.
 */
export class RedisHealth {
  private readonly down = new Set<string>();
  private since: number | undefined;
  constructor(private readonly log: Logger, private readonly now: () => number = Date.now) {}

  watch(conn: Redis, name: string): void {
    conn.on('error', (err: Error) => this.lost(name, err));
    conn.on('ready', () => this.back(name));
    // Closed by us (shutdown): no longer a connection that can be down.
    conn.on('end', () => this.back(name, true));
  }

  /** Whether an outage is in progress (for readiness). */
  get unreachable(): boolean {
    return this.since !== undefined;
  }

  private lost(name: string, err: Error): void {
    this.down.add(name);
    if (this.since !== undefined) return;
    this.since = this.now();
    this.log.warn('redis unreachable', { connection: name, error: err.message, code: (err as { code?: string }).code });
  }

  private back(name: string, closed = false): void {
    if (!this.down.delete(name) || this.down.size > 0 || this.since === undefined) return;
    const downMs = this.now() - this.since;
    this.since = undefined;
    if (!closed) this.log.info('redis reachable again', { downMs });
  }
}

const connectionCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * A Redis connection failure (as opposed to a bug or a refused command): the connection's own
 * RedisHealth logs the outage, so callers drop these instead of logging each one.
 */
export function isRedisConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && connectionCodes.has(e.code)) return true;
  return typeof e?.message === 'string' && /Connection is closed|connect ECONNREFUSED|connect ETIMEDOUT|Stream isn't writeable|read ECONNRESET|write EPIPE|Reached the max retries per request limit/i.test(e.message);
}
