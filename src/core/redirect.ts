/**
 * No outbound call of remediator follows a redirect. A target, hook or API that answers 3xx is
 * refused with an error naming where it pointed: following it would send the request (and its
 * Authorization header) to a host or path no rule declares, and could make remediator read
 * someone else's answer ("the breaker is closed") as the target's.
 *
 * Each client is told not to follow (fetch `redirect: 'manual'`, node-fetch the same, see the
 * callers) and turns a 3xx into its own permanent error with `redirectMessage`.
 */

/** fetch init that makes a 3xx come back as the answer instead of being followed. */
export const MANUAL_REDIRECT = { redirect: 'manual' } as const;

/** 3xx, or the opaque answer a browser-style fetch gives for a redirect in manual mode. */
export function isRedirect(res: { status: number; type?: string }): boolean {
  return (res.status >= 300 && res.status < 400) || res.type === 'opaqueredirect';
}

/**
 * The Location of a redirect, resolved against the request URL, without credentials and with the
 * query cut off (a signed or SSO URL carries tokens there): safe for errors, logs and the audit.
 */
export function redirectLocation(location: string | null | undefined, requestUrl: string): string {
  if (!location) return '(no Location header)';
  try {
    const u = new URL(location, requestUrl);
    u.username = '';
    u.password = '';
    const cut = u.search ? '?...' : '';
    u.search = '';
    u.hash = '';
    return `${u.toString()}${cut}`;
  } catch {
    return '(unparseable Location header)';
  }
}

/** "GET http://x/status: HTTP 302 redirect to http://y/ refused: remediator never follows redirects ..." */
export function redirectMessage(what: string, status: number, location: string): string {
  const code = status ? `HTTP ${status} ` : '';
  return `${what}: ${code}redirect to ${location} refused: remediator never follows redirects; configure the final URL`;
}

/** A 3xx that was not followed (thrown by `noRedirectFetch`). */
export class RedirectRefusedError extends Error {
  override readonly name = 'RedirectRefusedError';
  constructor(
    readonly status: number,
    /** As `redirectLocation` gives it: resolved, no credentials, no query. */
    readonly location: string,
    what: string,
  ) {
    super(redirectMessage(what, status, location));
  }
}

/**
 * A fetch for SDKs that take one (the Slack WebClient): never follows a redirect, whatever its
 * caller asks, and throws RedirectRefusedError on a 3xx, so the SDK cannot treat it as an answer.
 */
export function noRedirectFetch(f: typeof fetch = globalThis.fetch): typeof fetch {
  return async (input, init) => {
    const res = await f(input, { ...init, ...MANUAL_REDIRECT });
    if (!isRedirect(res)) return res;
    const url = input instanceof Request ? input.url : String(input);
    await res.body?.cancel().catch(() => {});
    throw new RedirectRefusedError(res.status, redirectLocation(res.headers.get('location'), url), `${init?.method ?? 'GET'} ${redirectLocation(url, url)}`);
  };
}
