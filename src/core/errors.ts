import { DeadlineError } from './deadline.js';

/**
 * The one error taxonomy, for remediations, notifiers and dependencies alike. Code that calls out
 * throws a PermanentError when retrying cannot help (target not declared, forbidden, a 4xx, bad
 * params, nothing left to do it with), a RateLimitedError when the other side asked to wait, and
 * anything else is transient and retried with backoff. Each worker maps these to BullMQ in one
 * place (a PermanentError becomes UnrecoverableError); the reason is an audit field and a metric label.
 */
export type FailureReason =
  | 'refused_target'
  | 'forbidden'
  | 'not_found'
  | 'bad_request'
  | 'bad_params'
  /** A secret a target or rule names (`token_env`, `url_env`) is not set in the worker's environment. */
  | 'missing_secret'
  | 'verification_failed'
  | 'no_spare'
  | 'rule_removed'
  | 'unavailable'
  | 'rate_limited'
  | 'timeout'
  | 'error';

export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class TransientError extends Error {
  override readonly name: string = 'TransientError';
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The other side said "too many": try again after `retryAfterMs`, without counting it as a failure. */
export class RateLimitedError extends TransientError {
  override readonly name = 'RateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super('rate_limited', message, { retryAfterMs });
  }
}

/**
 * A dependency (PostgreSQL, Redis) that is down or refuses us, in plain words: which one, which
 * variable points at it, and what to do (src/core/dependencies.ts builds these).
 */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly dependency: 'PostgreSQL' | 'Redis',
    message: string,
    /** What to do about it, for the person reading the error. */
    readonly fix: string,
  ) {
    super(message);
  }
}

/** The audit reason of any thrown value. */
export function reasonOf(err: unknown): FailureReason {
  if (err instanceof PermanentError || err instanceof TransientError) return err.reason;
  // A deadline that fired (src/core/deadline.ts), or an abort / timeout from a library's own timer.
  if (err instanceof DeadlineError) return 'timeout';
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  return 'error';
}
