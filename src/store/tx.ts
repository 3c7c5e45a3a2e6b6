import type pg from 'pg';

/**
 * Runs `fn` with one client checked out of the pool. While a client is out of the pool, pg-pool
 * no longer listens for its 'error' events; a backend that dies then (PostgreSQL restarted, the
 * connection terminated) emits 'error' on the client, and an 'error' event without a listener
 * kills the process. So a listener is held for as long as the client is out, and a client that
 * failed is destroyed on release instead of going back to the pool (`discard` asks for that too,
 * e.g. for a session that could not give back an advisory lock).
 */
export async function withClient<R>(pool: pg.Pool, fn: (db: pg.PoolClient, discard: (err: Error) => void) => Promise<R>): Promise<R> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    return await fn(client, onError);
  } catch (err) {
    // A query error on a healthy connection keeps the client; a connection-level one does not.
    if (isConnectionError(err)) broken ??= err as Error;
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** Runs `fn` in one transaction on one pooled connection: COMMIT on success, ROLLBACK on any error. */
export async function inTransaction<R>(pool: pg.Pool, fn: (db: pg.PoolClient) => Promise<R>): Promise<R> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '53300']);

/**
 * PostgreSQL unreachable or the connection lost (as opposed to a statement it refused): worth
 * waiting for, never a reason to give up on what we were writing.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code;
  if (code && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|terminating connection|the database system is (starting up|shutting down)/i.test(err.message);
}

/**
 * Counts every statement sent through the pool's clients (pool.query and checked-out clients
 * alike): what the bookkeeping costs PostgreSQL, for /metrics and the benchmarks.
 */
export function countStatements(pool: pg.Pool, count: () => void): void {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...a: unknown[]) => unknown;
    (client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
      count();
      return query(...a);
    };
  });
}
