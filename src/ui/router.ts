import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Pool } from 'pg';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { decodeCursor, type RunReader } from '../store/runs.js';
import { alertOfRun, decisionsOfRun, ruleStats } from '../store/status.js';
import type { Logger } from '../log.js';
import type { RuleTable } from '../rules/load.js';
import type { ReloadStatus } from '../rules/reload-status.js';
import type { Operator } from '../run/operator.js';
import { safeEqual } from '../receivers/auth.js';
import { bearerRole, roleOfToken, type Role } from '../receivers/roles.js';
import { loginPage, page } from './layout.js';
import { BOARD_STYLE, STYLE } from './style.js';
import { html } from './html.js';
import type { Frame } from './frame.js';
import type { InForceSource } from './in-force.js';
import { RUN_STATES, runPage, runsPage } from './runs-page.js';
import { rulesPage } from './rules-page.js';
import { readCookie, SESSION_COOKIE, SessionStore, type Session } from './session.js';
import { clientOf, LoginLimiter } from './login-limit.js';
import { crossSite } from './same-origin.js';
import { actionsRouter, backTo } from './actions.js';
import { boardRouter } from './board.js';

export interface UiDeps {
  runs: RunReader;
  pool: Pool;
  schema: string;
  table: () => RuleTable | undefined;
  /** The queues shown by bull-board under /ui/queues (read-only). */
  queues: () => Queue[];
  /** Sessions and login attempts live here, under `prefix`, shared by every receiver process. */
  redis: Redis;
  prefix: string;
  /** Operators: everything, including the buttons. */
  adminToken?: string;
  /** Viewers: read only. */
  viewerToken?: string;
  /** Set the cookie's Secure flag (PUBLIC_URL is https). */
  secureCookie?: boolean;
  /** Pauses, quarantines, human-ack holds, waiting approvals: the banners of every page. */
  inForce?: InForceSource;
  /** The last rules reload of this process: a refused one is a banner on every page. */
  reloads?: ReloadStatus;
  /** What the operator buttons call; without it (a test app) there are no buttons' routes. */
  operator?: Operator;
  log: Logger;
}

const STATS_WINDOW_MS = 7 * 24 * 3600_000;

// Our pages run no script at all; bull-board's pages (under /ui/queues) get their own policy (board.ts).
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

interface Reader {
  role: Role;
  session?: Session;
}
const readerOf = (res: Response): Reader => res.locals.reader as Reader;

/**
 * The status page: read-only views of the audit (runs, steps, rules) and of the queues, with what
 * holds automation back on top of every page, and for operators the buttons that end it.
 * Access: a session from /ui/login (a random id in an HttpOnly, SameSite=Strict cookie; the
 * session itself in Redis, so logout ends it everywhere), or a token as a bearer header (scripts).
 */
export function uiRouter(deps: UiDeps): Router {
  const router = express.Router();
  const tokens = { admin: deps.adminToken, viewer: deps.viewerToken };
  const sessions = new SessionStore(deps.redis, deps.prefix, tokens);
  const limiter = new LoginLimiter(deps.redis, deps.prefix);
  const cookieOptions = { httpOnly: true, sameSite: 'strict' as const, secure: deps.secureCookie ?? false, path: '/ui' };

  const frameOf = async (req: Request, res: Response, path = req.originalUrl): Promise<Frame> => {
    const reader = readerOf(res);
    const inForce = deps.inForce ? await deps.inForce().catch((err: Error) => ({ error: err.message })) : undefined;
    const table = deps.table();
    return {
      reader: { role: reader.role, name: reader.session?.name, csrf: reader.session?.csrf },
      inForce, refusedReload: deps.reloads?.refusal(), path,
      ...(table ? { table: { rules: table.rules.length, loadedAt: table.loadedAt } } : {}),
    };
  };
  const fail = async (res: Response, status: number, message: string): Promise<void> => {
    // The page's own buttons return to where the refused one was pressed, not to the action's URL.
    const f = await frameOf(res.req, res, backTo(res.req.body?.back));
    sendPage(res, status, page(f, 'Not done', 'runs', html`<h1>Not done</h1><p class="error" role="alert">${message}</p>`));
  };

  router.use('/ui', (_req, res, next) => {
    res.set({
      'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'same-origin',
      'Content-Security-Policy': CSP,
    });
    next();
  });
  router.get('/ui/style.css', (_req, res) => void res.type('text/css').set('Cache-Control', 'max-age=300').send(STYLE));
  router.get('/ui/board.css', (_req, res) => void res.type('text/css').set('Cache-Control', 'max-age=300').send(BOARD_STYLE));
  router.use('/ui', (_req, res, next) => {
    if (tokens.admin || tokens.viewer) return next();
    res.status(403).type('text/plain').send('The status page is disabled: set ADMIN_TOKEN (operators) and/or VIEWER_TOKEN (read-only).');
  });
  // Another site's page must not log anyone in or out, or press a button (Origin / Sec-Fetch-Site).
  router.use('/ui', (req, res, next) => {
    const why = req.method === 'GET' || req.method === 'HEAD' ? undefined : crossSite(req);
    if (!why) return next();
    deps.log.warn('status page refused a cross-site request', { method: req.method, path: req.path, why });
    res.status(403).type('text/plain').send(`Refused: a cross-site request (${why}).`);
  });

  router.get('/ui/login', (_req, res) => sendPage(res, 200, loginPage()));
  router.post('/ui/login', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const client = clientOf(req.ip);
    const name = typeof req.body?.name === 'string' ? req.body.name.trim() : '';
    const token = typeof req.body?.token === 'string' ? req.body.token : '';
    try {
      const wait = await limiter.wait(client);
      if (wait !== undefined) return sendPage(res.set('Retry-After', String(wait)), 429, loginPage(`Too many wrong tokens from your address: wait ${wait} s.`, name));
      const role = roleOfToken(token, tokens);
      if (!role) {
        await limiter.failed(client);
        deps.log.warn('status page login refused', { ip: req.ip });
        return sendPage(res, 401, loginPage('Wrong token.', name));
      }
      if (!/^[^\x00-\x1f\x7f]{1,64}$/.test(name)) return sendPage(res, 400, loginPage('Your name: 1 to 64 characters (it is recorded with what you do).'));
      const s = await sessions.create(token, name);
      deps.log.info('status page login', { name, role });
      res.cookie(SESSION_COOKIE, s.cookie, { ...cookieOptions, maxAge: s.maxAgeMs });
      res.redirect(303, '/ui');
    } catch (err) {
      sendPage(res, 503, loginPage(`Cannot log in now: sessions are kept in Redis, which does not answer (${(err as Error).message}).`, name));
    }
  });
  router.post('/ui/logout', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = await sessions.get(cookie);
    // No session, no answer that changes anything: nothing to clear, and no Set-Cookie for a forged request.
    if (!session) return void res.status(401).type('text/plain').send('Not logged in.');
    if (!csrfOk(req, session)) return void res.status(403).type('text/plain').send('Refused: the form is not from this session (reload the page).');
    await sessions.revoke(cookie!);
    deps.log.info('status page logout', { name: session.name });
    res.clearCookie(SESSION_COOKIE, cookieOptions);
    res.redirect(303, '/ui/login');
  });

  // Everything below needs a session or a token as a bearer header.
  router.use('/ui', async (req: Request, res: Response, next: NextFunction) => {
    const bearer = bearerRole(req.headers.authorization, tokens);
    if (bearer) {
      res.locals.reader = { role: bearer } satisfies Reader;
      return next();
    }
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    let session: Session | undefined;
    try {
      session = await sessions.get(cookie);
    } catch (err) {
      res.status(503).type('text/plain').send(`Sessions are kept in Redis, which does not answer (${(err as Error).message}); retry, or send a token as a bearer header.`);
      return;
    }
    if (session) {
      res.locals.reader = { role: session.role, session } satisfies Reader;
      return next();
    }
    if (req.method === 'GET' && req.accepts(['html', 'json']) === 'html') return void res.redirect(303, '/ui/login');
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'log in at /ui/login or send a token as a bearer header' });
  });

  // Operator buttons: an operator's session (its name is recorded) and the session's CSRF token.
  router.use('/ui/actions', express.urlencoded({ extended: false, limit: '4kb' }), (req, res, next) => {
    const { role, session } = readerOf(res);
    if (!session) return void res.status(403).type('text/plain').send('The buttons need a logged-in session; scripts use /api with ADMIN_TOKEN.');
    if (role !== 'operator') return void res.status(403).type('text/plain').send('Viewers only read: log in with the operator token (ADMIN_TOKEN) to act.');
    if (!csrfOk(req, session)) return void res.status(403).type('text/plain').send('Refused: the form is not from this session (reload the page).');
    next();
  });
  if (deps.operator) router.use(actionsRouter({ operator: deps.operator, session: (res) => readerOf(res).session!, fail }));

  router.get('/ui', async (req, res) => {
    const f = await frameOf(req, res);
    const q = (name: string) => (typeof req.query[name] === 'string' && req.query[name] ? (req.query[name] as string) : undefined);
    const state = q('state');
    if (state && !(RUN_STATES as readonly string[]).includes(state)) {
      return sendPage(res, 400, page(f, 'Runs', 'runs', html`<p class="error">Unknown state ${state}.</p>`));
    }
    const rawCursor = q('cursor');
    const cursor = rawCursor === undefined ? undefined : decodeCursor(rawCursor);
    if (rawCursor !== undefined && !cursor) {
      return sendPage(res, 400, page(f, 'Runs', 'runs', html`<p class="error">Not a cursor from a previous page.</p>`));
    }
    const filter = { rule: q('rule'), state };
    const result = await deps.runs.listRuns({ ...filter, limit: 50, cursor });
    const names = deps.table()?.rules.map((r) => r.spec.name) ?? [];
    sendPage(res, 200, runsPage(f, result.runs, filter, names, result.next));
  });
  router.get('/ui/runs/:jobId', async (req, res) => {
    const [f, run] = await Promise.all([frameOf(req, res), deps.runs.getRun(req.params.jobId)]);
    if (!run) {
      return sendPage(res, 404, page(f, 'Run not found', 'runs', html`<h1>No such run</h1><p><code>${req.params.jobId}</code> is not in the audit.</p>`));
    }
    const [events, alert, decisions] = await Promise.all([
      deps.runs.runEvents(run.job_id),
      alertOfRun(deps.pool, deps.schema, run.fingerprint),
      decisionsOfRun(deps.pool, deps.schema, run.job_id),
    ]);
    sendPage(res, 200, runPage(f, run, events, alert, decisions));
  });
  router.get('/ui/rules', async (req, res) => {
    const f = await frameOf(req, res);
    const table = deps.table();
    if (!table) return sendPage(res, 503, page(f, 'Rules', 'rules', html`<p class="error">Rules not loaded yet.</p>`));
    sendPage(res, 200, rulesPage(f, table, await ruleStats(deps.pool, deps.schema, STATS_WINDOW_MS), '7 days'));
  });

  router.use(boardRouter(deps.queues()));
  return router;
}

/** The form's CSRF token is the session's (compared in constant time). */
function csrfOk(req: Request, session: Session): boolean {
  const sent = typeof req.body?.csrf === 'string' ? req.body.csrf : '';
  return sent !== '' && safeEqual(sent, session.csrf);
}

function sendPage(res: Response, status: number, body: string): void {
  res.status(status).type('html').send(body);
}
