/**
 * `npm run fuzz [-- --count 5000 --seed 1 --parallel 16]`: mutated real Alertmanager payloads
 * against a real remediator process (`src/main.ts`, receiver and workers) on loopback, with the
 * local Redis and PostgreSQL. Reports the answers by status, 5xx, whether the process survived,
 * and the accepted alerts missing from the audit. Exits 1 on any crash, 5xx or missing alert.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { FakeBreaker } from '../test/fakes/breaker.js';
import { fuzzRules, missingFromAudit, sendFuzz } from '../test/helpers/fuzz.js';
import { startRemediator } from '../test/helpers/process.js';
import { dropPrefix, eventually } from '../test/helpers/service.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '5000' },
    seed: { type: 'string', default: '1' },
    parallel: { type: 'string', default: '16' },
    'drain-seconds': { type: 'string', default: '600' },
  },
});
const count = Number(values.count);
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
for (const u of [redisUrl, databaseUrl]) {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(u).hostname)) throw new Error(`loopback only: ${u}`);
}

const id = randomBytes(4).toString('hex');
const schema = `fuzz_${id}`;
const prefix = `fuzz-${id}`;
const breaker = await new FakeBreaker().start();
breaker.state = 'closed';
const rulesDir = await mkdtemp(join(tmpdir(), 'remediator-fuzz-'));
await writeFile(join(rulesDir, 'fuzz.yml'), fuzzRules(breaker, 'cooldown: 1m'));
const proc = await startRemediator({
  PORT: '0', HOST: '127.0.0.1', RULES_DIR: rulesDir, REDIS_URL: redisUrl, DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema,
  QUEUE_PREFIX: prefix, WEBHOOK_TOKEN: 'fuzz-token', BREAKER_TOKEN: breaker.token, WEBHOOK_MAX_BYTES: '262144',
});
const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
const started = Date.now();
let failed = false;
try {
  const { report, expected } = await sendFuzz({ url: proc.url, token: 'fuzz-token', count, seed: Number(values.seed), parallel: Number(values.parallel), runId: id });
  const sentMs = Date.now() - started;
  const missing = await eventually(async () => {
    const m = await missingFromAudit(pool, schema, expected);
    return m.length === 0 ? [] : Date.now() - started > sentMs + 120_000 ? m : undefined;
  }, 'audit caught up', 180_000, 500);
  // Then every run must end: none may stay queued, running or retrying (a hang or a lost update).
  const pendingSql = `SELECT count(*)::int AS n FROM "${schema}".runs WHERE state IN ('queued', 'running', 'retrying')`;
  const drainStart = Date.now();
  const pending = await eventually(async () => {
    const n = (await pool.query(pendingSql)).rows[0].n as number;
    return n === 0 || Date.now() - drainStart > Number(values['drain-seconds']) * 1000 ? { n } : undefined;
  }, 'runs drained', Number(values['drain-seconds']) * 1000 + 30_000, 1000);
  const drainSeconds = (Date.now() - drainStart) / 1000;
  const alive = proc.proc.exitCode === null && proc.proc.signalCode === null;
  const runs = (await pool.query(`SELECT state, count(*)::int AS n FROM "${schema}".runs GROUP BY 1 ORDER BY 1`)).rows;
  console.log(JSON.stringify({
    date: new Date().toISOString(), node: process.version, count, seed: Number(values.seed), sent: report.sent, byStatus: report.byStatus,
    accepted: report.accepted, acceptedAlerts: report.acceptedAlerts, fiveHundreds: report.fiveHundreds.length, missingDeliveries: missing.length,
    processAlive: alive, runsByState: runs, runsPending: pending.n, sendSeconds: sentMs / 1000, drainSeconds,
  }, null, 2));
  failed = !alive || report.fiveHundreds.length > 0 || missing.length > 0 || pending.n > 0;
  if (report.fiveHundreds.length) console.log('5xx:', report.fiveHundreds.slice(0, 5));
  if (missing.length) console.log('missing:', missing.slice(0, 5));
} finally {
  await proc.stop('SIGTERM');
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await dropPrefix(redisUrl, prefix);
  await breaker.stop();
  await rm(rulesDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
