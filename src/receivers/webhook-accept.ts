import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { RuleTable } from '../rules/load.js';
import { appendDelivery, appendDeliveryReplicated } from '../redis/delivery-stream.js';
import { shardFor } from '../core/shards.js';
import type { Metrics } from '../metrics.js';
import { checkWebhook } from '../core/alert.js';
import { withTimeout } from '../core/deadline.js';

export interface AcceptDeps {
  table: () => RuleTable | undefined;
  /** A fail-fast connection (no offline queue) for the delivery's one XADD. */
  redis: Redis;
  prefix: string;
  /** The shards' prefixes (src/core/shards.ts): a delivery goes to its group key's shard. Default: `prefix` alone. */
  shardPrefixes?: string[];
  /** Replicas that must have the delivery before it is answered 2xx (Redis WAIT), and how long to wait; 0: off. */
  waitReplicas?: { replicas: number; timeoutMs: number };
  dryRun: boolean;
  /** Longest a request may wait on Redis before answering 503. */
  redisDeadlineMs?: number;
  log: Logger;
  /** Counts requests and alerts for /metrics. */
  metrics?: Metrics;
}

/** An HTTP answer, written by whichever path read the request (node:http or express). */
export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * Accepts one webhook delivery: checks it against the payload schema (a 400 names the first bad
 * field), then writes it to the delivery stream in one XADD and answers 200 once Redis has it.
 * Redis trouble is a fast 503 so Alertmanager retries. Matching and enqueueing happen in the
 * intake (src/workers/intake.ts), which reads the stream.
 */
export async function acceptDelivery(deps: AcceptDeps, text: string, body: unknown): Promise<Answer> {
  // The quick check passes what Alertmanager sends; zod runs for the rest, and names the bad field.
  const checked = checkWebhook(body);
  if (!checked.ok) {
    const { issues } = checked;
    deps.log.warn('webhook refused: invalid payload', { issues: issues.slice(0, 5) });
    return { status: 400, body: { error: `invalid payload: ${issues[0]!.path}: ${issues[0]!.message}`, issues } };
  }
  if (!deps.table()) return { status: 503, body: { error: 'rules not loaded yet' } };
  const hook = body as { groupKey: string; truncatedAlerts?: number; alerts: { status: string }[] };
  if (hook.truncatedAlerts && hook.truncatedAlerts > 0) {
    // max_alerts in Alertmanager's webhook_config cut this group: those alerts never reach us.
    deps.log.warn('Alertmanager truncated this delivery: raise max_alerts (0 = no limit)', { groupKey: hook.groupKey, truncatedAlerts: hook.truncatedAlerts });
  }
  const shards = deps.shardPrefixes ?? [deps.prefix];
  const prefix = shards[shardFor(hook.groupKey, shards.length)]!;
  const delivery = { body: text, receivedAt: new Date().toISOString(), dryRun: deps.dryRun };
  const wait = deps.waitReplicas;
  try {
    if (!wait?.replicas) await withTimeout(appendDelivery(deps.redis, prefix, delivery), deps.redisDeadlineMs ?? 2000, 'Redis (XADD of the delivery)');
    else {
      const acked = await withTimeout(appendDeliveryReplicated(deps.redis, prefix, delivery, wait.replicas, wait.timeoutMs), (deps.redisDeadlineMs ?? 2000) + wait.timeoutMs, 'Redis (XADD and WAIT)');
      if (acked < wait.replicas) {
        // Written, but a failover now could lose it: Alertmanager sends it again (the journal makes one run of both).
        deps.log.warn('webhook not accepted: the delivery did not reach enough replicas in time', { replicas: acked, wanted: wait.replicas, timeoutMs: wait.timeoutMs });
        return { status: 503, headers: { 'Retry-After': '1' }, body: { error: `delivery reached ${acked} of ${wait.replicas} Redis replicas in time, retry later` } };
      }
    }
  } catch (err) {
    deps.log.warn('webhook not accepted: redis unavailable', { error: (err as Error).message });
    return { status: 503, headers: { 'Retry-After': '1' }, body: { error: 'queue unavailable, retry later' } };
  }
  if (deps.metrics) {
    for (const a of hook.alerts) deps.metrics.alertsReceived.inc({ status: a.status });
    deps.metrics.jobsEnqueued.inc({ queue: 'deliveries' });
  }
  // At debug: the info line of each webhook is written where its decisions are known (the ingest
  // stage's "delivery decided", with its runs). One more info line here cost the receiver about a
  // third of its throughput (bench/RESULTS.md).
  deps.log.debug('webhook accepted', { groupKey: hook.groupKey, alerts: hook.alerts.length });
  return { status: 200, body: { status: 'accepted', alerts: hook.alerts.length } };
}
