import { z } from 'zod';
import { abortMessage, deadline } from '../core/deadline.js';
import { envName } from '../rules/schema.js';
import { PermanentError, TransientError } from '../core/errors.js';

/** An HTTP endpoint as declared in a target. The token is an env var name, read at run time. */
export const httpEndpointSchema = z
  .object({
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional(),
    url: z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL'),
    /** Non-secret headers. Put secrets in token_env. */
    headers: z.record(z.string()).default({}),
    /** Env var holding a bearer token, sent as `Authorization: Bearer <token>`. */
    token_env: envName.optional(),
    body: z.unknown().optional(),
  })
  .strict();
export type HttpEndpoint = z.output<typeof httpEndpointSchema>;

/** Reads a secret named by a target; the error names the variable, never a value. */
export function secretFromEnv(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new PermanentError('missing_secret', `secret missing: environment variable ${name} is not set in the worker's environment`);
  return v;
}

export interface HttpResult {
  status: number;
  body: unknown;
}

/**
 * One request with the error taxonomy applied: network errors, timeouts, 429 and 5xx are
 * transient; other 4xx are permanent (401/403 forbidden, 404 not found). Messages name the
 * method and URL, never headers, so no token can leak into an error or the audit.
 */
export async function callEndpoint(
  ep: HttpEndpoint,
  opts: { fetch: typeof fetch; env: NodeJS.ProcessEnv; signal: AbortSignal; timeoutMs: number; defaultMethod: string; body?: unknown },
): Promise<HttpResult> {
  const method = ep.method ?? opts.defaultMethod;
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'remediator', ...ep.headers };
  if (ep.token_env) headers.authorization = `Bearer ${secretFromEnv(opts.env, ep.token_env)}`;
  const payload = opts.body ?? ep.body;
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const what = `${method} ${ep.url}`;
  // The per-request timeout, inside the run's own deadline (opts.signal): whichever fires first
  // names itself in the message.
  const request = deadline('request timeout', opts.timeoutMs, [opts.signal]);
  try {
    let res: Response;
    try {
      res = await opts.fetch(ep.url, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal: request.signal,
      });
    } catch (err) {
      if (request.signal.aborted) throw new TransientError('timeout', `${what}: ${abortMessage(request.signal.reason)}`);
      const e = err as Error;
      const cause = (e.cause as { code?: string; message?: string } | undefined) ?? {};
      throw new TransientError('unavailable', `${what}: ${cause.code ?? cause.message ?? e.message}`);
    }
    // The body is read under the same deadline: a server can send headers and then stall.
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      if (request.signal.aborted) throw new TransientError('timeout', `${what}: ${abortMessage(request.signal.reason)} (reading the response)`);
      throw new TransientError('unavailable', `${what}: reading the response: ${(err as Error).message}`);
    }
    return answer(what, res.status, res.ok, text);
  } finally {
    request.dispose();
  }
}

/** Applies the taxonomy to an answer that arrived. */
function answer(what: string, status: number, ok: boolean, text: string): HttpResult {
  let body: unknown = text;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
  }
  if (ok) return { status, body };
  const msg = `${what}: HTTP ${status}`;
  if (status === 429 || status >= 500) throw new TransientError('unavailable', msg, { status });
  if (status === 401 || status === 403) throw new PermanentError('forbidden', msg, { status });
  if (status === 404) throw new PermanentError('not_found', msg, { status });
  throw new PermanentError('bad_request', msg, { status });
}

/** Reads a dot-separated path ("state", "breaker.state") out of a JSON body. */
export function readField(body: unknown, path: string): unknown {
  let cur: unknown = body;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
