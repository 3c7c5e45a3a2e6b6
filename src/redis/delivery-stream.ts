import type { Redis } from 'ioredis';

/**
 * Webhook deliveries, as accepted, in one Redis Stream per queue prefix: the receiver's only write
 * (one XADD), read by the ingest stage (src/queue/ingest-stage.ts) in batches through a consumer
 * group, so each delivery is fanned out by one worker at a time, and re-read if that worker dies.
 * https://redis.io/docs/latest/develop/data-types/streams/#consumer-groups
 */
export const streamKey = (prefix: string): string => `${prefix}:deliveries`;
export const INGEST_GROUP = 'ingest';

/** One accepted delivery: the JSON text as received (already validated) and when it was received. */
export interface Delivery {
  id: string;
  body: string;
  receivedAt: string;
  /** The receiver runs with DRY_RUN: every job of this delivery is a dry run. */
  dryRun: boolean;
}

/** Appends one delivery; the entry id is the delivery's identity from then on. */
export async function appendDelivery(redis: Redis, prefix: string, d: Omit<Delivery, 'id'>): Promise<string> {
  return (await redis.xadd(streamKey(prefix), '*', 'd', d.body, 't', d.receivedAt, 'n', d.dryRun ? '1' : '0')) as string;
}

/**
 * Appends one delivery and waits until `replicas` replicas of the stream's master have it (Redis
 * WAIT, in the same pipeline so it goes to that master): a failover that promotes a replica then
 * keeps every delivery answered 2xx. Returns how many replicas acknowledged it within `timeoutMs`.
 * https://redis.io/docs/latest/commands/wait/
 */
export async function appendDeliveryReplicated(redis: Redis, prefix: string, d: Omit<Delivery, 'id'>, replicas: number, timeoutMs: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const res = await redis.pipeline().xadd(streamKey(prefix), '*', 'd', d.body, 't', d.receivedAt, 'n', d.dryRun ? '1' : '0').wait(replicas, timeoutMs).exec();
    const [added, waited] = res ?? [];
    // After a failover the client's slot map is stale: the old master (now a replica) answers
    // MOVED to the XADD and an error to the WAIT. ioredis follows a redirection in a pipeline only
    // when every command got the same one, so it never would here: refresh the slot map and send
    // again (a redirected XADD was not written: no copy).
    if (attempt === 1 && added?.[0] && isRedirection(added[0]) && refreshes(redis)) {
      await new Promise<void>((ok) => redis.refreshSlotsCache(() => ok()));
      continue;
    }
    if (added?.[0]) throw added[0];
    if (waited?.[0]) throw waited[0];
    return Number(waited?.[1] ?? 0);
  }
}

/** MOVED or ASK: the slot is served elsewhere; the command was not run where it was sent. */
export const isRedirection = (err: Error): boolean => /^(MOVED|ASK) /.test(err.message);

/** An ioredis Cluster (it has a slot map to refresh). */
function refreshes(redis: Redis): redis is Redis & { refreshSlotsCache(cb: (err?: Error | null) => void): void } {
  return typeof (redis as { refreshSlotsCache?: unknown }).refreshSlotsCache === 'function';
}

/** Creates the consumer group (and the stream) if missing; safe to call from every worker. */
export async function ensureGroup(redis: Redis, prefix: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', streamKey(prefix), INGEST_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!/BUSYGROUP/.test((err as Error).message)) throw err;
  }
}

type RawEntries = [id: string, fields: string[] | null][];

/** Entries as ioredis returns them, as deliveries. A deleted entry still pending comes back with no fields: skipped. */
export function toDeliveries(entries: RawEntries): { deliveries: Delivery[]; gone: string[] } {
  const deliveries: Delivery[] = [];
  const gone: string[] = [];
  for (const [id, fields] of entries) {
    if (!fields) {
      gone.push(id);
      continue;
    }
    let body = '';
    let receivedAt = '';
    let dryRun = false;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'd') body = fields[i + 1]!;
      else if (fields[i] === 't') receivedAt = fields[i + 1]!;
      else if (fields[i] === 'n') dryRun = fields[i + 1] === '1';
    }
    deliveries.push({ id, body, receivedAt, dryRun });
  }
  return { deliveries, gone };
}

/**
 * Reads up to `count` deliveries for this consumer: its own pending ones first when `pending`
 * (after a failed batch, or at start), else new ones, waiting up to `blockMs` for them.
 */
export async function readDeliveries(redis: Redis, prefix: string, consumer: string, o: { count: number; blockMs: number; pending: boolean }): Promise<{ deliveries: Delivery[]; gone: string[] }> {
  const key = streamKey(prefix);
  const res = (o.pending
    ? await redis.xreadgroup('GROUP', INGEST_GROUP, consumer, 'COUNT', o.count, 'STREAMS', key, '0')
    : await redis.xreadgroup('GROUP', INGEST_GROUP, consumer, 'COUNT', o.count, 'BLOCK', o.blockMs, 'STREAMS', key, '>')) as [string, RawEntries][] | null;
  return toDeliveries(res?.[0]?.[1] ?? []);
}

/** Takes over deliveries another consumer read but did not finish within `minIdleMs` (it died). */
export async function claimStale(redis: Redis, prefix: string, consumer: string, minIdleMs: number, count: number): Promise<{ deliveries: Delivery[]; gone: string[] }> {
  const res = (await redis.xautoclaim(streamKey(prefix), INGEST_GROUP, consumer, minIdleMs, '0-0', 'COUNT', count)) as [string, RawEntries, string[]?];
  const out = toDeliveries(res[1] ?? []);
  // Redis 7 lists entries deleted while pending apart: acknowledge them too.
  out.gone.push(...(res[2] ?? []));
  return out;
}

/** Done with these deliveries: acknowledged and deleted, so the stream holds only unfinished work. */
export async function finish(redis: Redis, prefix: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const key = streamKey(prefix);
  await redis.multi().xack(key, INGEST_GROUP, ...ids).xdel(key, ...ids).exec();
}

/**
 * Removes a stopping consumer from the group, so restarts do not pile up names in it; only when it
 * holds nothing (DELCONSUMER drops its pending entries, which nobody could then take over).
 */
export async function forgetConsumer(redis: Redis, prefix: string, consumer: string): Promise<void> {
  const pending = (await redis.xpending(streamKey(prefix), INGEST_GROUP, '-', '+', 1, consumer)) as unknown[];
  if (pending.length === 0) await redis.xgroup('DELCONSUMER', streamKey(prefix), INGEST_GROUP, consumer);
}
