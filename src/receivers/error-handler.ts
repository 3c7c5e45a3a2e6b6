import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import type { Logger } from '../log.js';

type HttpError = Error & { status?: unknown; statusCode?: unknown; expose?: boolean; type?: string };

/** The 4xx a client error carries (body-parser's, http-errors', a URIError from a bad %-escape), or undefined for our own faults. */
export function clientStatus(err: unknown): number | undefined {
  const e = err as HttpError;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) return status;
  if (err instanceof URIError) return 400;
  return undefined;
}

/** What the client is told: the library's own words when they are meant for it (http-errors' `expose`), else the status text. */
function clientMessage(err: HttpError, status: number): string {
  switch (err.type) {
    case 'entity.too.large':
      return 'body too large';
    case 'entity.parse.failed':
      return 'body: malformed';
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return String(err.message).slice(0, 200);
  }
  if (err instanceof URIError || /decode param/i.test(String(err.message))) return 'bad percent-encoding in the URL';
  return err.expose && err.message ? String(err.message).slice(0, 200) : (STATUS_CODES[status] ?? 'bad request');
}

/** The path without its query (which could carry a token), cut short: enough to find the route. */
const pathOf = (req: Request) => String(req.path ?? '').slice(0, 200);

/**
 * The app's last error handler. A client's error (an oversized or undecodable body, a bad
 * %-escape in the URL...) keeps its 4xx and is logged at debug without a stack: anyone can send
 * those, so they must neither page anyone (5xx) nor fill the log. Only our own faults are 500
 * and logged as errors, with their stack (without `log`, handed on to express's own handler).
 */
export function errorHandler(log?: Logger): ErrorRequestHandler {
  return (err: HttpError, req, res, next) => {
    const status = clientStatus(err);
    if (status !== undefined) {
      log?.debug('request refused', { method: req.method, path: pathOf(req), status, error: err.type ?? err.name });
      if (res.headersSent) return void res.destroy();
      // A body we refused without reading: drop the connection instead of draining it.
      if (status === 413) res.set('Connection', 'close');
      return void res.status(status).json({ error: clientMessage(err, status) });
    }
    if (!log) return next(err); // no logger here: express's own handler prints it
    log.error('request failed', { method: req.method, path: pathOf(req), error: err }); // with its stack
    if (res.headersSent) return void res.destroy();
    res.status(500).json({ error: 'internal error' });
  };
}

/**
 * 400 for a URL whose %-escapes do not decode (`/x/%E0%A4%A`, `?a=%`): express decodes route
 * params itself (a URIError, answered by errorHandler), but mounted apps such as bull-board call
 * decodeURIComponent on the query and answer their own 500.
 */
export function malformedUrl(log?: Logger): RequestHandler {
  return (req, res, next) => {
    if (!req.url.includes('%')) return next();
    try {
      decodeURIComponent(req.url);
    } catch {
      log?.debug('request refused', { method: req.method, path: pathOf(req), status: 400, error: 'URIError' });
      return void res.status(400).json({ error: 'bad percent-encoding in the URL' });
    }
    next();
  };
}
