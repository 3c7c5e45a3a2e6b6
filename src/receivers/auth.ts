import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time string comparison (hashing first makes the lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * Checks an Authorization header against a bearer token and/or basic credentials
 * (`user:password`), as Alertmanager's http_config sends them. With neither configured,
 * everything is accepted (src/service.ts warns about it at start).
 */
export function checkAuthorization(header: string | undefined, creds: { token?: string; basic?: string }): boolean {
  if (!creds.token && !creds.basic) return true;
  if (!header) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && creds.token) return safeEqual(value, creds.token);
  if (scheme === 'basic' && creds.basic) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return safeEqual(decoded, creds.basic);
  }
  return false;
}
