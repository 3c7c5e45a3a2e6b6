import { randomBytes } from 'node:crypto';
import { closeServer, listenLoopback } from './loopback.js';
import { type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** One request the fake received, as parsed. */
export interface PdRequest {
  at: number;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or the raw text when it is not JSON. */
  body: any;
  status: number;
}

export interface FakeIncident {
  id: string;
  incident_key: string;
  routing_key: string;
  status: 'triggered' | 'acknowledged' | 'resolved';
  title: string;
  /** How many times responders were notified (a new incident pages; a trigger on an open one does not). */
  pages: number;
  /** Trigger events deduplicated into this incident (the alert log). */
  triggers: number;
  notes: { id: string; content: string; from: string }[];
  created_at: string;
}

interface Injected {
  status: number;
  count: number;
  api: 'events' | 'rest' | 'all';
  retryAfter?: string;
  body?: unknown;
}

const SEVERITIES = ['critical', 'error', 'warning', 'info'];
const ACTIONS = ['trigger', 'acknowledge', 'resolve'];

/**
 * A local PagerDuty: Events API v2 (`POST /v2/enqueue`) validated like the real one, and the
 * REST calls remediator makes (`GET /incidents?incident_key=`, `POST /incidents/{id}/notes`).
 * Events drive incidents as PagerDuty does: a trigger opens an incident (and pages) or is
 * appended to the open one with the same routing + dedup key (no page, even if acknowledged);
 * acknowledge/resolve move an open incident and are dropped otherwise.
 * Records every request; `failNext` makes the next N calls answer an error, `hangNext` never answer.
 */
export class FakePagerDuty {
  url = '';
  requests: PdRequest[] = [];
  incidents: FakeIncident[] = [];
  apiToken = 'fake-pd-rest-token-' + randomBytes(4).toString('hex');
  private injected: Injected[] = [];
  /**
   * PagerDuty's Events API limit, enforced per routing key when set: `perMinute` events in any
   * minute; beyond it 429 (with Retry-After unless `retryAfter: false`).
   * https://developer.pagerduty.com/docs/events-api-v2/rate-limiting
   */
  limit: { perMinute: number; retryAfter?: boolean } | undefined;
  private readonly sent = new Map<string, number[]>();
  private server: Server | undefined;
  private seq = 0;

  async start(): Promise<this> {
    const { server, url } = await listenLoopback((req, res) => void this.handle(req, res));
    this.server = server;
    this.url = url;
    return this;
  }

  async stop(): Promise<void> {
    await closeServer(this.server);
  }

  /** Ends every injected failure and hang still pending (the end of an outage window). */
  clearFaults(): void {
    for (const i of this.injected) i.count = 0;
  }

  /** Answer the next `count` calls (of one API, or any) with `status`; 429 may carry Retry-After. */
  failNext(status: number, count = 1, opts: { api?: 'events' | 'rest' | 'all'; retryAfter?: string; body?: unknown } = {}): void {
    this.injected.push({ status, count, api: opts.api ?? 'events', retryAfter: opts.retryAfter, body: opts.body });
  }

  /** Accept the next `count` calls (of one API, or any) and never answer them (a hung PagerDuty). */
  hangNext(count = 1, api: 'events' | 'rest' | 'all' = 'events'): void {
    this.injected.push({ status: 0, count, api });
  }

  /** Events API calls answered 429 (rate limited). */
  limited(): PdRequest[] {
    return this.requests.filter((r) => r.path === '/v2/enqueue' && r.status === 429);
  }

  /** Enqueue requests (all, or for one dedup key). */
  enqueued(dedupKey?: string): PdRequest[] {
    return this.requests.filter((r) => r.path === '/v2/enqueue' && (dedupKey === undefined || r.body?.dedup_key === dedupKey));
  }

  incident(dedupKey: string): FakeIncident | undefined {
    return this.incidents.filter((i) => i.incident_key === dedupKey).at(-1);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const rec: PdRequest = { at: Date.now(), method: req.method ?? '', path: u.pathname, query: u.searchParams, headers: req.headers, body, status: 0 };
    this.requests.push(rec);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
    };

    const api = u.pathname === '/v2/enqueue' ? 'events' : 'rest';
    const inj = this.injected.find((i) => i.count > 0 && (i.api === 'all' || i.api === api));
    if (inj) {
      inj.count--;
      if (inj.status === 0) return; // hung: the connection stays open, stop() drops it
      const headers: Record<string, string> = inj.retryAfter ? { 'retry-after': inj.retryAfter } : {};
      const fallback =
        inj.status === 400
          ? { status: 'invalid event', message: 'Event object is invalid', errors: ['injected failure'] }
          : inj.status === 429
            ? { status: 'throttle event', message: 'Requests for this service are arriving too quickly.  Please retry later.' }
            : { status: 'error', message: 'injected failure' };
      return send(inj.status, inj.body ?? fallback, headers);
    }

    if (req.method === 'POST' && u.pathname === '/v2/enqueue' && this.limit && typeof body?.routing_key === 'string') {
      const now = Date.now();
      const times = (this.sent.get(body.routing_key) ?? []).filter((t) => t > now - 60_000);
      this.sent.set(body.routing_key, times);
      if (times.length >= this.limit.perMinute) {
        const headers: Record<string, string> = this.limit.retryAfter === false ? {} : { 'retry-after': String(Math.max(1, Math.ceil((times[0]! + 60_000 - now) / 1000))) };
        return send(429, { status: 'throttle event', message: 'Requests for this service are arriving too quickly.  Please retry later.' }, headers);
      }
      times.push(now);
    }
    if (req.method === 'POST' && u.pathname === '/v2/enqueue') return this.enqueue(body, send);
    if (u.pathname.startsWith('/incidents')) return this.rest(req, u, body, send);
    send(404, { error: { message: 'Not Found', code: 2100 } });
  }

  private enqueue(body: any, send: (s: number, p: unknown) => void): void {
    const errors: string[] = [];
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return send(400, { status: 'invalid event', message: 'Event object is invalid', errors: ['Invalid JSON'] });
    }
    if (typeof body.routing_key !== 'string' || body.routing_key === '') errors.push("'routing_key' is missing or blank");
    else if (body.routing_key.length !== 32) errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
    if (!ACTIONS.includes(body.event_action)) errors.push("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)");
    if (body.dedup_key !== undefined && (typeof body.dedup_key !== 'string' || body.dedup_key.length > 255)) errors.push("'dedup_key' is invalid (max 255 characters)");
    if (body.event_action !== 'trigger' && !body.dedup_key) errors.push("'dedup_key' is missing or blank");
    if (body.event_action === 'trigger') {
      const p = body.payload;
      if (!p || typeof p !== 'object') errors.push("'payload' is missing or blank");
      else {
        if (typeof p.summary !== 'string' || p.summary === '') errors.push("'payload.summary' is missing or blank");
        else if (p.summary.length > 1024) errors.push("'payload.summary' is too long (max 1024 characters)");
        if (typeof p.source !== 'string' || p.source === '') errors.push("'payload.source' is missing or blank");
        if (!SEVERITIES.includes(p.severity)) errors.push("'payload.severity' is invalid (must be one of: critical, error, warning, info)");
      }
      if (body.links !== undefined && (!Array.isArray(body.links) || body.links.some((l: any) => typeof l?.href !== 'string'))) errors.push("'links' is invalid");
    }
    if (errors.length) return send(400, { status: 'invalid event', message: 'Event object is invalid', errors });

    const dedupKey: string = body.dedup_key || randomBytes(16).toString('hex');
    const open = this.incidents.find((i) => i.incident_key === dedupKey && i.routing_key === body.routing_key && i.status !== 'resolved');
    if (body.event_action === 'trigger') {
      if (open) open.triggers++;
      else {
        this.incidents.push({
          id: `P${(++this.seq).toString().padStart(6, '0')}`, incident_key: dedupKey, routing_key: body.routing_key, status: 'triggered',
          title: body.payload.summary, pages: 1, triggers: 1, notes: [], created_at: new Date().toISOString(),
        });
      }
    } else if (open) {
      open.status = body.event_action === 'acknowledge' ? 'acknowledged' : 'resolved';
    }
    send(202, { status: 'success', message: 'Event processed', dedup_key: dedupKey });
  }

  private rest(req: IncomingMessage, u: URL, body: any, send: (s: number, p: unknown) => void): void {
    if (req.headers.authorization !== `Token token=${this.apiToken}`) return send(401, { error: { message: 'Unauthorized', code: 2006 } });
    if (req.method === 'GET' && u.pathname === '/incidents') {
      const key = u.searchParams.get('incident_key');
      const statuses = u.searchParams.getAll('statuses[]');
      const list = this.incidents
        .filter((i) => (key === null || i.incident_key === key) && (statuses.length === 0 || statuses.includes(i.status)))
        .map(({ routing_key: _r, notes: _n, pages: _p, triggers: _t, ...i }) => ({ ...i, type: 'incident', summary: i.title }));
      return send(200, { incidents: list, limit: 25, offset: 0, more: false, total: null });
    }
    const m = /^\/incidents\/([^/]+)\/notes$/.exec(u.pathname);
    if (req.method === 'POST' && m) {
      const from = req.headers.from;
      if (typeof from !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(from)) {
        return send(400, { error: { message: 'Invalid Input Provided', code: 2001, errors: ['A valid From header is required'] } });
      }
      const incident = this.incidents.find((i) => i.id === decodeURIComponent(m[1]!));
      if (!incident) return send(404, { error: { message: 'Not Found', code: 2100 } });
      const content = body?.note?.content;
      if (typeof content !== 'string' || content === '') return send(400, { error: { message: 'Invalid Input Provided', code: 2001, errors: ['Note content is required'] } });
      const note = { id: `N${(++this.seq).toString().padStart(6, '0')}`, content, from };
      incident.notes.push(note);
      return send(201, { note: { id: note.id, user: { id: 'PUSER01', type: 'user_reference', summary: from }, content, created_at: new Date().toISOString() } });
    }
    send(404, { error: { message: 'Not Found', code: 2100 } });
  }
}
