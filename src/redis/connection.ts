import { Queue } from 'bullmq';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisHealth } from './health.js';

/** Queue names under QUEUE_PREFIX. */
export const QUEUES = {
  remediations: 'remediations',
  ingest: 'ingest',
  notify: (name: string) => `notify-${name}`,
} as const;

/** How long finished jobs are kept: while a job is kept, its id blocks a repeat of the same firing. */
export const KEEP_FINISHED_SECONDS = 7 * 24 * 3600;

/**
 * Producer connections fail fast (no offline queue, one try per command) so the receiver can
 * answer 503 while Redis is down; worker connections must block (`maxRetriesPerRequest: null`).
 * https://docs.bullmq.io/guide/going-to-production
 */
export function redisConnection(url: string, role: 'producer' | 'plain' | 'worker', health: RedisHealth, name: string, clusterNodes?: string[]): Redis {
  const failFast: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false };
  const opts: RedisOptions =
    role === 'producer'
      ? failFast
      : role === 'plain'
        ? // Plain commands of one request leave in one write. Not on the BullMQ connection: each auto
          // pipeline is an ioredis Pipeline, which copies all of BullMQ's scripts when it is built.
          { ...failFast, enableAutoPipelining: true }
        : { maxRetriesPerRequest: null, enableReadyCheck: true };
  const conn = clusterNodes?.length
    ? clusterConnection(url, clusterNodes, { ...opts, connectionName: `remediator-${name}` })
    : new Redis(url, { ...opts, connectionName: `remediator-${name}`, retryStrategy: (n) => Math.min(200 * n, 2000) });
  // An outage is logged once for all connections, when it starts and when it ends.
  health.watch(conn, name);
  return conn;
}

/**
 * A Redis Cluster client (REDIS_CLUSTER_NODES) with the same behaviour as the single-node one:
 * credentials and TLS come from REDIS_URL, fail-fast or blocking as the role says. Every key of
 * one QUEUE_PREFIX shares its {hash tag}, so BullMQ's scripts, the delivery stream and the locks
 * each stay within one slot. Typed as Redis: ioredis' Cluster has the same commands, and BullMQ
 * takes either.
 */
function clusterConnection(url: string, nodes: string[], opts: RedisOptions): Redis {
  const u = new URL(url);
  const redisOptions: RedisOptions = {
    ...opts,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
  const startupNodes = nodes.map((n) => {
    const i = n.lastIndexOf(':');
    return { host: n.slice(0, i), port: Number(n.slice(i + 1)) };
  });
  const cluster = new Cluster(startupNodes, {
    redisOptions,
    enableOfflineQueue: opts.enableOfflineQueue ?? true,
    enableAutoPipelining: opts.enableAutoPipelining ?? false,
    clusterRetryStrategy: (n) => Math.min(200 * n, 2000),
    // ioredis has no periodic refresh by default: a slot map made stale by a failover is fixed only
    // by a redirection it follows. Re-read it every few seconds too (CLUSTER SLOTS, one node).
    slotsRefreshInterval: 5000,
  });
  return cluster as unknown as Redis;
}

export function makeQueue(name: string, connection: Redis, prefix: string): Queue {
  const q = new Queue(name, { connection, prefix });
  q.on('error', () => {}); // connection errors are logged once by the connection itself
  return q;
}

