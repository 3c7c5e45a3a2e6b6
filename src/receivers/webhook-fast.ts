import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkAuthorization } from './auth.js';
import type { AlertmanagerReceiverDeps } from './alertmanager.js';
import { acceptDelivery, type Answer } from './webhook-accept.js';

const JSON_TYPE = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;

/**
 * The webhook's hot path on plain node:http, ahead of express: what Alertmanager sends (an
 * authenticated, uncompressed JSON body with a Content-Length within the limit) is read raw,
 * parsed once and accepted here. Anything else returns false and goes to express
 * (src/receivers/alertmanager.ts), which owns every refusal (401, 413, 415, bad encodings), so
 * there is one place for each precise 4xx. Express alone cost about 3x the CPU of this per request.
 */
export function fastWebhook(deps: AlertmanagerReceiverDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/webhooks/alertmanager') return false;
    const h = req.headers;
    const length = h['content-length'];
    if (length === undefined || Number(length) > deps.maxBytes) return false;
    if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return false;
    if (!JSON_TYPE.test(h['content-type'] ?? '')) return false;
    if (!checkAuthorization(h.authorization, deps.auth)) return false;
    const started = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (err) {
        send(res, { status: 400, body: { error: `malformed JSON: ${(err as Error).message}` } }, deps, started);
        return;
      }
      acceptDelivery(deps, text, body).then(
        (a) => send(res, a, deps, started),
        (err: Error) => {
          deps.log.error('request failed', { error: err.message });
          send(res, { status: 500, body: { error: 'internal error' } }, deps, started);
        },
      );
    });
    // A client that goes away mid-body: Node destroys the socket; nothing is accepted, nothing to answer.
    req.on('error', () => {});
    return true;
  };
}

function send(res: ServerResponse, a: Answer, deps: AlertmanagerReceiverDeps, started: number): void {
  const body = JSON.stringify(a.body);
  res.writeHead(a.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...a.headers });
  res.end(body);
  const code = String(a.status);
  deps.metrics?.webhookRequests.inc({ code });
  deps.metrics?.webhookDuration.observe({ code }, (performance.now() - started) / 1000);
}
