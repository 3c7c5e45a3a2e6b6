import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Answers and drops the connection: `Connection: close` makes Node end and destroy the socket
 * once this answer is written, so a client that was refused cannot keep streaming a body on it,
 * nor keep the connection for its next try. Used for 401 and 413; 2xx keeps keep-alive.
 */
export function answerAndClose(res: Response, status: number, body: unknown): void {
  res.set('Connection', 'close').status(status).json(body);
}

/**
 * Whether the request has a body at all: HTTP/1.1 says one is there only with a Content-Length
 * or a Transfer-Encoding (RFC 9112 section 6.3). Without either, express' type check reports no
 * content type, whatever the header says.
 */
export function hasBody(req: Request): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

const tooLarge = (res: Response, maxBytes: number) => answerAndClose(res, 413, { error: `payload larger than ${maxBytes} bytes` });

/**
 * Refuses an oversized body before it is read. A declared Content-Length over the limit is
 * answered at once: body-parser would answer it only after reading (and discarding) all of it.
 * A body without a length (chunked) is counted as it arrives, on the wire bytes (compressed or
 * not), and answered as soon as it passes the limit; body-parser's own limit, on the decoded
 * bytes, still applies after this.
 */
export function bodyLimit(maxBytes: number): RequestHandler {
  return (req, res, next) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined) {
      // Node has already refused a Content-Length that is not a number (400 from its parser).
      if (Number(declared) > maxBytes) return tooLarge(res, maxBytes);
      return next();
    }
    let seen = 0;
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) {
        req.off('data', count);
        if (!res.headersSent) tooLarge(res, maxBytes);
      }
    };
    // Registered before body-parser's reader in the same tick, so no chunk passes uncounted.
    req.on('data', count);
    next();
  };
}

type BodyError = Error & { type?: string; status?: number };

/**
 * body-parser's errors, as answers: malformed JSON 400, a body that does not decode as its
 * Content-Encoding says 400 (body-parser passes zlib's error on, without a `type`), too large 413,
 * an encoding or charset it cannot decode 415. Anything else is not the client's fault.
 */
export function bodyErrors(maxBytes: number) {
  return (err: BodyError, req: Request, res: Response, next: NextFunction): void => {
    // bodyLimit has answered already; this is the reader giving up on the dropped connection.
    if (res.headersSent) return;
    const status = err.status ?? 500;
    if (status < 400 || status >= 500) return next(err);
    const encoding = req.headers['content-encoding'];
    if (err.type === 'entity.too.large') tooLarge(res, maxBytes);
    else if (err.type === 'entity.parse.failed') res.status(400).json({ error: `malformed JSON: ${err.message}` });
    else if (err.type === 'encoding.unsupported') res.status(415).json({ error: `${err.message}: send the body uncompressed, or as gzip, deflate or br` });
    else if (err.type === 'charset.unsupported') res.status(415).json({ error: err.message });
    else if (err.type === undefined && encoding && encoding !== 'identity') res.status(400).json({ error: `body is not valid ${encoding}: ${err.message}` });
    else res.status(status).json({ error: err.message });
  };
}
