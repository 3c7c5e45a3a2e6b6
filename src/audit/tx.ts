import type pg from 'pg';

/** Runs `fn` in one transaction on one pooled connection: COMMIT on success, ROLLBACK on any error. */
export async function inTransaction<R>(pool: pg.Pool, fn: (db: pg.PoolClient) => Promise<R>): Promise<R> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
