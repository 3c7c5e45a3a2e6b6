import { api } from '@pagerduty/pdjs';
import { abortMessage, deadline } from '../../core/deadline.js';
import { PermanentError, RateLimitedError } from '../../core/errors.js';
import { redactSecrets } from '../../core/redact.js';
import { storableDeep } from '../../core/text.js';
import type { Logger } from '../../log.js';
import { retryAfterMs, type EnqueueBody } from './events.js';

/** Events API 429 without Retry-After: PagerDuty allows about 120 events/min per routing key. */
const RATE_LIMIT_FALLBACK_MS = 30_000;

export interface PagerDutyClientOptions {
  /** Events API base URL (PAGERDUTY_EVENTS_URL). Default https://events.pagerduty.com. */
  eventsUrl?: string;
  /** REST API token (PAGERDUTY_API_TOKEN): incident notes. */
  apiToken?: string;
  /** REST API base URL (PAGERDUTY_API_URL). Default https://api.pagerduty.com. */
  apiUrl?: string;
  /** Email of a PagerDuty user, sent as `From` on notes (PAGERDUTY_FROM). */
  from?: string;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
}

/**
 * PagerDuty over HTTP. Events API: plain fetch, not pdjs: pdjs's `event()` always builds
 * `https://${server}/v2/enqueue`, and every pdjs request goes through one transport that retries a
 * 429 by itself after a fixed 20 s sleep, ignoring Retry-After and the AbortSignal while it sleeps.
 * Rate limits must reach the notification worker instead (RateLimitedError pauses the routing
 * key), so events use fetch. REST notes use pdjs `api({url})`; its 429 retry is bounded there by
 * `retryTimeout`. Neither follows a redirect. The routing key and the token are secrets: they are
 * only ever put in a request; errors carry the env var's name at most.
 */
export class PagerDutyClient {
  private readonly eventsUrl: string;
  private readonly apiUrl: string;
  private readonly timeoutMs: number;
  constructor(private readonly o: PagerDutyClientOptions) {
    this.eventsUrl = `${(o.eventsUrl ?? 'https://events.pagerduty.com').replace(/\/+$/, '')}/v2/enqueue`;
    this.apiUrl = (o.apiUrl ?? 'https://api.pagerduty.com').replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  get canNote(): boolean {
    return Boolean(this.o.apiToken && this.o.from);
  }

  /** POST /v2/enqueue. https://developer.pagerduty.com/docs/events-api-v2/overview/ (202 / 400 / 429 / 5xx). */
  async enqueue(body: EnqueueBody, key: string, signal: AbortSignal, log: Logger): Promise<Record<string, unknown>> {
    const what = `PagerDuty Events API (${body.event_action})`;
    const request = deadline('request timeout', this.timeoutMs, [signal]);
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.eventsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'remediator' },
        // Summaries and details carry alert text and target answers: make them sendable (core/text.ts).
        body: JSON.stringify({ routing_key: key, ...storableDeep(body) }),
        signal: request.signal,
        redirect: 'manual',
      });
      text = await res.text().catch(() => '');
    } catch (err) {
      throw networkError(what, err, request.signal);
    } finally {
      request.dispose();
    }
    let data: { status?: string; message?: string; dedup_key?: string; errors?: unknown } = {};
    try {
      data = JSON.parse(text) as typeof data;
    } catch {
      /* not JSON (a proxy's error page): keep the status */
    }
    if (res.status === 202) {
      log.debug('pagerduty event accepted', { event_action: body.event_action, dedup_key: body.dedup_key });
      return { status: 202, event_action: body.event_action, dedup_key: data.dedup_key ?? body.dedup_key };
    }
    const errors = Array.isArray(data.errors) ? data.errors.map((e) => redactSecrets(String(e), key)) : undefined;
    const message = redactSecrets([data.message ?? text.slice(0, 200), ...(errors ?? [])].filter(Boolean).join('; '), key);
    throw failure(what, res.status, message, res.headers, { event_action: body.event_action, dedup_key: body.dedup_key, errors });
  }

  /** Adds a note to the open incident with this dedup key (GET /incidents?incident_key=, POST /incidents/{id}/notes). */
  async note(dedupKey: string, content: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const found = await this.rest('GET', `/incidents?${new URLSearchParams({ incident_key: dedupKey })}`, signal);
    const incidents = (found.data?.incidents ?? []) as { id: string; status?: string }[];
    const incident = incidents.find((i) => i.status !== 'resolved') ?? incidents[0];
    if (!incident) return { note: 'not added', why: 'no PagerDuty incident with this incident_key', dedup_key: dedupKey };
    const res = await this.rest('POST', `/incidents/${encodeURIComponent(incident.id)}/notes`, signal, { note: { content } });
    return { status: res.status, note_id: res.data?.note?.id, incident_id: incident.id, dedup_key: dedupKey };
  }

  /** One REST call through pdjs; non-2xx resolve in pdjs, so the status is checked here. */
  private async rest(method: 'GET' | 'POST', path: string, signal: AbortSignal, data?: object): Promise<{ status: number; data: any }> {
    const what = `PagerDuty REST API (${method} ${path.split('?')[0]})`;
    let res: { status: number; data?: any; headers: { get(n: string): string | null } };
    const request = deadline('request timeout', this.timeoutMs, [signal]);
    try {
      res = (await api({
        url: `${this.apiUrl}${path}`,
        method,
        token: this.o.apiToken,
        tokenType: 'token', // Authorization: Token token=...
        headers: { From: this.o.from ?? '' },
        data,
        signal: request.signal,
        redirect: 'manual',
        requestTimeout: 0, // pdjs's timer never aborts, and keeps the process alive: our signal times out instead
        retryTimeout: 1000, // pdjs retries a 429 itself (3 times); keep those waits short
      } as Parameters<typeof api>[0])) as unknown as typeof res;
    } catch (err) {
      // pdjs rejects with the Response itself when the body is not JSON.
      if (err && typeof err === 'object' && 'status' in err && typeof (err as Response).status === 'number') {
        const r = err as Response;
        throw failure(what, r.status, r.ok ? 'response is not JSON' : '', r.headers, {});
      }
      throw networkError(what, err, request.signal);
    } finally {
      request.dispose();
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, data: res.data };
    const e = res.data?.error as { message?: string; errors?: unknown[] } | undefined;
    const message = redactSecrets([e?.message, ...(e?.errors ?? []).map(String)].filter(Boolean).join('; '), this.o.apiToken);
    throw failure(what, res.status, message, res.headers, {});
  }
}

/** An HTTP failure in the taxonomy of src/core/errors.ts. */
function failure(what: string, status: number, message: string, headers: { get(n: string): string | null }, detail: Record<string, unknown>): Error {
  const text = `${what} answered ${status}${message ? `: ${message}` : ''}`;
  if (status === 429) return new RateLimitedError(text, retryAfterMs(headers.get('retry-after'), RATE_LIMIT_FALLBACK_MS));
  // A redirect is never followed: the Location is not a place this notifier was told to call.
  if (status >= 300 && status < 400) return new PermanentError('bad_request', `${text}: redirect to ${headers.get('location') ?? '(no Location)'} not followed`, { status, ...detail });
  // 400 is final (the same event will never be valid); other 4xx too (wrong URL, auth), except a request timeout.
  if (status >= 400 && status < 500 && status !== 408) return new PermanentError('bad_request', text, { status, ...detail });
  return new Error(text);
}

/** A request that got no answer; an abort names the deadline that fired (this request's or the sync's). */
function networkError(what: string, err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) return new Error(`${what}: ${abortMessage(signal.reason)}`);
  const e = err as Error;
  const cause = (e.cause as { code?: string } | undefined)?.code;
  return new Error(`${what}: ${cause ?? e.message}`);
}
