import express, { type Request, type Response, type Router } from 'express';
import { checkAuthorization } from './auth.js';
import { answerAndClose, bodyErrors, bodyLimit, hasBody } from './http-edge.js';
import { acceptDelivery, type AcceptDeps, type Answer } from './webhook-accept.js';

export interface AlertmanagerReceiverDeps extends AcceptDeps {
  auth: { token?: string; basic?: string };
  maxBytes: number;
}

/**
 * POST /webhooks/alertmanager through express: every request the fast path
 * (src/receivers/webhook-fast.ts) leaves alone comes here: bad credentials, compressed bodies,
 * other content types, chunked or oversized bodies. Authenticate, check size and type, parse,
 * then the same acceptance as the fast path: one XADD, 200 once Redis has it, a fast 503 if not.
 */
export function alertmanagerRouter(deps: AlertmanagerReceiverDeps): Router {
  const router = express.Router();
  router.post(
    '/webhooks/alertmanager',
    (req, res, next) => {
      const metrics = deps.metrics;
      if (metrics) {
        const end = metrics.webhookDuration.startTimer();
        res.once('finish', () => {
          const code = String(res.statusCode);
          metrics.webhookRequests.inc({ code });
          end({ code });
        });
      }
      if (!checkAuthorization(req.headers.authorization, deps.auth)) {
        deps.log.warn('webhook refused: missing or wrong credentials', { ip: req.ip });
        res.set('WWW-Authenticate', deps.auth.token ? 'Bearer' : 'Basic realm="remediator"');
        answerAndClose(res, 401, { error: 'missing or wrong credentials' });
        return;
      }
      next();
    },
    // Size before type: a declared oversized body is refused before anything waits on it.
    bodyLimit(deps.maxBytes),
    (req, res, next) => {
      // Checked before the type: req.is() answers "no type" for a request without a body, and a
      // 415 saying `unsupported content type "application/json": send application/json` helps nobody.
      if (!hasBody(req)) {
        res.status(400).json({ error: "empty body: send Alertmanager's webhook JSON (with a Content-Length, or chunked)" });
        return;
      }
      if (!req.is('application/json') && !req.is('+json')) {
        res.status(415).json({ error: `unsupported content type ${JSON.stringify(req.headers['content-type'] ?? '')}: send application/json` });
        return;
      }
      next();
    },
    express.json({ limit: deps.maxBytes, strict: true }),
    async (req: Request, res: Response) => {
      // A chunked body that passed the limit on the wire but not once decoded: already answered 413.
      if (res.headersSent) return;
      answer(res, await acceptDelivery(deps, JSON.stringify(req.body), req.body));
    },
  );
  router.use(bodyErrors(deps.maxBytes));
  return router;
}

function answer(res: Response, a: Answer): void {
  if (a.headers) res.set(a.headers);
  res.status(a.status).json(a.body);
}
