import { z } from 'zod';
import type { Webhook } from '../core/alert.js';

/**
 * An alert as Alertmanager's API v2 returns it (gettableAlert in its OpenAPI spec); tolerant,
 * like the webhook schema: unknown keys pass.
 * https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml
 */
export const apiAlertSchema = z
  .object({
    labels: z.record(z.string()),
    annotations: z.record(z.string()).default({}),
    startsAt: z.string(),
    endsAt: z.string().default('0001-01-01T00:00:00Z'),
    generatorURL: z.string().default(''),
    fingerprint: z.string(),
    status: z.object({ state: z.enum(['active', 'suppressed', 'unprocessed']) }).passthrough(),
  })
  .passthrough();
export type ApiAlert = z.output<typeof apiAlertSchema>;

/**
 * Active API alerts as the v4 webhook payloads Alertmanager would have sent, one per alertname.
 * Fingerprint and startsAt are passed through unchanged: the job id (fingerprint + startsAt to the
 * millisecond + rule, src/rules/table.ts) is the one the webhook produces. The API's timestamps
 * have milliseconds where the webhook's have nanoseconds; the job id is normalised to milliseconds.
 * The real group key depends on Alertmanager's route tree, which the API does not say: these
 * payloads carry `reconciled:{alertname="…"}` instead.
 */
export function toWebhooks(alerts: ApiAlert[], receiver: string, externalURL: string): Webhook[] {
  const groups = new Map<string, ApiAlert[]>();
  for (const a of alerts) {
    const name = a.labels.alertname ?? '';
    groups.set(name, [...(groups.get(name) ?? []), a]);
  }
  return [...groups].map(([alertname, group]) => ({
    version: '4',
    groupKey: `reconciled:{alertname=${JSON.stringify(alertname)}}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver,
    groupLabels: { alertname },
    commonLabels: { alertname },
    commonAnnotations: {},
    externalURL,
    alerts: group.map((a) => ({
      status: 'firing' as const,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: a.startsAt,
      endsAt: a.endsAt,
      generatorURL: a.generatorURL,
      fingerprint: a.fingerprint,
    })),
  }));
}
