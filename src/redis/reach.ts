import type { Cluster, Redis } from 'ioredis';
import { describeRedis, liveWorkers, type WorkerBeat } from './heartbeat.js';

/**
 * Where a kill-switch command wrote and who reads it there: the Redis and prefix, the live
 * workers registered under them (src/redis/heartbeat.ts) and how many of them run something the
 * scope names. `warning` is set when the change reaches no running worker.
 */
export interface Reach {
  redis: string;
  prefix: string;
  /** Live workers under this Redis and prefix. */
  live: number;
  /** Of those, workers the change applies to: all of them, or those whose rules have the rule or target it names. */
  applies: number;
  workers: WorkerBeat[];
  /** Distinct rules hashes of the live workers (more than one: they run different rules). */
  rulesHashes: string[];
  /** Shard trouble among the live workers: shards no live worker consumes, or workers that disagree on SHARDS. */
  shardWarning?: string;
  warning?: string;
}

/** `scope`: the pause scope written ("all", "rule:x"...), or undefined for resume and status. */
export async function reach(redis: Redis | Cluster, prefix: string, scope?: string): Promise<Reach> {
  const workers = await liveWorkers(redis, prefix);
  const where = describeRedis(redis);
  // A rule or target pause holds back only workers whose rules have it; every worker has every action.
  const m = scope ? /^(rule|target):(.+)$/.exec(scope) : null;
  const applies = m ? workers.filter((w) => w.scopes[`${m[1] as 'rule' | 'target'}s`].includes(m[2]!)).length : workers.length;
  const rulesHashes = [...new Set(workers.map((w) => w.rulesHash))];
  let warning: string | undefined;
  if (workers.length === 0) {
    warning = `no live worker reads ${where} with prefix ${prefix}: the running service does not see this. Compare REDIS_URL and QUEUE_PREFIX with its "remediator started" log line (queuePrefix), and run this where the service runs`;
  } else if (applies === 0) {
    warning = `none of the ${workers.length} live workers has ${scope} in its rules: this holds nothing back`;
  }
  const shardWarning = shardTrouble(workers);
  return { redis: where, prefix, live: workers.length, applies, workers, rulesHashes, ...(warning ? { warning } : {}), ...(shardWarning ? { shardWarning } : {}) };
}

/** Shards that no live worker consumes (their deliveries and jobs wait), or workers that disagree on SHARDS. */
export function shardTrouble(workers: WorkerBeat[]): string | undefined {
  const totals = [...new Set(workers.map((w) => w.shards?.total ?? 1))];
  if (totals.length > 1) return `the live workers disagree on SHARDS (${totals.join(', ')}): every process of a deployment must use the same number`;
  const total = totals[0];
  if (!total || total <= 1) return undefined;
  const consumed = new Set(workers.flatMap((w) => w.shards?.consumed ?? []));
  const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !consumed.has(i));
  return missing.length ? `no live worker consumes shard${missing.length > 1 ? 's' : ''} ${ranges(missing)} of ${total}: their deliveries and runs wait (check SHARDS_CONSUMED)` : undefined;
}

/** [0, 1, 2, 5] -> "0-2,5" (the form SHARDS_CONSUMED takes). */
function ranges(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    out.push(j > i ? `${xs[i]}-${xs[j]}` : String(xs[i]));
    i = j + 1;
  }
  return out.join(',');
}

/** The lines the CLI prints after pause, resume and status. */
export function reachLines(r: Reach, verb: 'written to' | 'read from', now = Date.now()): string[] {
  const out = [`${verb} ${r.redis} (REDIS_URL), prefix ${r.prefix} (QUEUE_PREFIX)`];
  out.push(`live workers there: ${r.live}${r.applies !== r.live ? ` (${r.applies} of them run what it names)` : ''}`);
  for (const w of r.workers) {
    const ago = Math.max(0, Math.round((now - Date.parse(w.seenAt)) / 1000));
    const shards = w.shards && w.shards.total > 1 ? `, shards ${ranges(w.shards.consumed)} of ${w.shards.total}` : '';
    out.push(`  ${w.id} role ${w.role}, version ${w.version}, rules ${w.rulesHash} (${w.rules})${shards}, seen ${ago}s ago`);
  }
  if (r.rulesHashes.length > 1) out.push(`warning: the live workers run different rules (hashes ${r.rulesHashes.join(', ')})`);
  if (r.shardWarning) out.push(`warning: ${r.shardWarning}`);
  if (r.warning) out.push(`WARNING: ${r.warning}`);
  return out;
}
