import { storable, storableDeep } from '../core/text.js';
import { api } from '@pagerduty/pdjs';
import type { AuditStore } from '../store/journal-store.js';
import { abortMessage, deadline } from '../core/deadline.js';
import { silentLogger, type Logger } from '../log.js';
import type { RunEvent } from './events.js';
import {
  dedupKeyFor,
  fixedOutcome,
  noteContent,
  pageEvent,
  planFor,
  policyOf,
  retryAfterMs,
  stateEvent,
  type EnqueueBody,
  type PagerDutyPolicy,
} from './pagerduty-events.js';
import { NotifyNotYetError, NotifyPermanentError, NotifyRetryAfterError, type DeliveryContext, type Notifier } from './types.js';

export interface PagerDutyNotifierOptions {
  /** Where routing keys are read from, by the name a rule gives (`routing_key_env`). */
  env: NodeJS.ProcessEnv;
  /** Env var holding the routing key of rules that name none. Default PAGERDUTY_ROUTING_KEY. */
  defaultRoutingKeyEnv?: string;
  /** Events API base URL (PAGERDUTY_EVENTS_URL). Default https://events.pagerduty.com. */
  eventsUrl?: string;
  /** REST API token (PAGERDUTY_API_TOKEN): enables incident notes for steps and retries. */
  apiToken?: string;
  /** REST API base URL (PAGERDUTY_API_URL). Default https://api.pagerduty.com. */
  apiUrl?: string;
  /** Email of a PagerDuty user, sent as `From` on notes (PAGERDUTY_FROM); required for notes. */
  from?: string;
  audit: AuditStore;
  log?: Logger;
  /** remediator's public URL (PUBLIC_URL): incidents link to `<linkBase>/api/runs/<jobId>`. */
  linkBase?: string;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
  /** How often an alert_resolved event looks again at a run that has not finished yet. Default 5 s. */
  runPollMs?: number;
  /** How long an alert_resolved event waits for its run to finish before giving up. Default 1 h. */
  runWaitMaxMs?: number;
}

const DEFAULT_EVENTS_URL = 'https://events.pagerduty.com';
const DEFAULT_API_URL = 'https://api.pagerduty.com';
/** Events API 429 without Retry-After: PagerDuty allows about 120 events/min per routing key. */
const RATE_LIMIT_FALLBACK_MS = 30_000;

/**
 * The PagerDuty notifier: acknowledges an incident while a fix runs, resolves it when the fix
 * worked (per the rule's `resolve`), pages (trigger, critical) when the fix failed or no fix
 * exists, and, with a REST token, adds incident notes for steps and retries.
 *
 * Events API: plain fetch, not pdjs. pdjs's `event()` always builds `https://${server}/v2/enqueue`,
 * and every pdjs request (`event()`, `api()`, its internal `request()`) goes through one transport
 * that retries a 429 by itself three times after a fixed 20 s sleep, ignoring Retry-After and
 * the AbortSignal while it sleeps. Rate limits must reach the notification worker instead
 * (NotifyRetryAfterError re-delays the job without using an attempt), so events use fetch.
 * REST notes use pdjs `api({url})` (a full URL works, plain http included); its 429 retry is
 * bounded there by `retryTimeout` and what is left over is handled like the Events API.
 *
 * The routing key and the API token are secrets: they are only ever put in a request; errors,
 * logs and audit details carry the env var's name at most.
 */
export function createPagerDutyNotifier(opts: PagerDutyNotifierOptions): Notifier {
  const log = (opts.log ?? silentLogger).child({ notifier: 'pagerduty' });
  const defaultKeyEnv = opts.defaultRoutingKeyEnv ?? 'PAGERDUTY_ROUTING_KEY';
  const eventsUrl = `${(opts.eventsUrl ?? DEFAULT_EVENTS_URL).replace(/\/+$/, '')}/v2/enqueue`;
  const apiUrl = (opts.apiUrl ?? DEFAULT_API_URL).replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const runPollMs = opts.runPollMs ?? 5000;
  const runWaitMaxMs = opts.runWaitMaxMs ?? 3_600_000;
  const canNote = Boolean(opts.apiToken && opts.from);
  if (opts.apiToken && !opts.from) log.warn('PAGERDUTY_API_TOKEN is set but PAGERDUTY_FROM is not: incident notes are off (PagerDuty requires a From user)');

  const warned = new Set<string>();
  const once = (key: string, level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => {
    if (warned.has(key)) return;
    warned.add(key);
    log[level](msg, fields);
  };

  /** The env var holding this rule's routing key, and whether it is set. No fallback to the default when a rule names its own: that would page another service. */
  const keyEnvOf = (policy: PagerDutyPolicy) => policy.routing_key_env ?? defaultKeyEnv;
  const routingKey = (policy: PagerDutyPolicy) => {
    const v = opts.env[keyEnvOf(policy)];
    return v === undefined || v === '' ? undefined : v;
  };

  /** Removes a secret from text that came back from PagerDuty (it never should echo it, but errors go to the audit). */
  const redact = (text: string, ...secrets: (string | undefined)[]) =>
    secrets.reduce<string>((t, s) => (s && s.length >= 4 ? t.split(s).join('[redacted]') : t), text);

  /** The per-request timeout inside the delivery's own deadline (ctx.signal); dispose it in a finally. */
  const requestDeadline = (ctx: DeliveryContext) => deadline('request timeout', timeoutMs, [ctx.signal]);

  /** Maps an HTTP failure to the notifier error taxonomy (see ./types.ts). */
  const failure = (what: string, status: number, message: string, headers: { get(n: string): string | null }, detail: Record<string, unknown>): Error => {
    const text = `${what} answered ${status}${message ? `: ${message}` : ''}`;
    if (status === 429) return new NotifyRetryAfterError(text, retryAfterMs(headers.get('retry-after'), RATE_LIMIT_FALLBACK_MS));
    // 400 is final (the same event will never be valid); other 4xx too (wrong URL, auth), except a request timeout.
    if (status >= 400 && status < 500 && status !== 408) return new NotifyPermanentError(text, { status, ...detail });
    return new Error(text);
  };

  /** A request that got no answer; an abort names the deadline that fired (this request's or the delivery's). */
  const networkError = (what: string, err: unknown, signal: AbortSignal): Error => {
    if (signal.aborted) return new Error(`${what}: ${abortMessage(signal.reason)}`);
    const e = err as Error;
    const cause = (e.cause as { code?: string } | undefined)?.code;
    return new Error(`${what}: ${cause ?? e.message}`);
  };

  /** POST /v2/enqueue. https://developer.pagerduty.com/docs/events-api-v2/overview/ (202 / 400 / 429 / 5xx). */
  async function enqueue(body: EnqueueBody, key: string, ctx: DeliveryContext): Promise<Record<string, unknown>> {
    const what = `PagerDuty Events API (${body.event_action})`;
    const request = requestDeadline(ctx);
    let res: Response;
    let text: string;
    try {
      res = await fetch(eventsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'remediator' },
        // Summaries and details carry alert text and target answers: make them sendable (core/text.ts).
        body: JSON.stringify({ routing_key: key, ...storableDeep(body) }),
        signal: request.signal,
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
      ctx.log.debug('pagerduty event accepted', { event_action: body.event_action, dedup_key: body.dedup_key });
      return { status: 202, event_action: body.event_action, dedup_key: data.dedup_key ?? body.dedup_key };
    }
    const errors = Array.isArray(data.errors) ? data.errors.map((e) => redact(String(e), key)) : undefined;
    const message = redact([data.message ?? text.slice(0, 200), ...(errors ?? [])].filter(Boolean).join('; '), key);
    throw failure(what, res.status, message, res.headers, { event_action: body.event_action, dedup_key: body.dedup_key, errors });
  }

  /** One REST call through pdjs; non-2xx resolve in pdjs, so the status is checked here. */
  async function rest(method: 'GET' | 'POST', path: string, ctx: DeliveryContext, data?: object): Promise<{ status: number; data: any }> {
    const what = `PagerDuty REST API (${method} ${path.split('?')[0]})`;
    let res: { status: number; data?: any; headers: { get(n: string): string | null } };
    const request = requestDeadline(ctx);
    try {
      res = await api({
        url: `${apiUrl}${path}`,
        method,
        token: opts.apiToken,
        tokenType: 'token', // Authorization: Token token=...
        headers: { From: opts.from ?? '' },
        data,
        signal: request.signal,
        requestTimeout: 0, // pdjs's timer never aborts, and keeps the process alive: our signal times out instead
        retryTimeout: 1000, // pdjs retries a 429 itself (3 times); keep those waits short
      });
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
    const message = redact([e?.message, ...(e?.errors ?? []).map(String)].filter(Boolean).join('; '), opts.apiToken);
    throw failure(what, res.status, message, res.headers, {});
  }

  /** Adds a note to the open incident with this dedup key (GET /incidents?incident_key=, POST /incidents/{id}/notes). */
  async function note(event: RunEvent, dedupKey: string, ctx: DeliveryContext): Promise<Record<string, unknown>> {
    const found = await rest('GET', `/incidents?${new URLSearchParams({ incident_key: dedupKey })}`, ctx);
    const incidents = (found.data?.incidents ?? []) as { id: string; status?: string }[];
    const incident = incidents.find((i) => i.status !== 'resolved') ?? incidents[0];
    if (!incident) return { note: 'not added', why: 'no PagerDuty incident with this incident_key', dedup_key: dedupKey };
    const res = await rest('POST', `/incidents/${encodeURIComponent(incident.id)}/notes`, ctx, { note: { content: storable(noteContent(event)) } });
    return { status: res.status, note_id: res.data?.note?.id, incident_id: incident.id, dedup_key: dedupKey };
  }

  return {
    name: 'pagerduty',

    accepts(event) {
      const policy = policyOf(event);
      if (!policy) {
        once(`off:${event.rule}`, 'info', 'PagerDuty is off for this rule (notify.pagerduty: false)', { rule: event.rule });
        return false;
      }
      if (!routingKey(policy)) {
        once(`key:${event.rule}:${keyEnvOf(policy)}`, 'warn', 'PagerDuty routing key env var is not set: nothing is sent to PagerDuty for this rule', {
          rule: event.rule,
          routing_key_env: keyEnvOf(policy),
        });
        return false;
      }
      const plan = planFor(event, policy, canNote);
      return plan.kind !== 'none';
    },

    async deliver(event, ctx) {
      const policy = policyOf(event);
      const key = policy && routingKey(policy);
      if (!policy || !key) {
        // Accepted earlier, changed since (rule edited, env var removed): final, and says which variable.
        throw new NotifyPermanentError(policy ? `routing key env var ${keyEnvOf(policy)} is not set` : 'notify.pagerduty is false');
      }
      const plan = planFor(event, policy, canNote);
      const dedupKey = dedupKeyFor(policy, event);
      switch (plan.kind) {
        case 'none':
          return { skipped: plan.why };
        case 'event':
          return enqueue(stateEvent(plan.action, dedupKey), key, ctx);
        case 'page': {
          const run = await opts.audit.getRun(event.jobId);
          return enqueue(pageEvent(event, policy, { run, linkBase: opts.linkBase }), key, ctx);
        }
        case 'note':
          return note(event, dedupKey, ctx);
        case 'resolve_if_fixed': {
          // Resolve only what this run fixed: a failed run's page belongs to the human it woke, and
          // runs skipped for cooldown or as duplicates never acknowledged anything.
          const run = await opts.audit.getRun(event.jobId);
          if (run && ['queued', 'running', 'retrying'].includes(run.state)) {
            if (Date.now() - Date.parse(event.at) < runWaitMaxMs) throw new NotifyNotYetError(`run ${run.state}: resolve waits for its outcome`, runPollMs);
            return { skipped: `run still ${run.state} after ${Math.round(runWaitMaxMs / 1000)} s: not resolving` };
          }
          if (!run || !fixedOutcome(run.state, run.error_reason)) {
            return { skipped: `run ${run ? run.state : 'not found'}${run?.error_reason ? ` (${run.error_reason})` : ''}: not resolving` };
          }
          return enqueue(stateEvent('resolve', dedupKey), key, ctx);
        }
      }
    },
  };
}
