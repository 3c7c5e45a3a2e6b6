import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort, startRedis, type Child } from '../helpers/process.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { postWebhook } from '../helpers/webhook.js';
import { shardFor } from '../../src/core/shards.js';

/**
 * A real Redis Cluster on loopback, 3 masters and 3 replicas, with SHARDS=12: 2 receivers (each
 * waiting for a replica before answering, REDIS_WAIT_REPLICAS=1) and a worker. Keys spread over
 * the masters; a master SIGKILLed mid-stream is replaced by its replica, and every delivery
 * answered 2xx becomes exactly one run.
 */
const run = promisify(execFile);
const nodes: Child[] = [];
const services: TestService[] = [];
let dir = '';
let ports: number[] = [];
const rules = { 'c.yml': `rules:\n  - name: sharded\n    match: ['alertname="Sharded"']\n    action: notify\n    notify: { slack: false, pagerduty: false }\n` };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remediator-shards-'));
  ports = [];
  for (let i = 0; i < 6; i++) ports.push(await freePort());
  for (const p of ports) {
    nodes.push(await startRedis(p, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--cluster-node-timeout', '1000', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfilename', `a-${p}.aof`]));
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes']);
  const c = new Cluster(ports.slice(0, 3).map((port) => ({ host: '127.0.0.1', port })));
  try {
    await eventually(async () => String(await c.cluster('INFO')).includes('cluster_state:ok') && String(await c.cluster('NODES')).split('\n').filter((l) => l.includes('slave')).length === 3, 'cluster ok with 3 replicas', 30_000, 200);
  } finally {
    c.disconnect();
  }
  // Replication online on every master (a replica still in its first sync acknowledges nothing).
  await eventually(async () => {
    let online = 0;
    for (const port of ports) {
      const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        const info = await r.info('replication');
        if (info.includes('role:master') && /slave0:.*state=online/.test(info)) online++;
      } finally {
        r.disconnect();
      }
    }
    return online === 3;
  }, 'every master has an online replica', 30_000, 200);
  const env = { REDIS_CLUSTER_NODES: ports.slice(0, 3).map((p) => `127.0.0.1:${p}`).join(','), QUEUE_PREFIX: `{it-shards-${ports[0]}}`, SHARDS: '12', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '1000' };
  const worker = await startTestService({ rules, env: { ...env, REMEDIATOR_ROLE: 'all' } });
  services.push(worker);
  services.push(await startTestService({ rules, env: { ...env, REMEDIATOR_ROLE: 'receiver' }, keep: { schema: worker.config.DATABASE_SCHEMA, prefix: worker.config.QUEUE_PREFIX } }));
});
after(async () => {
  for (const s of services.reverse()) await s.close().catch(() => {});
  for (const n of nodes) await n.stop().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

const masters = async () => {
  const out: { port: number; keys: number }[] = [];
  for (const port of ports) {
    const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await r.connect();
      if ((await r.info('replication')).includes('role:master')) out.push({ port, keys: await r.dbsize() });
    } catch {
      /* a killed node */
    } finally {
      r.disconnect();
    }
  }
  return out;
};

const hook = (g: number, n: number, startsAt: string) => ({
  version: '4', groupKey: `{}:{g="${g}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'r', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '',
  alerts: Array.from({ length: n }, (_, i) => ({ status: 'firing', labels: { alertname: 'Sharded', g: String(g), i: String(i) }, annotations: {}, startsAt, fingerprint: (0x5a00000 + g * 100 + i).toString(16) })),
});

test('12 shards on 3 masters: every master holds keys of the deployment; 60 alerts x 3 deliveries make 60 runs', async () => {
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  const bodies = Array.from({ length: 12 }, (_, g) => hook(g, 5, startsAt));
  const answers = await Promise.all([...bodies, ...bodies, ...bodies].map((b, i) => postWebhook(services[i % 2]!.url, b).then((r) => r.status)));
  assert.deepEqual(answers, Array(36).fill(200));
  const s = `"${services[0]!.config.DATABASE_SCHEMA}"`;
  await eventually(async () => (await services[0]!.pool.query(`SELECT count(*)::int AS n FROM ${s}.runs WHERE state = 'notified'`)).rows[0].n === 60, '60 runs ended', 60_000, 200);
  const runs = (await services[0]!.pool.query(`SELECT count(*)::int AS runs, count(DISTINCT fingerprint)::int AS alerts FROM ${s}.runs`)).rows[0];
  assert.deepEqual(runs, { runs: 60, alerts: 60 });
  const m = await masters();
  assert.equal(m.length, 3);
  assert.ok(m.every((x) => x.keys > 0), `keys on every master: ${JSON.stringify(m)}`);
});

test('a master SIGKILLed while deliveries keep coming: its replica takes over; every delivery answered 200 has its run, once', async () => {
  const startsAt = new Date(Date.now() - 30_000).toISOString();
  const accepted = new Set<number>();
  let refused = 0;
  let stop = false;
  const sender = (async () => {
    for (let g = 100; !stop && g < 400; g++) {
      const status = await postWebhook(services[g % 2]!.url, hook(g, 1, startsAt)).then((r) => r.status).catch(() => 0);
      if (status === 200) accepted.add(g);
      else refused++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await eventually(async () => accepted.size >= 20, 'deliveries flowing', 20_000, 50);
  // Kill a master (SIGKILL: no goodbye): the cluster fails over to its replica within a few seconds.
  const victim = (await masters())[1]!;
  const child = nodes[ports.indexOf(victim.port)]!;
  await child.stop('SIGKILL');
  await eventually(async () => (await masters()).length === 3, 'a replica promoted', 30_000, 250);
  await eventually(async () => accepted.size >= 60, 'deliveries flowing again', 60_000, 100);
  stop = true;
  await sender;
  // The killed node comes back (as a replica of the promoted one): the shards of that master
  // accept again. Before, the receivers' slot map stayed stale: those shards answered 503 for good.
  const port = victim.port;
  nodes[ports.indexOf(port)] = await startRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfilename', `a-${port}.aof`]);
  const perShard = new Map<number, number>();
  for (let g = 1000; perShard.size < 12; g++) {
    const shard = shardFor(`{}:{g="${g}"}`, 12);
    if (!perShard.has(shard)) perShard.set(shard, g);
  }
  const back = new Set<number>();
  await eventually(async () => {
    for (const [shard, g] of perShard) {
      if (back.has(shard)) continue;
      const status = await postWebhook(services[shard % 2]!.url, hook(g, 1, startsAt)).then((r) => r.status).catch(() => 0);
      if (status === 200) {
        back.add(shard);
        accepted.add(g);
      }
    }
    return back.size === 12;
  }, `every shard accepts again once the node is back (${[...perShard.keys()].filter((k) => !back.has(k))} still refused)`, 60_000, 250);
  const s = `"${services[0]!.config.DATABASE_SCHEMA}"`;
  const fps = [...accepted].map((g) => (0x5a00000 + g * 100).toString(16));
  await eventually(async () => (await services[0]!.pool.query(`SELECT count(*)::int AS n FROM ${s}.runs WHERE fingerprint = ANY($1) AND state = 'notified'`, [fps])).rows[0].n === fps.length,
    `every accepted delivery has its run (${fps.length}, ${refused} refused during the failover)`, 90_000, 250);
  const doubled = (await services[0]!.pool.query(`SELECT count(*)::int AS n FROM ${s}.runs WHERE fingerprint = ANY($1)`, [fps])).rows[0].n;
  assert.equal(doubled, fps.length, 'none twice');
});
