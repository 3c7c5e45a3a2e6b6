import type { Redis } from 'ioredis';
import pg from 'pg';
import type { Config } from '../config.js';
import { postgresError, redisError } from '../core/dependencies.js';
import { silentLogger } from '../log.js';
import { redisConnection } from '../redis/connection.js';
import { RedisHealth } from '../redis/health.js';
import { migrate } from '../store/migrate.js';

/**
 * Redis for a CLI command, as the service connects (REDIS_URL, or REDIS_CLUSTER_NODES): connected,
 * or a DependencyError naming Redis, its variable and the fix (exit 1), never ioredis' own
 * "Unhandled error event" stack.
 */
export async function cliRedis(config: Config, timeoutMs = 3000): Promise<Redis> {
  // Fail-fast, as the service's producer: BullMQ queues (a run released after an approval) use it too.
  const conn = redisConnection(config.REDIS_URL, 'producer', new RedisHealth(silentLogger), 'cli', config.REDIS_CLUSTER_NODES);
  try {
    await new Promise<void>((resolve, reject) => {
      if (conn.status === 'ready') return resolve();
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      conn.once('ready', () => (clearTimeout(timer), resolve()));
      conn.once('error', (err: Error) => (clearTimeout(timer), reject(err)));
    });
    return conn;
  } catch (err) {
    conn.disconnect();
    throw redisError(err, config.REDIS_URL);
  }
}

/** PostgreSQL for a CLI command, migrated; a DependencyError as the service says it when it is down. */
export async function cliPool(config: Config): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {}); // an idle client dropped by the server: the next query says it
  try {
    await migrate(pool, config.DATABASE_SCHEMA);
    return pool;
  } catch (err) {
    await pool.end().catch(() => {});
    throw postgresError(err, config.DATABASE_URL, `migrating schema ${config.DATABASE_SCHEMA}`);
  }
}
