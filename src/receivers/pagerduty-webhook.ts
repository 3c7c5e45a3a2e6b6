import { createHmac, timingSafeEqual } from 'node:crypto';
import { answerAndClose } from './http-edge.js';
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { holdIncident, releaseIncident, type Operator } from '../run/operator.js';
import type { RunRow } from '../store/runs.js';

/**
 * PagerDuty V3 webhook envelope, the fields we read (unknown ones are accepted: PagerDuty adds fields).
 * https://developer.pagerduty.com/docs/webhooks/v3-overview/
 */
const envelope = z.object({
  event: z.object({
    id: z.string().min(1),
    event_type: z.string().min(1),
    resource_type: z.string(),
    occurred_at: z.string(),
    agent: z.object({ type: z.string(), id: z.string().optional(), summary: z.string().optional() }).passthrough().nullish(),
    data: z.object({
      id: z.string(),
      number: z.number().optional(),
      incident_key: z.string().nullish(),
      html_url: z.string().optional(),
      title: z.string().optional(),
    }).passthrough(),
  }).passthrough(),
}).passthrough();

/**
 * Checks `X-PagerDuty-Signature`: one or more comma-separated `v1=<hex>` HMAC-SHA256 signatures of
 * the raw body (several while a secret is rotated); one must match. Constant-time comparison.
 * https://developer.pagerduty.com/docs/webhooks/webhook-signatures/
 */
export function pagerDutySignatureValid(raw: Buffer, header: string | undefined, secret: string): boolean {
  if (!header) return false;
  const expected = createHmac('sha256', secret).update(raw).digest();
  let ok = false;
  for (const part of header.split(',')) {
    const m = /^\s*v1=([0-9a-f]{64})\s*$/i.exec(part);
    if (m && timingSafeEqual(Buffer.from(m[1]!, 'hex'), expected)) ok = true;
  }
  return ok;
}

export interface PagerDutyWebhookDeps {
  pagerDutyWebhookSecret?: string;
  operator: Operator;
  log: Logger;
}

/**
 * POST /webhooks/pagerduty. A person acknowledging one of our incidents (agent user_reference, not
 * the Events API acknowledgment remediator sends itself) puts a hold on its alert group: runs for
 * it are skipped with reason `human_ack` until the incident resolves. Each event id is handled
 * once (PagerDuty retries deliveries; a replay changes nothing).
 */
export function pagerDutyWebhookRouter(deps: PagerDutyWebhookDeps): Router {
  const router = express.Router();
  router.post('/webhooks/pagerduty', express.raw({ type: () => true, limit: '512kb' }), async (req, res) => {
    const secret = deps.pagerDutyWebhookSecret;
    if (!secret) return void res.status(403).json({ error: 'PagerDuty webhooks disabled: set PAGERDUTY_WEBHOOK_SECRET' });
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!pagerDutySignatureValid(raw, req.header('x-pagerduty-signature'), secret)) {
      return answerAndClose(res, 401, { error: 'bad or missing X-PagerDuty-Signature' });
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return void res.status(400).json({ error: 'body: not JSON' });
    }
    const parsed = envelope.safeParse(body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return void res.status(400).json({ error: `${i.path.join('.')}: ${i.message}` });
    }
    const e = parsed.data.event;
    const kind = e.event_type;
    if (e.resource_type !== 'incident' || (kind !== 'incident.acknowledged' && kind !== 'incident.resolved')) {
      return void res.status(200).json({ ignored: `event ${kind} is not used` });
    }
    const key = e.data.incident_key;
    if (!key) return void res.status(200).json({ ignored: 'incident has no incident_key' });
    const run = await deps.operator.runs.runOfIncident(key);
    if (!run) return void res.status(200).json({ ignored: 'not an incident of ours' });
    // Each event once: a replayed acknowledgment must not hold again after the incident resolved.
    if (!(await deps.operator.store.firstSeen('pagerduty', e.id, 7 * 24 * 3600))) return void res.status(200).json({ duplicate: e.id });
    try {
      const out = await applyEvent(deps, e, run, key);
      res.status(200).json(out);
    } catch (err) {
      await deps.operator.store.forget('pagerduty', e.id).catch(() => {}); // PagerDuty retries the delivery (5xx)
      throw err;
    }
  });
  return router;
}

type IncidentEvent = z.output<typeof envelope>['event'];

/** Holds or releases the alert group of one of our incidents (src/run/operator.ts records it and says it in the run's thread). */
async function applyEvent(deps: PagerDutyWebhookDeps, e: IncidentEvent, run: RunRow, key: string): Promise<Record<string, unknown>> {
  const incident = `#${e.data.number ?? e.data.id}`;
  const who = e.agent?.summary ?? e.agent?.id ?? 'someone';
  let message: string | undefined;
  if (e.event_type === 'incident.acknowledged') {
    // remediator's own Events API acknowledgment arrives with a service (integration) agent: not a person.
    if (e.agent?.type !== 'user_reference') return { ignored: `acknowledged by ${e.agent?.type ?? 'no agent'}, not a person` };
    message = await holdIncident(deps.operator, {
      hold: { dedupKey: key, by: who, incident, at: e.occurred_at, ...(e.data.html_url ? { url: e.data.html_url } : {}) },
      run, agent: e.agent.id ?? who, event: e.id,
    });
  } else {
    message = await releaseIncident(deps.operator, { dedupKey: key, incident, run, agent: e.agent?.id ?? 'unknown', event: e.id });
    if (!message) return { ignored: 'resolved, no hold' };
  }
  deps.log.info('pagerduty webhook', { event: e.event_type, incident, run: run.job_id });
  return { ok: true, run: run.job_id, message };
}
