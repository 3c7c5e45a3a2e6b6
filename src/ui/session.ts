import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { safeEqual } from '../receivers/auth.js';
import type { Role, Tokens } from '../receivers/roles.js';

/** The session cookie's name; the cookie is HttpOnly, SameSite=Strict, Path=/ui. */
export const SESSION_COOKIE = 'remediator_ui';
/** How long a login lasts. */
export const SESSION_MS = 12 * 3600_000;

/** A logged-in person, as every request of theirs sees it. */
export interface Session {
  role: Role;
  /** Who logged in, as they named themselves; operator actions are recorded as `ui:NAME`. */
  name: string;
  /** Carried by every form of this session: a page of another site cannot know it. */
  csrf: string;
  createdAt: Date;
  expiresAt: Date;
}

interface Stored {
  /** An HMAC of the token used to log in: says the role, and a rotated token ends the session. */
  tag: string;
  name: string;
  csrf: string;
  createdAt: string;
  expiresAt: string;
}

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Server-side sessions in Redis, so that logging out ends a session for good, and every receiver
 * process (and the next one, after a restart) knows the same sessions. The cookie holds only a
 * random id; Redis holds its SHA-256 (a copy of Redis does not hand out working cookies) and
 * never a token.
 */
export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly tokens: Tokens,
    private readonly now: () => number = Date.now,
  ) {}

  private key(cookie: string): string {
    return `${this.prefix}:ui:session:${createHash('sha256').update(cookie).digest('hex')}`;
  }

  private static tag(token: string): string {
    return createHmac('sha256', token).update('remediator-ui-session-v2').digest('base64url');
  }

  /** Starts a session for someone who gave `token` (already checked to grant `role`). */
  async create(token: string, name: string): Promise<{ cookie: string; maxAgeMs: number }> {
    const cookie = randomBytes(32).toString('base64url');
    const now = this.now();
    const stored: Stored = {
      tag: SessionStore.tag(token), name, csrf: randomBytes(24).toString('base64url'),
      createdAt: new Date(now).toISOString(), expiresAt: new Date(now + SESSION_MS).toISOString(),
    };
    await this.redis.set(this.key(cookie), JSON.stringify(stored), 'PX', SESSION_MS);
    return { cookie, maxAgeMs: SESSION_MS };
  }

  /** The session of a cookie value, or undefined (unknown, ended, expired, or its token rotated). */
  async get(cookie: string | undefined): Promise<Session | undefined> {
    if (!cookie || !COOKIE_VALUE.test(cookie)) return undefined;
    const raw = await this.redis.get(this.key(cookie));
    if (!raw) return undefined;
    const s = JSON.parse(raw) as Stored;
    const expiresAt = new Date(s.expiresAt);
    if (!(expiresAt.getTime() > this.now())) return undefined;
    const role = this.roleOf(s.tag);
    if (!role) return undefined;
    return { role, name: s.name, csrf: s.csrf, createdAt: new Date(s.createdAt), expiresAt };
  }

  /** Ends a session everywhere at once; true when there was one. */
  async revoke(cookie: string): Promise<boolean> {
    if (!COOKIE_VALUE.test(cookie)) return false;
    return (await this.redis.del(this.key(cookie))) > 0;
  }

  private roleOf(tag: string): Role | undefined {
    const matches = (t: string | undefined) => t !== undefined && safeEqual(tag, SessionStore.tag(t));
    return matches(this.tokens.admin) ? 'operator' : matches(this.tokens.viewer) ? 'viewer' : undefined;
  }
}

/** One cookie's value from a Cookie header (no dependency for this one read). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
