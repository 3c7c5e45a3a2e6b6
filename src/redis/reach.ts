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
  return { redis: where, prefix, live: workers.length, applies, workers, rulesHashes, ...(warning ? { warning } : {}) };
}

/** The lines the CLI prints after pause, resume and status. */
export function reachLines(r: Reach, verb: 'written to' | 'read from', now = Date.now()): string[] {
  const out = [`${verb} ${r.redis} (REDIS_URL), prefix ${r.prefix} (QUEUE_PREFIX)`];
  out.push(`live workers there: ${r.live}${r.applies !== r.live ? ` (${r.applies} of them run what it names)` : ''}`);
  for (const w of r.workers) {
    const ago = Math.max(0, Math.round((now - Date.parse(w.seenAt)) / 1000));
    out.push(`  ${w.id} role ${w.role}, version ${w.version}, rules ${w.rulesHash} (${w.rules}), seen ${ago}s ago`);
  }
  if (r.rulesHashes.length > 1) out.push(`warning: the live workers run different rules (hashes ${r.rulesHashes.join(', ')})`);
  if (r.warning) out.push(`WARNING: ${r.warning}`);
  return out;
}
