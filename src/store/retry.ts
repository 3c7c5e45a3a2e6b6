import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { isConnectionError } from './tx.js';

/**
 * Runs a write to PostgreSQL until PostgreSQL takes it. A PostgreSQL outage must cost delay, never
 * the record of what happened, and never an attempt of the job that was writing: so connection
 * errors are waited out (backoff up to 5 s), and anything else (a statement PostgreSQL refused)
 * is thrown at once. `signal` (shutdown) ends the wait with the last error.
 */
export async function untilStored<T>(what: string, fn: () => Promise<T>, o: { log: Logger; signal?: AbortSignal }): Promise<T> {
  let delay = 250;
  let since: number | undefined;
  for (;;) {
    try {
      const out = await fn();
      if (since !== undefined) o.log.info('postgres reachable again: audit write done', { what, waitedMs: Date.now() - since });
      return out;
    } catch (err) {
      if (!isConnectionError(err) || o.signal?.aborted) throw err;
      if (since === undefined) {
        since = Date.now();
        o.log.warn('postgres unavailable: audit write waits for it', { what, error: (err as Error).message });
      }
      await sleep(delay, undefined, o.signal ? { signal: o.signal } : undefined).catch(() => {});
      delay = Math.min(5000, delay * 2);
    }
  }
}
