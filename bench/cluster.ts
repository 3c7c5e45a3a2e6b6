/**
 * Storms on a real Redis Cluster on loopback (issue 18's proof):
 *
 *   npm run storm:cluster                      # spread, failover and 1-vs-16 shards, 6,000 alerts x 3 each
 *   npm run storm:cluster -- --alerts 2000 --only spread,failover,compare --shards 16
 *   npm run storm:cluster -- --only failover --victim global   # kill the master of the global shard instead
 *
 * - spread: 3 masters, SHARDS=16, 2 receivers + 2 workers. Exactly-once counts, and per master the
 *   commands it ran during the storm (INFO commandstats, counters reset just before the first
 *   webhook) and its largest DBSIZE (sampled every 500 ms), each with its deviation from an even third.
 * - failover: 3 masters + 3 replicas, SHARDS=16, REDIS_WAIT_REPLICAS=1 (a 200 means a replica has the
 *   delivery), webhooks paced to last about 20 s. 3 s into the storm one master is SIGKILLed (by default one that does not hold the
 *   global prefix) and started again 5 s later (it rejoins as a replica). Exactly-once counts, the
 *   webhooks refused meanwhile (retried until accepted, as Alertmanager does) and the 200s answered
 *   during that window (deliveries of the other shards).
 * - compare: 1 shard then 16 shards on the same 3-master cluster, same storm: runs/s of each.
 *
 * Every Redis is private (own ports, AOF on, temp dir), PostgreSQL is the local one (own schema).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Redis } from 'ioredis';
import { slotOf } from '../src/core/shards.js';
import { freePort, startRedis, type Child } from '../test/helpers/process.js';
import { printStorm, runStorm, STORM_HEADER, type StormOptions, type StormResult } from './storm.js';

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node {
  port: number;
  child?: Child;
}

interface ClusterHandle {
  nodes: Node[];
  dir: string;
  seeds: string;
  /** The master ports, with the slot ranges they own. */
  masters(): Promise<{ port: number; slots: [number, number][] }[]>;
  kill(port: number): Promise<void>;
  restart(port: number): Promise<void>;
  close(): Promise<void>;
}

const nodeArgs = (dir: string, port: number) => [
  '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000',
  '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfilename', `a-${port}.aof`,
];

async function connect(port: number): Promise<Redis> {
  const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true, enableOfflineQueue: false });
  await r.connect();
  return r;
}

async function poll(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(200);
  }
}

/** Every redis-server started here, killed if the bench is stopped half way. */
const started = new Set<Child>();
process.once('exit', () => {
  for (const c of started) c.proc.kill('SIGKILL');
});

async function startNode(dir: string, port: number): Promise<Child> {
  const c = await startRedis(port, nodeArgs(dir, port));
  started.add(c);
  c.proc.once('exit', () => started.delete(c));
  return c;
}

async function startCluster(replicas: 0 | 1): Promise<ClusterHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'remediator-cluster-bench-'));
  const nodes: Node[] = [];
  for (let i = 0; i < (replicas ? 6 : 3); i++) nodes.push({ port: await freePort() });
  for (const n of nodes) n.child = await startNode(dir, n.port);
  await exec('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
  const handle: ClusterHandle = {
    nodes,
    dir,
    seeds: nodes.slice(0, 3).map((n) => `127.0.0.1:${n.port}`).join(','),
    async masters() {
      for (const n of nodes) {
        if (!n.child) continue;
        const r = await connect(n.port).catch(() => undefined);
        if (!r) continue;
        try {
          const slots = (await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
          const owners = new Map<number, [number, number][]>();
          for (const [from, to, [, port]] of slots) owners.set(port, [...(owners.get(port) ?? []), [from, to]]);
          return [...owners].map(([port, s]) => ({ port, slots: s })).sort((a, b) => a.port - b.port);
        } finally {
          r.disconnect();
        }
      }
      throw new Error('no cluster node answers');
    },
    async kill(port) {
      const n = nodes.find((x) => x.port === port)!;
      await n.child?.stop('SIGKILL');
      n.child = undefined;
    },
    async restart(port) {
      const n = nodes.find((x) => x.port === port)!;
      n.child = await startNode(dir, port);
    },
    async close() {
      for (const n of nodes) await n.child?.stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  await poll('cluster state ok', 30_000, async () => {
    const r = await connect(nodes[0]!.port);
    try {
      const info = (await r.call('CLUSTER', 'INFO')) as string;
      const known = ((await r.call('CLUSTER', 'NODES')) as string).split('\n').filter((l) => l.includes('slave')).length;
      return info.includes('cluster_state:ok') && known === (replicas ? 3 : 0);
    } finally {
      r.disconnect();
    }
  });
  if (replicas) {
    // A replica still in its first sync acknowledges nothing: wait until every master has one online.
    await poll('every master has an online replica', 30_000, async () => {
      let online = 0;
      for (const n of nodes) {
        const r = await connect(n.port);
        try {
          const info = await r.info('replication');
          if (info.includes('role:master') && /slave0:.*state=online/.test(info)) online++;
        } finally {
          r.disconnect();
        }
      }
      return online === 3;
    });
  }
  return handle;
}

/** Per master: commands since the last reset (sum of INFO commandstats calls) and DBSIZE. */
async function perMaster(c: ClusterHandle): Promise<{ port: number; commands: number; keys: number }[]> {
  const out = [];
  for (const m of await c.masters()) {
    const r = await connect(m.port);
    try {
      const stats = await r.info('commandstats');
      const commands = [...stats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((n, x) => n + Number(x[1]), 0);
      out.push({ port: m.port, commands, keys: await r.dbsize() });
    } finally {
      r.disconnect();
    }
  }
  return out;
}

const deviation = (xs: number[]) => {
  const even = xs.reduce((a, b) => a + b, 0) / xs.length;
  return xs.map((x) => (even ? ((x - even) / even) * 100 : 0));
};
const pct = (d: number) => `${d >= 0 ? '+' : ''}${d.toFixed(0)}%`;

/** Counters reset before the storm, DBSIZE sampled during it, commands read after it. */
function spreadProbe(c: ClusterHandle, globalSlot: number): Pick<StormOptions, 'onReady' | 'onDone'> & { stop: () => void } {
  const maxKeys = new Map<number, number>();
  let timer: NodeJS.Timeout | undefined;
  return {
    async onReady() {
      for (const m of await c.masters()) {
        const r = await connect(m.port);
        await r.config('RESETSTAT').finally(() => r.disconnect());
      }
      timer = setInterval(() => {
        void perMaster(c).then((ms) => ms.forEach((m) => maxKeys.set(m.port, Math.max(maxKeys.get(m.port) ?? 0, m.keys)))).catch(() => {});
      }, 500);
    },
    async onDone() {
      clearInterval(timer);
      const ms = await perMaster(c);
      const masters = await c.masters();
      const cmdDev = deviation(ms.map((m) => m.commands));
      const keyDev = deviation(ms.map((m) => maxKeys.get(m.port) ?? m.keys));
      return ms
        .map((m, i) => {
          const global = masters.find((x) => x.port === m.port)?.slots.some(([a, b]) => globalSlot >= a && globalSlot <= b) ? ' (holds the global prefix)' : '';
          return `master :${m.port}${global}: ${m.commands} commands (${pct(cmdDev[i]!)} of even), max DBSIZE ${maxKeys.get(m.port) ?? m.keys} (${pct(keyDev[i]!)})`;
        })
        .join('; ');
    },
    stop: () => clearInterval(timer),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      alerts: { type: 'string', default: '6000' },
      shards: { type: 'string', default: '16' },
      only: { type: 'string', default: 'spread,failover,compare' },
      victim: { type: 'string', default: 'other' },
      concurrency: { type: 'string', default: '8' },
    },
  });
  const only = new Set(values.only!.split(','));
  const shards = values.shards!;
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(databaseUrl).hostname)) throw new Error('refusing a non-loopback PostgreSQL');
  const base: Omit<StormOptions, 'env'> = {
    alerts: Number(values.alerts), perDelivery: 10, connections: 16, concurrency: Number(values.concurrency), mode: 'split', redisUrl: 'redis://127.0.0.1:1', databaseUrl,
  };
  console.log(`# ${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, Node ${process.version}`);
  console.log(STORM_HEADER.join('\n'));
  const results: StormResult[] = [];

  // The global prefix's slot: runStorm names it `{storm-<id>}`; its slot is only known inside, so the
  // probe reads it back from the processes' prefix at the end. Simpler: the prefix is fixed here.
  if (only.has('spread')) {
    const c = await startCluster(0);
    try {
      const prefix = `{storm-spread-${process.pid}}`;
      const probe = spreadProbe(c, slotOf(prefix.slice(1, -1)));
      const r = await runStorm({ ...base, env: { REDIS_CLUSTER_NODES: c.seeds, SHARDS: shards }, prefix, ...probe }).finally(probe.stop);
      r.mode = `split, 3 masters, SHARDS=${shards}`;
      printStorm(r);
      results.push(r);
    } finally {
      await c.close();
    }
  }

  if (only.has('failover')) {
    const c = await startCluster(1);
    try {
      const prefix = `{storm-failover-${process.pid}}`;
      const globalSlot = slotOf(prefix.slice(1, -1));
      const masters = await c.masters();
      const holdsGlobal = (m: { slots: [number, number][] }) => m.slots.some(([a, b]) => globalSlot >= a && globalSlot <= b);
      const victim = (values.victim === 'global' ? masters.find(holdsGlobal) : masters.find((m) => !holdsGlobal(m)))!;
      let downFor = 0;
      // Sent over about 20 s, so that the failover happens while webhooks keep coming.
      const webhooks = Math.ceil(base.alerts / base.perDelivery) * 3;
      const r = await runStorm({
        ...base,
        pace: Math.max(10, Math.ceil(webhooks / 20)),
        prefix,
        env: { REDIS_CLUSTER_NODES: c.seeds, SHARDS: shards, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '1000' },
        fault: {
          name: `master :${victim.port}${holdsGlobal(victim) ? ' (global prefix)' : ''} SIGKILLed at 3 s, back 5 s later`,
          atMs: 3000,
          run: async () => {
            const t = Date.now();
            await c.kill(victim.port);
            await sleep(5000);
            await c.restart(victim.port);
            downFor = (Date.now() - t) / 1000;
          },
          check: async () => {
            const now = await c.masters();
            return `node down ${downFor.toFixed(1)} s; masters after: ${now.map((m) => `:${m.port}`).join(', ')} (the killed one's replica promoted, it rejoined as a replica)`;
          },
        },
      });
      r.mode = `split, 3 masters + 3 replicas, SHARDS=${shards}, REDIS_WAIT_REPLICAS=1, ${r.mode.replace(/^split, /, '')}`;
      printStorm(r);
      results.push(r);
    } finally {
      await c.close();
    }
  }

  if (only.has('compare')) {
    const c = await startCluster(0);
    try {
      for (const n of ['1', shards]) {
        const r = await runStorm({ ...base, env: { REDIS_CLUSTER_NODES: c.seeds, SHARDS: n } });
        r.mode = `split, 3 masters, SHARDS=${n}`;
        printStorm(r);
        results.push(r);
      }
      const [one, many] = results.slice(-2);
      console.log(`\n${shards} shards / 1 shard runs/s: ${(many!.runsPerSecond / one!.runsPerSecond).toFixed(2)} (on ${cpus().length} cores every process shares the same CPUs: this shows the overhead of sharding, not the capacity it adds)`);
    } finally {
      await c.close();
    }
  }
  const bad = results.filter((r) => r.lost || r.doubled || r.stuck);
  if (bad.length) {
    console.error(`NOT exactly once: ${bad.map((r) => `${r.mode}: lost ${r.lost}, doubled ${r.doubled}, stuck ${r.stuck}`).join('; ')}`);
    process.exitCode = 1;
  }
}

await main();
