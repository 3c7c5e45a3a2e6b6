/**
 * Faults during a storm, each with its lost / doubled / stuck counts (bench/storm.ts does the
 * counting): a worker SIGKILLed, Redis killed for 10 s (AOF on) and started again.
 *
 *   npm run faults [-- --alerts 2000 --only worker-kill,redis-kill]
 *
 * Runs on a private redis-server (AOF on, in a temp dir, on a free loopback port) and the local
 * PostgreSQL (own schema). Layout: 2 receivers + 2 workers, WORKER_LOCK_MS=5000.
 * Not built yet: PostgreSQL stopped 15 s, Slack 429 + PagerDuty 500 for 60 s, a hanging target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { printStorm, runStorm, STORM_HEADER, type Proc } from './storm.js';

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

/** A private redis-server with AOF on; resolves once it accepts connections. */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) ok();
    });
    child.once('exit', (code) => fail(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return child;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { alerts: { type: 'string', default: '2000' }, only: { type: 'string' } } });
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(databaseUrl).hostname)) throw new Error('refusing a non-loopback PostgreSQL');
  const dir = await mkdtemp(join(tmpdir(), 'remediator-faults-'));
  const port = await freePort();
  let redis = await startRedis(port, dir);
  const redisUrl = `redis://127.0.0.1:${port}`;
  const faults = [
    {
      name: 'worker SIGKILL at 2 s',
      atMs: 2000,
      run: async (procs: Proc[]) => {
        procs.find((p) => p.name === 'worker-1')?.child.kill('SIGKILL');
      },
    },
    {
      name: 'Redis SIGKILLed at 0.5 s, back 10 s later (AOF on)',
      atMs: 500,
      run: async () => {
        const exited = new Promise((r) => redis.once('exit', r));
        redis.kill('SIGKILL');
        await exited;
        await new Promise((r) => setTimeout(r, 10_000));
        redis = await startRedis(port, dir);
      },
    },
  ];
  const picked = faults.filter((_, i) => !values.only || values.only.split(',').includes(['worker-kill', 'redis-kill'][i]!));
  console.log(`# remediator faults  ${new Date().toISOString()}  node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# ${values.alerts} alerts x 3 deliveries, 2 receivers + 2 workers, private Redis with AOF on port ${port}\n`);
  console.log(STORM_HEADER.join('\n'));
  try {
    for (const fault of picked) {
      printStorm(await runStorm({
        alerts: Number(values.alerts), perDelivery: 10, connections: 16, concurrency: 8, mode: 'split', redisUrl, databaseUrl,
        env: { WORKER_LOCK_MS: '5000' }, fault,
      }));
    }
  } finally {
    redis.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
