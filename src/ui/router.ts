import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Pool } from 'pg';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { decodeCursor, type RunReader } from '../store/runs.js';
import { alertOfRun, decisionsOfRun, ruleStats } from '../store/status.js';
import type { Logger } from '../log.js';
import type { RuleTable } from '../rules/load.js';
import { safeEqual } from '../receivers/auth.js';
import { loginPage, page, STYLE } from './layout.js';
import { html } from './html.js';
import { RUN_STATES, runPage, runsPage } from './runs-page.js';
import { rulesPage, type ControlsSource } from './rules-page.js';
import { readCookie, SESSION_COOKIE, Sessions } from './session.js';

export interface UiDeps {
  runs: RunReader;
  pool: Pool;
  schema: string;
  table: () => RuleTable | undefined;
  /** The queues shown by bull-board under /ui/queues (read-only). */
  queues: () => Queue[];
  adminToken?: string;
  /** Set the cookie's Secure flag (PUBLIC_URL is https). */
  secureCookie?: boolean;
  /** HOOK: pauses and quarantines, once the operator controls provide them. */
  controls?: ControlsSource;
  log: Logger;
}

const STATS_WINDOW_MS = 7 * 24 * 3600_000;
/** Wrong tokens per minute before the login answers 429 for the rest of that minute. */
const LOGIN_FAILURES_PER_MINUTE = 20;

// Our pages run no script at all; bull-board's pages (under /ui/queues) bring their own.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * The status page: read-only views of the audit (runs, steps, rules) and of the queues.
 * Access with ADMIN_TOKEN as a bearer token, or through /ui/login which sets a signed session
 * cookie (HttpOnly, SameSite=Strict) that never holds the token.
 */
export function uiRouter(deps: UiDeps): Router {
  const router = express.Router();
  const sessions = deps.adminToken ? new Sessions(deps.adminToken) : undefined;
  const failures = { minute: 0, count: 0 };

  router.use('/ui', (_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'same-origin' });
    next();
  });
  router.get('/ui/style.css', (_req, res) => {
    res.type('text/css').set('Cache-Control', 'max-age=300').send(STYLE);
  });
  router.use('/ui', (_req, res, next) => {
    if (sessions) return next();
    res.status(403).type('text/plain').send('The status page is disabled: set ADMIN_TOKEN.');
  });
  router.get('/ui/login', (_req, res) => sendPage(res, 200, loginPage()));
  router.post('/ui/login', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const minute = Math.floor(Date.now() / 60_000);
    if (failures.minute !== minute) Object.assign(failures, { minute, count: 0 });
    if (failures.count >= LOGIN_FAILURES_PER_MINUTE) {
      sendPage(res.set('Retry-After', '60'), 429, loginPage('Too many wrong tokens: wait a minute.'));
      return;
    }
    const token = typeof req.body?.token === 'string' ? req.body.token : '';
    if (!token || !safeEqual(token, deps.adminToken!)) {
      failures.count++;
      deps.log.warn('status page login refused', { ip: req.ip });
      sendPage(res, 401, loginPage('Wrong token.'));
      return;
    }
    const s = sessions!.issue();
    res.cookie(SESSION_COOKIE, s.value, { httpOnly: true, sameSite: 'strict', secure: deps.secureCookie ?? false, path: '/ui', maxAge: s.maxAgeMs });
    res.redirect(303, '/ui');
  });
  router.post('/ui/logout', (_req, res) => {
    res.clearCookie(SESSION_COOKIE, { path: '/ui', httpOnly: true, sameSite: 'strict', secure: deps.secureCookie ?? false });
    res.redirect(303, '/ui/login');
  });

  // Everything below needs a session or the bearer token.
  router.use('/ui', (req: Request, res: Response, next: NextFunction) => {
    const h = req.headers.authorization ?? '';
    const bearer = h.toLowerCase().startsWith('bearer ') && safeEqual(h.slice(7).trim(), deps.adminToken!);
    if (bearer || sessions!.valid(readCookie(req.headers.cookie, SESSION_COOKIE))) return next();
    if (req.method === 'GET' && req.accepts(['html', 'json']) === 'html') {
      res.redirect(303, '/ui/login');
      return;
    }
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'log in at /ui/login or send the admin token' });
  });

  router.get('/ui', async (req, res) => {
    const q = (name: string) => (typeof req.query[name] === 'string' && req.query[name] ? (req.query[name] as string) : undefined);
    const state = q('state');
    if (state && !(RUN_STATES as readonly string[]).includes(state)) {
      sendPage(res, 400, page('Runs', 'runs', html`<p class="error">Unknown state ${state}.</p>`));
      return;
    }
    const rawCursor = q('cursor');
    const cursor = rawCursor === undefined ? undefined : decodeCursor(rawCursor);
    if (rawCursor !== undefined && !cursor) {
      sendPage(res, 400, page('Runs', 'runs', html`<p class="error">Not a cursor from a previous page.</p>`));
      return;
    }
    const filter = { rule: q('rule'), state };
    const result = await deps.runs.listRuns({ ...filter, limit: 50, cursor });
    const names = deps.table()?.rules.map((r) => r.spec.name) ?? [];
    sendPage(res, 200, runsPage(result.runs, filter, names, result.next));
  });
  router.get('/ui/runs/:jobId', async (req, res) => {
    const run = await deps.runs.getRun(req.params.jobId);
    if (!run) {
      sendPage(res, 404, page('Run not found', 'runs', html`<h1>No such run</h1><p><code>${req.params.jobId}</code> is not in the audit.</p>`));
      return;
    }
    const [events, alert, decisions] = await Promise.all([
      deps.runs.runEvents(run.job_id),
      alertOfRun(deps.pool, deps.schema, run.fingerprint),
      decisionsOfRun(deps.pool, deps.schema, run.job_id),
    ]);
    sendPage(res, 200, runPage(run, events, alert, decisions));
  });
  router.get('/ui/rules', async (_req, res) => {
    const table = deps.table();
    if (!table) {
      sendPage(res, 503, page('Rules', 'rules', html`<p class="error">Rules not loaded yet.</p>`));
      return;
    }
    const [stats, controls] = await Promise.all([
      ruleStats(deps.pool, deps.schema, STATS_WINDOW_MS),
      deps.controls ? deps.controls() : Promise.resolve(undefined),
    ]);
    sendPage(res, 200, rulesPage(table, stats, '7 days', controls));
  });

  // bull-board, read-only: no retry, clean, promote or delete from the status page.
  const board = new ExpressAdapter();
  board.setBasePath('/ui/queues');
  createBullBoard({
    queues: deps.queues().map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'remediator queues' } },
  });
  // Read-only for certain: bull-board's read-only mode covers its queue actions, this covers the rest.
  router.use('/ui/queues', (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    res.status(405).set('Allow', 'GET, HEAD').json({ error: 'the status page is read-only' });
  });
  router.use('/ui/queues', board.getRouter());
  return router;
}

function sendPage(res: Response, status: number, body: string): void {
  res.status(status).set('Content-Security-Policy', CSP).type('html').send(body);
}
