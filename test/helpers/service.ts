import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import type { Registry } from '../../src/remediations/registry.js';
import { startService, type Service } from '../../src/service.js';
import { DATABASE_URL } from './pg.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Deletes every key under a prefix (test cleanup). */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export interface TestService {
  service: Service;
  url: string;
  config: Config;
  pool: pg.Pool;
  rulesDir: string;
  writeRules(files: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the real service (receiver and workers) on 127.0.0.1:0 with its own schema, queue
 * prefix and rules directory; close() stops it and removes all three.
 */
export async function startTestService(opts: {
  rules: Record<string, string>;
  env?: Record<string, string>;
  log?: Logger;
  keep?: { schema?: string; prefix?: string };
  /** Remediations to run instead of the built-in list (a test adds one that misbehaves). */
  registry?: Registry;
}): Promise<TestService> {
  const id = randomBytes(4).toString('hex');
  const rulesDir = await mkdtemp(join(tmpdir(), 'remediator-rules-'));
  const writeRules = async (files: Record<string, string>) => {
    for (const [name, text] of Object.entries(files)) await writeFile(join(rulesDir, name), text);
  };
  await writeRules(opts.rules);
  const env = {
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL,
    REDIS_URL,
    DATABASE_SCHEMA: opts.keep?.schema ?? `it_${id}`,
    QUEUE_PREFIX: opts.keep?.prefix ?? `it-${id}`,
    RULES_DIR: rulesDir,
    WEBHOOK_TOKEN: 'test-webhook-token',
    ADMIN_TOKEN: 'test-admin-token',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SHUTDOWN_GRACE: '2000',
    // A worker-only service's metrics port: any free one, so several can run at once.
    METRICS_PORT: '0',
    ...opts.env,
  };
  const config = loadConfig(env);
  const log = opts.log ?? (env.LOG_LEVEL === 'silent' ? silentLogger : createLogger(config.LOG_LEVEL));
  const service = await startService(config, { env: { ...process.env, ...env }, log, registry: opts.registry });
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
  return {
    service,
    url: service.url ?? '',
    config,
    pool,
    rulesDir,
    writeRules,
    async close() {
      await service.close();
      if (!opts.keep?.schema) await pool.query(`DROP SCHEMA IF EXISTS "${config.DATABASE_SCHEMA}" CASCADE`);
      await pool.end();
      if (!opts.keep?.prefix) await dropPrefix(config.REDIS_URL, config.QUEUE_PREFIX);
      await rm(rulesDir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
