import { DeadlineError } from '../core/deadline.js';

/**
 * The error taxonomy. A remediation throws a PermanentError when retrying cannot help
 * (target not declared, forbidden, 4xx, bad params, nothing left to do it with); anything
 * else is transient and retried with the rule's backoff. Only the worker wrapper
 * (src/queue/remediation-worker.ts) maps PermanentError to BullMQ's UnrecoverableError.
 */
export type FailureReason =
  | 'refused_target'
  | 'forbidden'
  | 'not_found'
  | 'bad_request'
  /** The target, hook or API answered 3xx: never followed (src/core/redirect.ts). */
  | 'redirected'
  | 'bad_params'
  /** A secret a target or rule names (`token_env`, `url_env`) is not set in the worker's environment. */
  | 'missing_secret'
  | 'verification_failed'
  | 'no_spare'
  | 'rule_removed'
  | 'unavailable'
  | 'timeout'
  | 'error';

export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class TransientError extends Error {
  override readonly name = 'TransientError';
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly details: Record<string, unknown> = {},
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
