import express, { type Request, type Response, type Router } from 'express';
import { decideApproval, lift, OperatorInputError, pause, resume, type Operator } from '../run/operator.js';
import type { Session } from './session.js';

/** Where an action may send the browser back to: a page of ours, never another site. */
export function backTo(v: unknown): string {
  return typeof v === 'string' && /^\/ui(\/|\?|$)/.test(v) && !v.startsWith('//') && !/[\\\r\n]/.test(v) ? v : '/ui';
}

type Fail = (res: Response, status: number, message: string) => void;

/**
 * The operator buttons of the status page: pause, resume, lift, approve, reject; the same
 * functions as the admin API, the CLI and Slack, recorded as `ui:NAME`. The router in front has
 * already checked the session is an operator's, its CSRF token, and that the request is same-site.
 */
export function actionsRouter(deps: { operator: Operator; session: (res: Response) => Session; fail: Fail }): Router {
  const router = express.Router();
  const field = (req: Request, name: string) => (typeof req.body?.[name] === 'string' ? (req.body[name] as string).trim() : '');
  const by = (res: Response) => `ui:${deps.session(res).name}`;
  const done = (req: Request, res: Response) => res.redirect(303, backTo(req.body?.back));
  const run = (fn: (req: Request, res: Response) => Promise<string | undefined>) => async (req: Request, res: Response) => {
    try {
      const refused = await fn(req, res);
      if (refused) return deps.fail(res, 409, refused);
      done(req, res);
    } catch (err) {
      if (err instanceof OperatorInputError) return deps.fail(res, 400, err.message);
      throw err;
    }
  };

  router.post('/ui/actions/pause', run(async (req, res) => {
    await pause(deps.operator, { scope: field(req, 'scope'), reason: field(req, 'reason'), by: by(res), ...(field(req, 'for') ? { for: field(req, 'for') } : {}) });
    return undefined;
  }));
  router.post('/ui/actions/resume', run(async (req, res) => {
    const scope = field(req, 'scope');
    return (await resume(deps.operator, { scope, by: by(res) })) ? undefined : `${scope} is not paused (any more)`;
  }));
  router.post('/ui/actions/lift', run(async (req, res) => {
    const which = field(req, 'quarantine');
    return (await lift(deps.operator, { which, by: by(res) })) ? undefined : `${which} is not quarantined (any more)`;
  }));
  for (const [path, approve] of [['approve', true], ['reject', false]] as const) {
    router.post(`/ui/actions/${path}`, run(async (req, res) => {
      const jobId = field(req, 'job');
      if (!jobId) throw new OperatorInputError('job: which run');
      const r = await decideApproval(deps.operator, { jobId, decision: approve ? 'approved' : 'rejected', by: by(res) });
      return r.ok ? undefined : r.error;
    }));
  }
  return router;
}
