import {
  LogLevel, WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebAPIRequestError, WebClient, type Logger as SlackLogger,
} from '@slack/web-api';
import { PermanentError, RateLimitedError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../log.js';

/** Slack's own transient `ok:false` codes; every other code is final (docs: per-method "Errors"). */
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited', 'team_added_to_org']);

/**
 * The WebClient remediator uses: rate limits are thrown to us (WebAPIRateLimitedError) instead of
 * pausing the client's whole queue (the notification worker pauses just that channel), and the SDK
 * never retries by itself (the outbox does).
 */
export function createSlackClient(o: { token: string; apiUrl?: string; timeoutMs?: number; log?: Logger }): WebClient {
  return new WebClient(o.token, {
    slackApiUrl: o.apiUrl ?? 'https://slack.com/api/',
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: o.timeoutMs ?? 10_000,
    logger: slackLogger(o.log ?? silentLogger),
  });
}

/**
 * One Slack call, its errors in the taxonomy of src/core/errors.ts: 429 -> RateLimitedError with
 * Slack's Retry-After; `ok:false` -> PermanentError except Slack's own transient codes; network
 * errors and 5xx -> plain errors (retried). https://docs.slack.dev/apis/web-api/rate-limits
 */
export async function slackCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WebAPIRateLimitedError) throw new RateLimitedError(`Slack ${what}: rate limited, retry after ${err.retryAfter}s`, Math.max(1, err.retryAfter) * 1000);
    if (err instanceof WebAPIPlatformError) {
      const code = String(err.data.error);
      if (TRANSIENT.has(code)) throw new Error(`Slack ${what}: ${code}`);
      throw new PermanentError('bad_request', `Slack ${what}: ${code}`, { error: code, method: what });
    }
    if (err instanceof WebAPIHTTPError) throw new Error(`Slack ${what}: HTTP ${err.statusCode}`);
    if (err instanceof WebAPIRequestError) throw new Error(`Slack ${what}: request failed: ${err.original.message}`);
    throw err;
  }
}

/** The SDK's logger interface onto ours: its warnings and errors, never request bodies (debug). */
function slackLogger(log: Logger): SlackLogger {
  let level = LogLevel.WARN;
  const l = log.child({ component: 'slack-web-api' });
  const text = (m: unknown[]) => m.map((x) => (x instanceof Error ? x.message : String(x))).join(' ');
  return {
    debug: () => {},
    info: () => {},
    warn: (...m: unknown[]) => l.warn(text(m)),
    error: (...m: unknown[]) => l.error(text(m)),
    setLevel: (v: LogLevel) => void (level = v),
    getLevel: () => level,
    setName: () => {},
  };
}
