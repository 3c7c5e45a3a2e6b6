import { formatDuration } from './duration.js';

/**
 * Deadlines that fire. Not AbortSignal.timeout / AbortSignal.any: on Node 20 a signal made by
 * AbortSignal.any holds its sources only weakly, and a timeout signal's timer holds its signal
 * weakly too, so after a garbage collection the timeout signal is gone and never aborts anything
 * (https://github.com/nodejs/node/issues/57736). Here the timer's callback holds the controller
 * until it fires or dispose() clears it, and parents are followed through plain listeners that
 * dispose() removes, so a long-lived parent (the worker's shutdown signal) does not keep one
 * listener per finished run.
 */

/**
 * The abort reason of a deadline: which deadline ended the work and how long it was, so a run's
 * message says "rule timeout of 5s reached" rather than the timeout of whatever request was in flight.
 */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
  constructor(
    /** Which deadline: "rule timeout", "request timeout", "shutdown grace period"... */
    readonly which: string,
    readonly ms: number,
    message = `${which} of ${formatDuration(ms)} reached`,
  ) {
    super(message);
  }
}

/** The message of an abort reason, for an error: a DeadlineError names the deadline that fired. */
export function abortMessage(reason: unknown): string {
  return reason instanceof Error && reason.message ? reason.message : 'aborted';
}

export interface Deadline {
  /**
   * Aborts when the time is up (reason: a DeadlineError naming this deadline) or when a parent
   * aborts (reason: the parent's, so an outer deadline keeps its own name).
   */
  readonly signal: AbortSignal;
  /**
   * Settles like `work`, or rejects with the signal's reason as soon as it aborts, whichever
   * comes first: bounds work that ignores the signal. Such work goes on in the background; its
   * late outcome is dropped here (never an unhandled rejection), so watch `work` if it matters.
   */
  race<T>(work: Promise<T>): Promise<T>;
  /** Clears the timer and the listeners on the parents. Call it in a finally; twice is fine. */
  dispose(): void;
}

/** setTimeout fires at once (with a warning) above this; longer deadlines re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A deadline of `ms` named `which`, also aborted by any of `parents` (undefined ones are skipped).
 * An Infinity `ms` makes one that only follows its parents.
 */
export function deadline(which: string, ms: number, parents: readonly (AbortSignal | undefined)[] = []): Deadline {
  const ac = new AbortController();
  const followed: [AbortSignal, () => void][] = [];
  let timer: NodeJS.Timeout | undefined;

  const dispose = () => {
    clearTimeout(timer);
    timer = undefined;
    for (const [parent, listener] of followed) parent.removeEventListener('abort', listener);
    followed.length = 0;
  };
  const abort = (reason: unknown) => {
    dispose();
    if (!ac.signal.aborted) ac.abort(reason);
  };

  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      abort(parent.reason);
      break;
    }
    const listener = () => abort(parent.reason);
    parent.addEventListener('abort', listener, { once: true });
    followed.push([parent, listener]);
  }
  if (!ac.signal.aborted && Number.isFinite(ms)) {
    const arm = (left: number) => {
      timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : abort(new DeadlineError(which, ms))), Math.min(Math.max(left, 0), MAX_TIMER_MS));
    };
    arm(ms);
  }

  return {
    signal: ac.signal,
    race<T>(work: Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (ac.signal.aborted) reject(ac.signal.reason);
        const onAbort = () => reject(ac.signal.reason);
        ac.signal.addEventListener('abort', onAbort, { once: true });
        // Handles work's rejection even after the abort has won, then drops the listener.
        void work.then(resolve, reject).finally(() => ac.signal.removeEventListener('abort', onAbort));
      });
    },
    dispose,
  };
}

/**
 * Settles like `work`, or rejects after `ms` with an error naming what was waited for
 * ("queue state: no answer within 1000 ms"). For a promise that takes no signal (a Redis or
 * PostgreSQL call): the call goes on in the background, its late outcome is dropped.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineError(what, ms, `${what}: no answer within ${formatDuration(ms)}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
  }
}
