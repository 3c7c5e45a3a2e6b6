import { isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';

/** Wrong tokens per client and minute before the login answers 429 for the rest of that minute. */
export const LOGIN_FAILURES_PER_MINUTE = 20;

/**
 * Counts wrong tokens per client, in Redis: an attacker slows only their own address, and the
 * count is the same on every receiver process (more replicas do not buy more guesses). The window
 * starts at a client's first wrong token and lasts a minute.
 */
export class LoginLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly limit = LOGIN_FAILURES_PER_MINUTE,
  ) {}

  private key(client: string): string {
    return `${this.prefix}:ui:login-failures:${client}`;
  }

  /** Seconds this client must wait, or undefined when it may try. */
  async wait(client: string): Promise<number | undefined> {
    const [[, count], [, ttl]] = (await this.redis.multi().get(this.key(client)).pttl(this.key(client)).exec()) as [[null, string | null], [null, number]];
    return Number(count) >= this.limit ? Math.max(1, Math.ceil(ttl / 1000)) : undefined;
  }

  async failed(client: string): Promise<void> {
    const key = this.key(client);
    // SET NX starts the window once; INCR counts within it.
    await this.redis.multi().set(key, '0', 'PX', WINDOW_MS, 'NX').incr(key).exec();
  }
}

const WINDOW_MS = 60_000;

/**
 * The client a login attempt counts against: its address (as express sees it, so behind a
 * reverse proxy set express's "trust proxy" or every client is the proxy), IPv6 by /64, the
 * block one host usually holds.
 */
export function clientOf(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!isIPv6(ip)) return ip;
  return `${expandV6(ip).slice(0, 4).join(':')}::/64`;
}

function expandV6(ip: string): string[] {
  const [head, tail] = ip.split('%')[0]!.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
