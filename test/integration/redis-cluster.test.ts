import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { freePort, startRedis, type Child } from '../helpers/process.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { postWebhook } from '../helpers/webhook.js';

/**
 * A real 3-master Redis Cluster on loopback, selected by REDIS_CLUSTER_NODES: 2 receivers and a
 * worker; every alert delivered 3 times over both receivers makes exactly one run.
 */
const nodes: Child[] = [];
const services: TestService[] = [];
let dir = '';
let clusterNodes = '';
const rules = { 'c.yml': `rules:\n  - name: clustered\n    match: ['alertname="InCluster"']\n    action: notify\n` };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remediator-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  for (const p of ports) {
    nodes.push(await startRedis(p, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--dir', dir, '--save', '', '--appendonly', 'no']));
  }
  clusterNodes = ports.map((p) => `127.0.0.1:${p}`).join(',');
  await promisify(execFile)('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  const c = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
  try {
    await eventually(async () => (await c.cluster('INFO')).includes('cluster_state:ok'), 'cluster ok', 20_000, 200);
  } finally {
    c.disconnect();
  }
  const env = { REDIS_CLUSTER_NODES: clusterNodes, QUEUE_PREFIX: `{it-cluster-${ports[0]}}` };
  const worker = await startTestService({ rules, env: { ...env, REMEDIATOR_ROLE: 'all' } });
  services.push(worker);
  services.push(await startTestService({ rules, env: { ...env, REMEDIATOR_ROLE: 'receiver' }, keep: { schema: worker.config.DATABASE_SCHEMA, prefix: worker.config.QUEUE_PREFIX } }));
});
after(async () => {
  for (const s of services.reverse()) await s.close();
  for (const n of nodes) await n.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a QUEUE_PREFIX without a {hash tag} is refused with REDIS_CLUSTER_NODES', () => {
  assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'remediator' }), /QUEUE_PREFIX: with REDIS_CLUSTER_NODES it must contain a \{hash tag\}/);
  assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1' }), /REDIS_CLUSTER_NODES: must be host:port/);
});

test('30 alerts x 3 deliveries over 2 receivers on a 3-master cluster: exactly 30 runs', async () => {
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  const groups = [0, 1, 2].map((g) => ({
    version: '4', groupKey: `{}:{g="${g}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'r', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '',
    alerts: Array.from({ length: 10 }, (_, i) => ({ status: 'firing', labels: { alertname: 'InCluster', n: String(g * 10 + i) }, annotations: {}, startsAt, fingerprint: (0xc100 + g * 10 + i).toString(16) })),
  }));
  const answers = await Promise.all([...groups, ...groups, ...groups].map((body, i) => postWebhook(services[i % 2]!.url, body).then((r) => r.status)));
  assert.deepEqual(answers, Array(9).fill(200));
  const s = `"${services[0]!.config.DATABASE_SCHEMA}"`;
  const pool = services[0]!.pool;
  await eventually(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${s}.runs WHERE state = 'notified'`)).rows[0].n === 30, '30 runs ended', 60_000, 200);
  await eventually(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${s}.decisions`)).rows[0].n === 90, 'every delivery audited', 60_000, 200);
  const runs = (await pool.query(`SELECT count(*)::int AS runs, count(DISTINCT fingerprint)::int AS alerts FROM ${s}.runs`)).rows[0];
  assert.deepEqual(runs, { runs: 30, alerts: 30 });
});
