import express, { type Router } from 'express';
import type { Pool } from 'pg';
import type { Redis } from 'ioredis';
import type { RuleTable } from '../rules/load.js';
import type { ReloadStatus } from '../rules/reload-status.js';
import { DeadlineError, withTimeout } from '../core/deadline.js';
import { redisDown } from '../core/dependencies.js';

const DEADLINE_MS = 1000;

interface Check {
  ok: boolean;
  /** False for a dependency the webhook path does not use: reported, but readiness does not wait for it. */
  required: boolean;
  error?: string;
}

/**
 * GET /healthz: the process answers. GET /readyz: this process can accept webhooks, i.e. Redis
 * answers and the rule table is loaded. PostgreSQL is reported too, but a receiver does not
 * need it (the audit is written by workers, off the request path), so it does not gate readiness.
 * Nor does a refused rules reload (the previous table runs), but it is said, with its problems.
 */
export function healthRouter(deps: { redis: Redis; pool: Pool; table: () => RuleTable | undefined; reloads?: ReloadStatus }): Router {
  const router = express.Router();
  let redisError: string | undefined;
  deps.redis.on('error', (err: Error) => (redisError = err.message));
  deps.redis.on('ready', () => (redisError = undefined));

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const redis = async (): Promise<Check> => {
      // A fail-fast connection that is down rejects every command with ioredis' own wording; say what it means.
      if (deps.redis.status !== 'ready') return { ok: false, required: true, error: redisDown(deps.redis.status, redisError) };
      const err = await attempt(() => deps.redis.ping(), `Redis (REDIS_URL) did not answer PING within ${DEADLINE_MS} ms`);
      if (!err) return { ok: true, required: true };
      // The connection may drop between the status check and the PING.
      const dropped = deps.redis.status !== 'ready' || /isn't writeable|Connection is closed/.test(err);
      return { ok: false, required: true, error: dropped ? redisDown(deps.redis.status, redisError) : err };
    };
    const postgres = async (): Promise<Check> => {
      const err = await attempt(() => deps.pool.query('SELECT 1'), `PostgreSQL (DATABASE_URL) did not answer within ${DEADLINE_MS} ms`);
      return err
        ? { ok: false, required: false, error: `PostgreSQL (DATABASE_URL) is not usable: ${err}; webhooks are still accepted and their audit records wait in Redis until it is back` }
        : { ok: true, required: false };
    };
    const [r, p] = await Promise.all([redis(), postgres()]);
    const table = deps.table();
    const refused = deps.reloads?.refusal();
    const rules = table
      ? {
          ok: true, required: true, count: table.rules.length, loadedAt: table.loadedAt.toISOString(),
          ...(refused && {
            warning: `the rules reload at ${refused.at.toISOString()} (${refused.reason}) was refused: the edited files are not in force; the previous table (${table.rules.length} rules loaded at ${table.loadedAt.toISOString()}) keeps running`,
            problems: refused.problems,
          }),
        }
      : { ok: false, required: true, error: 'rules not loaded' };
    const ready = r.ok && rules.ok;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: { redis: r, postgres: p, rules } });
  });
  return router;
}

/** Runs `fn` with a deadline; returns the error in words, or undefined when it answered. */
async function attempt(fn: () => Promise<unknown>, late: string): Promise<string | undefined> {
  try {
    await withTimeout(fn(), DEADLINE_MS, late);
    return undefined;
  } catch (err) {
    return err instanceof DeadlineError ? late : (err as Error).message;
  }
}
