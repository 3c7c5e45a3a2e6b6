import type { Request } from 'express';

/**
 * Why a state-changing request (login, logout, operator actions) looks cross-site, or undefined.
 * The rule of Go's net/http CrossOriginProtection (https://pkg.go.dev/net/http#CrossOriginProtection):
 * every current browser sends Sec-Fetch-Site, which must be same-origin (or none: typed by the user);
 * without it, an Origin header must name this host; a request with neither comes from no browser
 * (curl, a script) and cannot have been forged by another site's page.
 */
export function crossSite(req: Request): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin' || site === 'none' ? undefined : `Sec-Fetch-Site is ${site}`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  try {
    if (new URL(origin).host === req.headers.host) return undefined;
  } catch {
    // "null" (a sandboxed frame, a redirect) or garbage: not this site.
  }
  return `Origin ${origin} is not this site`;
}
