import { createHmac, timingSafeEqual } from 'node:crypto';
import { answerAndClose } from './http-edge.js';
import express, { type Router } from 'express';
import { z } from 'zod';
import type { SafetyAudit } from '../store/safety-audit.js';
import type { Logger } from '../log.js';
import type { EventSink } from '../notifiers/events.js';
import { publishSafely } from '../notifiers/sink.js';
import type { RuleTable } from '../rules/load.js';
import type { SafetyStore } from '../redis/safety-state.js';

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
  safety: SafetyStore;
  safetyAudit: SafetyAudit;
  sink?: EventSink;
  table: () => RuleTable | undefined;
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
    const run = await deps.safetyAudit.runOfIncident(key);
    if (!run) return void res.status(200).json({ ignored: 'not an incident of ours' });
    // Each event once: a replayed acknowledgment must not hold again after the incident resolved.
    if (!(await deps.safety.firstSeen('pagerduty', e.id, 7 * 24 * 3600))) return void res.status(200).json({ duplicate: e.id });
    try {
      const out = await applyEvent(deps, e, run, key);
      res.status(200).json(out);
    } catch (err) {
      await deps.safety.forget('pagerduty', e.id).catch(() => {}); // PagerDuty retries the delivery (5xx)
      throw err;
    }
  });
  return router;
}

type IncidentEvent = z.output<typeof envelope>['event'];
type OurRun = NonNullable<Awaited<ReturnType<SafetyAudit['runOfIncident']>>>;

/** Holds or releases the alert group of one of our incidents; records it and says it in the run's thread. */
async function applyEvent(deps: PagerDutyWebhookDeps, e: IncidentEvent, run: OurRun, key: string): Promise<Record<string, unknown>> {
  const incident = `#${e.data.number ?? e.data.id}`;
  const who = e.agent?.summary ?? e.agent?.id ?? 'someone';
  let message: string;
  if (e.event_type === 'incident.acknowledged') {
    // remediator's own Events API acknowledgment arrives with a service (integration) agent: not a person.
    if (e.agent?.type !== 'user_reference') return { ignored: `acknowledged by ${e.agent?.type ?? 'no agent'}, not a person` };
    await deps.safety.hold({ dedupKey: key, by: who, incident, at: e.occurred_at, ...(e.data.html_url ? { url: e.data.html_url } : {}) });
    await deps.safetyAudit.recordAction({ kind: 'human_ack', scope: `pagerduty:${key}`, by: `pagerduty:${e.agent.id ?? who}`, reason: `acknowledged incident ${incident}`, details: { event: e.id, run: run.job_id } });
    message = `${who} acknowledged PagerDuty incident ${incident}: hands off. Automation will not act on this alert group until the incident resolves.`;
  } else {
    if (!(await deps.safety.release(key))) return { ignored: 'resolved, no hold' };
    await deps.safetyAudit.recordAction({ kind: 'human_ack_released', scope: `pagerduty:${key}`, by: `pagerduty:${e.agent?.id ?? 'unknown'}`, reason: `incident ${incident} resolved`, details: { event: e.id } });
    message = `PagerDuty incident ${incident} resolved: automation may act on this alert group again.`;
  }
  await deps.safetyAudit.addRunEvent(run.job_id, 'step', message, { pagerduty_event: e.id, incident });
  if (deps.sink) {
    const notify = deps.table()?.rules.find((r) => r.spec.name === run.rule)?.spec.notify ?? {};
    // To Slack only: PagerDuty already knows.
    await publishSafely(deps.sink, {
      type: 'step', jobId: run.job_id, rule: run.rule, action: run.action, target: run.target ?? undefined, alert: run.alert, groupKey: run.group_key ?? '',
      receiver: '', externalURL: '', dryRun: run.dry_run, message, notify: { ...notify, pagerduty: false }, at: new Date().toISOString(),
    }, deps.log);
  }
  deps.log.info('pagerduty webhook', { event: e.event_type, incident, run: run.job_id });
  return { ok: true, run: run.job_id, message };
}
