import { z } from 'zod';
import { isRfc3339, storable, storableRecord } from './text.js';

/**
 * Alertmanager webhook payload, version 4 (notify/webhook/webhook.go). Tolerant: unknown keys
 * pass (newer Alertmanagers add notification_reason, routeLabels...); required fields and types
 * are checked so a broken sender gets a 400 naming the field.
 */
// Strings are made storable here, the boundary: NUL and lone surrogates become U+FFFD, so matching,
// templating, the audit, Slack and PagerDuty all see the same well-formed value (src/core/text.ts).
function schemas(store: boolean) {
  const kv = store ? z.record(z.string()).transform(storableRecord) : z.record(z.string());
  const text = store ? z.string().transform(storable) : z.string();
  const timestamp = z.string().refine(isRfc3339, 'must be an RFC 3339 timestamp with a four-digit year');

  const alert = z
    .object({
      status: z.enum(['firing', 'resolved']),
      labels: kv,
      annotations: kv.default({}),
      startsAt: timestamp,
      endsAt: timestamp.default('0001-01-01T00:00:00Z'),
      generatorURL: text.default(''),
      fingerprint: z.string().regex(/^[0-9a-f]{1,64}$/i, 'must be a hex fingerprint'),
    })
    .passthrough();

  const webhook = z
    .object({
      version: z.literal('4', { errorMap: () => ({ message: 'unsupported payload version: remediator accepts version "4"' }) }),
      groupKey: text,
      truncatedAlerts: z.number().int().min(0).default(0),
      status: z.enum(['firing', 'resolved']),
      receiver: text,
      groupLabels: kv.default({}),
      commonLabels: kv.default({}),
      commonAnnotations: kv.default({}),
      externalURL: text.default(''),
      alerts: z.array(alert),
    })
    .passthrough();
  return { alert, webhook };
}

const stored = schemas(true);
export const alertSchema = stored.alert;
export const webhookSchema = stored.webhook;
/**
 * The same checks without the transforms, for the receiver: it stores the delivery as received and
 * only needs the verdict (and the 400 naming the field); the ingest stage parses with webhookSchema.
 */
export const webhookCheck = schemas(false).webhook;

export type Webhook = z.output<typeof webhookSchema>;
