import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';

/**
 * bull-board's React app runs its own scripts (from /ui/queues/static) and sets inline styles;
 * everything else stays on this origin: no font host, no outside image, no framing.
 */
export const BOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "manifest-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/**
 * bull-board on every queue under /ui/queues, read-only, and fit for an air-gapped site: its
 * page's link to a public font host is taken out (its CSS falls back to the system font),
 * our fixes to its layout are linked in, and its own express app does not announce itself.
 * The caller has checked the session.
 */
export function boardRouter(queues: Queue[]): Router {
  const board = new ExpressAdapter();
  board.setBasePath('/ui/queues');
  createBullBoard({
    // Shards of one queue share its name: each is shown under its own Redis prefix.
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true, ...(queues.filter((x) => x.name === q.name).length > 1 ? { prefix: `${q.opts.prefix ?? ''}/` } : {}) })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'remediator queues' } },
  });
  const app = board.getRouter() as Express;
  app.disable('x-powered-by');
  app.set('etag', false);

  const router = express.Router();
  router.use('/ui/queues', (req: Request, res: Response, next: NextFunction) => {
    // Read-only for certain: bull-board's read-only mode covers its queue actions, this covers the rest.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).set('Allow', 'GET, HEAD').json({ error: 'the status page is read-only' });
      return;
    }
    res.set('Content-Security-Policy', BOARD_CSP);
    // Its entry page is rendered from bull-board's template: edit the HTML on its way out.
    // (res.render reads req.app when called, which is then bull-board's own app with its views.)
    const render = res.render.bind(res) as (view: string, options: object, done: (err: Error | null, page: string) => void) => void;
    res.render = ((view: string, options?: object) => {
      render(view, typeof options === 'object' ? options : {}, (err, page) => (err ? next(err) : res.type('html').send(airGapped(page))));
    }) as Response['render'];
    next();
  });
  router.use('/ui/queues', app);
  return router;
}

/** bull-board's page without resources from other sites, with our layout fixes linked last. */
export function airGapped(page: string): string {
  return page
    .replace(/<link\b[^>]*\bhref=["']?(?:https?:)?\/\/[^>]*>/gi, '')
    .replace(/<\/head>/i, '<link href="/ui/board.css" rel="stylesheet"></head>');
}
