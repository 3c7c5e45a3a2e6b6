import { createHash } from 'node:crypto';

/**
 * Shards: one deployment's work spread over N key sets, so that a Redis Cluster's slots spread
 * them over its masters. Each shard is a delivery stream and a remediation queue under a prefix
 * with a hash tag of its own; the state that must be seen whole (pauses, quarantines, budgets,
 * holds, cooldowns, approvals, target locks, the notification outbox) stays under QUEUE_PREFIX,
 * the global shard. With one shard (the default) everything lives under QUEUE_PREFIX, as before.
 *
 * A delivery goes to the shard of its group key (a firing and its resolution travel together); a
 * job goes to the shard of its target (so runs of one target, which take turns on its lock, share
 * a queue), or of its run id when it takes no lock. Both are pure functions of the data: any
 * receiver or intake puts the same thing in the same shard, and exactly-once holds per run id.
 */
export interface Shards {
  /** The global prefix (QUEUE_PREFIX): safety state, locks, outbox, notify and verify queues. */
  global: string;
  /** One prefix per shard (index = shard number). */
  prefixes: string[];
  /** The shards this process consumes (every shard unless SHARDS_CONSUMED says otherwise). */
  consumed: number[];
}

const SLOTS = 16384;

/** Redis Cluster's key slot of a hash tag: CRC16 (XMODEM) mod 16384. https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/ */
export function slotOf(tag: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/**
 * The prefixes of `n` shards. Each shard's hash tag is chosen so its slot falls in the shard's
 * share of the 16384 slots (shard i in [i, i+1) * 16384 / n): a cluster whose masters own equal
 * slot ranges (what `redis-cli --cluster create` makes) gets the shards spread evenly.
 */
export function shardPrefixes(global: string, n: number): string[] {
  if (n <= 1) return [global];
  const base = global.replace(/[{}]/g, '');
  return Array.from({ length: n }, (_, i) => {
    const lo = Math.floor((i * SLOTS) / n);
    const hi = Math.floor(((i + 1) * SLOTS) / n);
    for (let k = 0; ; k++) {
      const tag = `s${i}.${k}`;
      const slot = slotOf(tag);
      if (slot >= lo && slot < hi) return `${base}:{${tag}}`;
    }
  });
}

/** "0-3,7" -> [0, 1, 2, 3, 7]; undefined when the text is not such a list of shards below `n`. */
export function parseShardList(text: string, n: number): number[] | undefined {
  const out = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to >= n) return undefined;
    for (let i = from; i <= to; i++) out.add(i);
  }
  return out.size ? [...out].sort((a, b) => a - b) : undefined;
}

export function shardsOf(global: string, n: number, consumed?: number[]): Shards {
  return { global, prefixes: shardPrefixes(global, n), consumed: consumed ?? Array.from({ length: Math.max(1, n) }, (_, i) => i) };
}

/** A stable shard for a key (sha1, not JavaScript's hash: every process and version agree). */
export function shardFor(key: string, n: number): number {
  if (n <= 1) return 0;
  return createHash('sha1').update(key).digest().readUInt32BE(0) % n;
}
