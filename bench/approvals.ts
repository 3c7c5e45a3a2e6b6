/**
 * What runs waiting for approval cost while they wait: N runs of a rule with `approval`, then a
 * wait of M minutes; counts the PostgreSQL statements of the process meanwhile
 * (remediator_postgres_statements_total), the worker slots held (BullMQ active jobs), and how many
 * times each waiting job was taken by a worker (attemptsStarted: 1 means never again until a
 * decision or its expiry).
 *
 *   npm run bench:approvals [-- --runs 100 --minutes 10]
 *
 * Local Redis and PostgreSQL (loopback only), own prefix and schema, removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { build, isStale } from '../bin/build.js';
import { startProc, statements, stop, type Proc } from './storm.js';

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: 'string', default: '100' }, minutes: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
const minutes = Number(values.minutes);
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
for (const u of [redisUrl, databaseUrl]) {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(u).hostname)) throw new Error(`refusing to run against a non-loopback server: ${new URL(u).host}`);
}
const id = randomBytes(4).toString('hex');
const schema = `appr_${id}`;
const prefix = `appr-${id}`;
const rulesDir = await mkdtemp(join(tmpdir(), 'remediator-approvals-'));
await writeFile(join(rulesDir, 'r.yml'), `rules:\n  - name: guarded\n    match: ['alertname="Guarded"']\n    action: notify\n    approval: { approvers: [U0APPROVER], timeout: ${minutes + 60}m }\n`);
if (isStale()) build();
const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
const redis = new Redis(redisUrl);
const queue = new Queue('remediations', { connection: redis, prefix });
let proc: Proc | undefined;
try {
  proc = await startProc('all', {
    HOST: '127.0.0.1', PORT: '0', REDIS_URL: redisUrl, DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix, RULES_DIR: rulesDir,
    WEBHOOK_TOKEN: 'bench', LOG_LEVEL: 'info', REMEDIATOR_ROLE: 'all',
  });
  const alerts = Array.from({ length: runs }, (_, i) => ({
    status: 'firing', labels: { alertname: 'Guarded', i: String(i) }, annotations: {}, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z',
    generatorURL: '', fingerprint: `${id}${i.toString(16).padStart(8, '0')}`,
  }));
  const res = await fetch(`${proc.url}/webhooks/alertmanager`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
    body: JSON.stringify({ version: '4', groupKey: '{}:{alertname="Guarded"}', status: 'firing', receiver: 'remediate', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '', alerts }),
  });
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}`);
  for (const deadline = Date.now() + 120_000; ; ) {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".run_events WHERE state = 'approval_requested'`);
    if (rows[0].n >= runs) break;
    if (Date.now() > deadline) throw new Error(`only ${rows[0].n} of ${runs} runs asked for approval`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Let the last jobs move to delayed, then measure the wait.
  await new Promise((r) => setTimeout(r, 1000));
  const before = await statements([proc]);
  const t0 = Date.now();
  let maxActive = 0;
  while (Date.now() - t0 < minutes * 60_000) {
    maxActive = Math.max(maxActive, (await queue.getJobCounts('active')).active);
    await new Promise((r) => setTimeout(r, 5000));
  }
  const after = await statements([proc]);
  const counts = await queue.getJobCounts('active', 'delayed', 'waiting');
  const jobs = await queue.getJobs(['delayed'], 0, runs);
  const started = jobs.map((j) => j.attemptsStarted);
  console.log(`# remediator approvals-waiting  ${new Date().toISOString()}  node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# ${runs} runs waiting for approval, watched for ${minutes} min (sampled every 5 s)\n`);
  console.log('| runs waiting | minutes | PostgreSQL statements while waiting (whole process) | worker slots held (max active) | delayed jobs | times each waiting job was taken by a worker |');
  console.log('|---:|---:|---:|---:|---:|---|');
  console.log(`| ${runs} | ${minutes} | ${after !== undefined && before !== undefined ? after - before : '-'} | ${maxActive} | ${counts.delayed} | ${[...new Set(started)].sort().join(', ')} (all ${started.length}) |`);
} finally {
  if (proc) await stop(proc).catch(() => {});
  await queue.close();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
  await pool.end();
  await rm(rulesDir, { recursive: true, force: true });
}
