import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { decideApproval, lift, OperatorInputError, pause, resume, status, type Operator } from '../run/operator.js';
import { readsOnly, requireRole } from './roles.js';

const pauseBody = z.object({ scope: z.string().min(1), reason: z.string().min(1), by: z.string().min(1), until: z.string().optional(), for: z.string().optional() }).strict();
const resumeBody = z.object({ scope: z.string().min(1), by: z.string().min(1), reason: z.string().optional() }).strict();
const decideBody = z.object({ by: z.string().min(1) }).strict();
const liftBody = z.object({ quarantine: z.string().min(1), by: z.string().min(1), reason: z.string().optional() }).strict();

/**
 * The kill switch and the safety state over HTTP (ADMIN_TOKEN as a bearer token; VIEWER_TOKEN reads):
 * GET /api/safety, POST /api/pause, POST /api/resume, POST /api/quarantine/lift.
 * The admin token is shared, so the caller names itself in `by` (recorded as admin-api:BY).
 */
export function adminSafetyRouter(deps: { operator: Operator; adminToken?: string; viewerToken?: string }): Router {
  const router = express.Router();
  const auth = requireRole({ admin: deps.adminToken, viewer: deps.viewerToken }, readsOnly);
  const json = express.json({ limit: '16kb' });
  const handle = <T>(schema: z.ZodType<T>, fn: (body: T) => Promise<{ status: number; body: unknown }>) => async (req: Request, res: Response) => {
    const parsed = schema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return void res.status(400).json({ error: `${i.path.join('.') || 'body'}: ${i.message}` });
    }
    try {
      const out = await fn(parsed.data);
      res.status(out.status).json(out.body);
    } catch (err) {
      if (err instanceof OperatorInputError) return void res.status(400).json({ error: err.message });
      throw err;
    }
  };
  router.get('/api/safety', auth, async (_req, res) => {
    res.json(await status(deps.operator));
  });
  router.post('/api/pause', auth, json, handle(pauseBody, async (b) => ({ status: 201, body: { pause: await pause(deps.operator, { ...b, by: `admin-api:${b.by}` }) } })));
  router.post('/api/resume', auth, json, handle(resumeBody, async (b) => {
    const old = await resume(deps.operator, { ...b, by: `admin-api:${b.by}` });
    return old ? { status: 200, body: { resumed: old } } : { status: 404, body: { error: `${b.scope} is not paused` } };
  }));
  router.post('/api/quarantine/lift', auth, json, handle(liftBody, async (b) => {
    const q = await lift(deps.operator, { which: b.quarantine, by: `admin-api:${b.by}`, reason: b.reason });
    return q ? { status: 200, body: { lifted: q } } : { status: 404, body: { error: `${b.quarantine} is not quarantined` } };
  }));
  for (const [path, approve] of [['approve', true], ['reject', false]] as const) {
    router.post(`/api/runs/:jobId/${path}`, auth, json, async (req, res) => {
      const b = decideBody.safeParse(req.body ?? {});
      if (!b.success) return void res.status(400).json({ error: `${b.error.issues[0]!.path.join('.') || 'body'}: ${b.error.issues[0]!.message}` });
      const r = await decideApproval(deps.operator, { jobId: String(req.params.jobId), decision: approve ? 'approved' : 'rejected', by: `admin-api:${b.data.by}` });
      if (!r.ok) return void res.status(409).json({ error: r.error });
      res.json({ decision: r.decision });
    });
  }
  // A body that is not JSON is the caller's mistake: 400, not the app's 500.
  router.use((err: Error & { type?: string; status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return void res.status(400).json({ error: 'body: not JSON' });
    if (err.status === 413) return void res.status(413).json({ error: 'body too large' });
    next(err);
  });
  return router;
}
