import type { Logger } from './log.js';

/**
 * Time on top of SHUTDOWN_GRACE for the steps after the workers (queues, connections, the pool):
 * they take milliseconds when Redis and PostgreSQL answer.
 */
export const SHUTDOWN_MARGIN_MS = 5000;

export interface ShutdownOptions {
  /** Stops the service in order: HTTP server, workers (within SHUTDOWN_GRACE), queues, connections, pool. */
  close: () => Promise<void>;
  log: Logger;
  /** Past this, the process exits even when close() has not returned. */
  deadlineMs: number;
  exit?: (code: number) => void;
  /**
   * A signal this soon after the first is the same stop request, not a second one. Default 1 s.
   * `npm start` run by systemd (KillMode=control-group), a terminal's Ctrl-C or `timeout` signals
   * the whole process group: node gets the signal directly and again 1-15 ms later from npm, which
   * forwards what it receives to its child.
   */
  repeatWindowMs?: number;
  now?: () => number;
}

export const SIGNAL_REPEAT_WINDOW_MS = 1000;

/**
 * Owns the end of the process. The first SIGTERM or SIGINT starts close(); once it returns the
 * process exits 0. close() can wait forever when Redis or PostgreSQL is gone (a BullMQ worker
 * waits for its blocking connection, pool.end() for its clients), so a second signal, or the
 * deadline, exits at once with 1. A copy of the first signal arriving within `repeatWindowMs`
 * (npm forwarding what the process group already got) is not a second signal: it is logged and
 * the drain goes on; only a deliberate later signal forces. Jobs a forced exit leaves running keep their BullMQ lock until it
 * expires; then they run again elsewhere (WORKER_LOCK_MS), so nothing is lost, only delayed.
 */
export function exitOnSignals(opts: ShutdownOptions): { stop(signal: string): void } {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const now = opts.now ?? Date.now;
  const window = opts.repeatWindowMs ?? SIGNAL_REPEAT_WINDOW_MS;
  let firstAt: number | undefined;
  const stop = (signal: string) => {
    if (firstAt !== undefined) {
      const after = now() - firstAt;
      if (after < window) {
        opts.log.info('signal repeated: the same stop request, still draining (signal again later to force)', { signal, afterMs: after });
        return;
      }
      opts.log.warn('second signal during shutdown: exiting now', { signal });
      exit(1);
      return;
    }
    firstAt = now();
    opts.log.info('shutting down', { signal, deadlineMs: opts.deadlineMs });
    // Held by this closure until it fires or the process exits; not unref'd, so it fires even
    // while close() waits on a socket that will never answer.
    const timer = setTimeout(() => {
      opts.log.error('shutdown deadline reached: exiting now', { deadlineMs: opts.deadlineMs });
      exit(1);
    }, opts.deadlineMs);
    opts.close().then(
      () => {
        clearTimeout(timer);
        opts.log.info('shut down');
        exit(0);
      },
      (err: Error) => {
        clearTimeout(timer);
        opts.log.error('unclean shutdown', { error: err.message });
        exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return { stop };
}
