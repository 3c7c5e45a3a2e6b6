import { z } from 'zod';

/**
 * Alertmanager webhook payload, version 4 (notify/webhook/webhook.go). Tolerant: unknown keys
 * pass (newer Alertmanagers add notification_reason, routeLabels...); required fields and types
 * are checked so a broken sender gets a 400 naming the field.
 */
const kv = z.record(z.string());
const timestamp = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an RFC 3339 timestamp');

export const alertSchema = z
  .object({
    status: z.enum(['firing', 'resolved']),
    labels: kv,
    annotations: kv.default({}),
    startsAt: timestamp,
    endsAt: z.string().default('0001-01-01T00:00:00Z'),
    generatorURL: z.string().default(''),
    fingerprint: z.string().regex(/^[0-9a-f]{1,64}$/i, 'must be a hex fingerprint'),
  })
  .passthrough();

export const webhookSchema = z
  .object({
    version: z.literal('4', { errorMap: () => ({ message: 'unsupported payload version: remediator accepts version "4"' }) }),
    groupKey: z.string(),
    truncatedAlerts: z.number().int().min(0).default(0),
    status: z.enum(['firing', 'resolved']),
    receiver: z.string(),
    groupLabels: kv.default({}),
    commonLabels: kv.default({}),
    commonAnnotations: kv.default({}),
    externalURL: z.string().default(''),
    alerts: z.array(alertSchema),
  })
  .passthrough();

export type Webhook = z.output<typeof webhookSchema>;
