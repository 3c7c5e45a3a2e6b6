import { createHmac, randomBytes } from 'node:crypto';
import { safeEqual } from '../receivers/auth.js';

/** The session cookie's name; the cookie is HttpOnly, SameSite=Strict, Path=/ui. */
export const SESSION_COOKIE = 'remediator_ui';
/** How long a login lasts. */
export const SESSION_MS = 12 * 3600_000;

/**
 * Signed sessions for the status page. The cookie holds `expiry.nonce.hmac`, never the admin
 * token: the HMAC key is derived from ADMIN_TOKEN, so every replica accepts the cookie, and
 * rotating the token logs everyone out.
 */
export class Sessions {
  private readonly key: Buffer;
  constructor(adminToken: string, private readonly now: () => number = Date.now) {
    this.key = createHmac('sha256', adminToken).update('remediator-ui-session-v1').digest();
  }

  issue(): { value: string; maxAgeMs: number } {
    const body = `${this.now() + SESSION_MS}.${randomBytes(16).toString('base64url')}`;
    return { value: `${body}.${this.sign(body)}`, maxAgeMs: SESSION_MS };
  }

  valid(value: string | undefined): boolean {
    if (!value) return false;
    const dot = value.lastIndexOf('.');
    if (dot < 0) return false;
    const body = value.slice(0, dot);
    if (!safeEqual(value.slice(dot + 1), this.sign(body))) return false;
    const expires = Number(body.split('.')[0]);
    return Number.isFinite(expires) && expires > this.now();
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
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
