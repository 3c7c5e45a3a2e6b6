import { z } from 'zod';
import { certainlyValid } from './alert-check.js';
import { isRfc3339, storable, storableRecord } from './text.js';

/** One alert of a webhook, as remediator keeps it (copied from the payload; labels are untrusted). */
export interface AlertInfo {
  fingerprint: string;
  status: 'firing' | 'resolved';
  startsAt: string;
  endsAt: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
}

const kv = z.record(z.string());
const timestamp = z.string().refine(isRfc3339, 'must be an RFC 3339 timestamp with a four-digit year');

/**
 * Alertmanager webhook payload, version 4 (notify/webhook/webhook.go). Tolerant: unknown keys
 * pass (newer Alertmanagers add notification_reason, routeLabels...); required fields and types
 * are checked so a broken sender gets a 400 naming the field.
 */
const alertSchema = z
  .object({
    status: z.enum(['firing', 'resolved']),
    labels: kv,
    annotations: kv.default({}),
    startsAt: timestamp,
    endsAt: timestamp.default('0001-01-01T00:00:00Z'),
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

/** A delivery after the check: defaults filled in, every string storable (see normalizeWebhook). */
export interface Webhook {
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: AlertInfo[];
}

export interface PayloadIssue {
  /** Where: `alerts[0].startsAt`, or `(body)`. */
  path: string;
  message: string;
}

/**
 * The one check of a webhook body. What Alertmanager sends passes a hand-written pass at a
 * fraction of zod's cost (src/core/alert-check.ts, never looser than the schema); anything else
 * goes through the schema, which names the bad field. On success the value is the normalised
 * webhook: defaults filled in, and every string made storable (NUL and lone surrogates become
 * U+FFFD, src/core/text.ts), so matching, templating, the audit, Slack and PagerDuty all see the
 * same well-formed value.
 */
export function checkWebhook(body: unknown): { ok: true; webhook: Webhook } | { ok: false; issues: PayloadIssue[] } {
  if (!certainlyValid(body)) {
    const parsed = webhookSchema.safeParse(body);
    if (!parsed.success) return { ok: false, issues: parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })) };
  }
  return { ok: true, webhook: normalizeWebhook(body as RawWebhook) };
}

/** A body that passed the check, before defaults. */
type RawWebhook = Partial<Webhook> & { groupKey: string; receiver: string; status: 'firing' | 'resolved'; alerts: (Partial<AlertInfo> & Pick<AlertInfo, 'status' | 'labels' | 'startsAt' | 'fingerprint'>)[] };

function normalizeWebhook(b: RawWebhook): Webhook {
  const rec = (r: Record<string, string> | undefined) => (r ? storableRecord(r) : {});
  return {
    groupKey: storable(b.groupKey),
    truncatedAlerts: b.truncatedAlerts ?? 0,
    status: b.status,
    receiver: storable(b.receiver),
    groupLabels: rec(b.groupLabels),
    commonLabels: rec(b.commonLabels),
    commonAnnotations: rec(b.commonAnnotations),
    externalURL: storable(b.externalURL ?? ''),
    alerts: b.alerts.map((a) => ({
      fingerprint: a.fingerprint,
      status: a.status,
      startsAt: a.startsAt,
      endsAt: a.endsAt ?? '0001-01-01T00:00:00Z',
      labels: rec(a.labels),
      annotations: rec(a.annotations),
      generatorURL: storable(a.generatorURL ?? ''),
    })),
  };
}

function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(body)';
}

/**
 * The one normaliser of startsAt: the same instant written with 0-9 fractional digits or an
 * offset gives the same text (ISO, milliseconds, UTC), so job ids and incident keys agree.
 */
export function startsAtKey(startsAt: string): string {
  const ms = Date.parse(startsAt);
  return Number.isNaN(ms) ? startsAt : new Date(ms).toISOString();
}
