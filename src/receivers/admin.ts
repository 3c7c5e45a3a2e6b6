import express, { type Router } from 'express';
import { z } from 'zod';
import { decodeCursor, type RunReader } from '../store/runs.js';
import { readsOnly, requireRole } from './roles.js';

const query = z
  .object({
    rule: z.string().optional(),
    status: z.enum(['queued', 'running', 'retrying', 'succeeded', 'failed', 'skipped', 'dry_run', 'notified']).optional(),
    fingerprint: z.string().optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z.string().datetime({ offset: true }).optional(),
    /** The `next` of the previous page. */
    cursor: z.string().max(400).optional(),
  })
  .strict();

/**
 * The audit of remediation runs, newest first. Every /api route goes through this router first:
 * reads need VIEWER_TOKEN or ADMIN_TOKEN as a bearer token, anything else ADMIN_TOKEN.
 */
export function adminRouter(deps: { runs: RunReader; adminToken?: string; viewerToken?: string }): Router {
  const router = express.Router();
  router.use('/api', requireRole({ admin: deps.adminToken, viewer: deps.viewerToken }, readsOnly));
  router.get('/api/runs', async (req, res) => {
    const q = query.safeParse(req.query);
    if (!q.success) {
      const i = q.error.issues[0]!;
      res.status(400).json({ error: `${i.path.join('.') || 'query'}: ${i.message}` });
      return;
    }
    const cursor = q.data.cursor === undefined ? undefined : decodeCursor(q.data.cursor);
    if (q.data.cursor !== undefined && !cursor) {
      res.status(400).json({ error: 'cursor: not a cursor from a previous page (use its "next")' });
      return;
    }
    const page = await deps.runs.listRuns({ ...q.data, state: q.data.status, before: q.data.before ? new Date(q.data.before) : undefined, cursor });
    res.json(page.next ? page : { runs: page.runs });
  });
  router.get('/api/runs/:jobId', async (req, res) => {
    const run = await deps.runs.getRun(req.params.jobId);
    if (!run) {
      res.status(404).json({ error: 'no such run' });
      return;
    }
    res.json({ run, events: await deps.runs.runEvents(run.job_id) });
  });
  return router;
}
