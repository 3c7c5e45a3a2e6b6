import express, { type Router } from 'express';
import type { Pool } from 'pg';
import type { Redis } from 'ioredis';
import type { RuleTable } from '../rules/load.js';
import { withDeadline } from '../queue/queues.js';

/** GET /healthz: the process answers. GET /readyz: Redis, PostgreSQL and the rule table are usable. */
export function healthRouter(deps: { redis: Redis; pool: Pool; table: () => RuleTable | undefined }): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const check = async (p: () => Promise<unknown>) => {
      try {
        await withDeadline(p(), 1000, 'readiness');
        return { ok: true };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    };
    const [redis, postgres] = await Promise.all([check(() => deps.redis.ping()), check(() => deps.pool.query('SELECT 1'))]);
    const table = deps.table();
    const rules = table ? { ok: true, count: table.rules.length, loadedAt: table.loadedAt.toISOString() } : { ok: false, error: 'rules not loaded' };
    const ready = redis.ok && postgres.ok && rules.ok;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: { redis, postgres, rules } });
  });
  return router;
}
