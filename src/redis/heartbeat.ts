import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { version } from '../metrics.js';
import type { RuleTable } from '../rules/load.js';
import { rulesHash, scopeNames, type ScopeNames } from '../rules/scopes.js';

/**
 * Workers say they are alive, in the Redis and under the prefix they read pauses from. The kill
 * switch (`remediator pause|resume|status`, `POST /api/pause`) counts them after writing: a pause
 * written to another Redis or prefix than the running service's (a laptop's REDIS_URL, a typo in
 * QUEUE_PREFIX) reaches no live worker, and says so instead of "paused".
 *
 * Keys (both carry the prefix, so its {hash tag} keeps them in one Redis Cluster slot):
 *   <prefix>:heartbeats       sorted set, member: worker id, score: when it expires (ms, Redis' clock)
 *   <prefix>:heartbeats:info  hash, worker id -> JSON (WorkerBeat without seenAt)
 * Redis' own clock (TIME) decides what is live, so a laptop's clock does not matter.
 */

/** What a worker advertises. */
export interface WorkerBeat {
  id: string;
  host: string;
  pid: number;
  /** REMEDIATOR_ROLE of the process: `all` or `worker`. */
  role: string;
  version: string;
  prefix: string;
  /** See rules/scopes.ts `rulesHash`. */
  rulesHash: string;
  rules: number;
  /** Names a pause can hold back in this worker's table. */
  scopes: ScopeNames;
  startedAt: string;
  /** How often it beats; it is live for 3 of these after its last beat. */
  intervalMs: number;
  /** SHARDS and the shards it consumes (absent from workers before shards). */
  shards?: { total: number; consumed: number[] };
  /** When its last heartbeat arrived (Redis' clock). */
  seenAt: string;
}

export interface HeartbeatOptions {
  redis: Redis | Cluster;
  prefix: string;
  role: string;
  table: () => RuleTable;
  log: Logger;
  /** Default 5 s; a worker is live for 3 intervals after its last beat. */
  intervalMs?: number;
  /** SHARDS and the shards this worker consumes. */
  shards?: { total: number; consumed: number[] };
}

export interface Heartbeat {
  /** Removes this worker at once (a clean stop is not "live for 15 more seconds"). */
  stop(): Promise<void>;
}

const keys = (prefix: string) => [`${prefix}:heartbeats`, `${prefix}:heartbeats:info`];

// KEYS: set, info. ARGV: id, ttl ms, info JSON. Drops expired workers, then (re)registers this one.
const BEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(dead) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return now`;

// KEYS: set, info. Returns [now, id1, info1, expires1, id2, ...] for the live workers.
const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = { tostring(now) }
for i = 1, #ids, 2 do
  table.insert(out, ids[i])
  table.insert(out, redis.call('HGET', KEYS[2], ids[i]) or '')
  table.insert(out, ids[i + 1])
end
return out`;

/** Starts beating now and every interval; a beat that fails (Redis down) is skipped quietly: RedisHealth logs outages. */
export function startHeartbeat(o: HeartbeatOptions): Heartbeat {
  const intervalMs = o.intervalMs ?? 5000;
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const startedAt = new Date().toISOString();
  let pending: Promise<unknown> | undefined;
  let stopped = false;
  const beat = () => {
    if (pending || stopped) return; // a beat still waiting for Redis: no pile-up while it is down
    const table = o.table();
    const info: Omit<WorkerBeat, 'seenAt'> = {
      id, host: hostname(), pid: process.pid, role: o.role, version: version(), prefix: o.prefix,
      rulesHash: rulesHash(table), rules: table.rules.length, scopes: scopeNames(table), startedAt, intervalMs,
      ...(o.shards ? { shards: o.shards } : {}),
    };
    pending = o.redis
      .eval(BEAT, 2, ...keys(o.prefix), id, String(intervalMs * 3), JSON.stringify(info))
      .catch((err: Error) => o.log.debug('heartbeat not written', { error: err.message }))
      .finally(() => (pending = undefined));
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await pending;
      const [set, infoKey] = keys(o.prefix);
      await Promise.all([o.redis.zrem(set!, id), o.redis.hdel(infoKey!, id)]).catch(() => {});
    },
  };
}

/** The workers live now under `prefix` in this Redis, oldest first. */
export async function liveWorkers(redis: Redis | Cluster, prefix: string): Promise<WorkerBeat[]> {
  const raw = (await redis.eval(LIVE, 2, ...keys(prefix))) as string[];
  const out: WorkerBeat[] = [];
  for (let i = 1; i + 2 < raw.length; i += 3) {
    const expires = Number(raw[i + 2]);
    try {
      const info = JSON.parse(raw[i + 1]!) as Omit<WorkerBeat, 'seenAt'>;
      out.push({ ...info, seenAt: new Date(expires - 3 * info.intervalMs).toISOString() });
    } catch {
      /* an entry being written: counted at the next look */
    }
  }
  return out.sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1));
}

/** "redis://host:port/db" (no credentials) or "Redis Cluster host:port,...", for people. */
export function describeRedis(conn: Redis | Cluster): string {
  if ('isCluster' in conn && conn.isCluster) {
    const nodes = (conn as Cluster).nodes('master').map((n) => `${n.options.host ?? '?'}:${n.options.port ?? '?'}`);
    return `Redis Cluster ${nodes.join(',')}`;
  }
  const { host, port, db, tls } = (conn as Redis).options;
  return `${tls ? 'rediss' : 'redis'}://${host ?? '127.0.0.1'}:${port ?? 6379}/${db ?? 0}`;
}
