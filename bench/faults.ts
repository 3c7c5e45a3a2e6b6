/**
 * Faults during a storm, each with its lost / doubled / stuck counts (bench/storm.ts does the
 * counting): a worker SIGKILLed; Redis killed for 10 s (AOF on) and started again; PostgreSQL
 * stopped for 15 s (every connection dropped) and started again; Slack answering 429 and PagerDuty
 * 500 for 60 s; a remediation target that accepts connections and never answers.
 *
 *   npm run faults [-- --alerts 2000 --only worker-kill,redis-kill,postgres-stop,notifiers-down,hanging-target]
 *
 * Runs on a private redis-server (AOF on, in a temp dir, on a free loopback port) and the local
 * PostgreSQL (own schema), or a private PostgreSQL for the PostgreSQL fault (so the shared one
 * stays up). Layout: 2 receivers + 2 workers, WORKER_LOCK_MS=5000.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createServer as createHttpServer, type Server } from 'node:http';
import { FakePagerDuty } from '../test/fakes/pagerduty.js';
import { FakeSlack } from '../test/fakes/slack.js';
import { PrivatePostgres } from '../test/helpers/postgres.js';
import { printStorm, runStorm, STORM_HEADER, type Proc, type StormOptions } from './storm.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every second until it says done or `ms` passes; returns its last answer. */
async function settle<T>(fn: () => Promise<{ done: boolean; value: T }>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await fn();
    if (r.done || Date.now() > end) return r.value;
    await sleep(1000);
  }
}

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
  const alerts = Number(values.alerts);
  const slack = await new FakeSlack().start();
  const pd = await new FakePagerDuty().start();
  const notifierEnv = {
    SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_CHANNEL: '#storm',
    PAGERDUTY_ROUTING_KEY: 'storm0123456789abcdef0123456789a', PAGERDUTY_EVENTS_URL: pd.url,
  };
  // A target that accepts connections and never answers (its sockets are kept until the end).
  const hanging: Server = createHttpServer(() => {});
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  const hangUrl = `http://127.0.0.1:${(hanging.address() as { port: number }).port}`;
  const privatePg = new PrivatePostgres(await freePort()).init();
  privatePg.start();

  const faults: { key: string; name: string; atMs: number; run: (procs: Proc[]) => Promise<void>; check?: NonNullable<StormOptions['fault']>['check']; storm?: Partial<StormOptions> }[] = [
    {
      key: 'worker-kill',
      name: 'worker SIGKILL at 2 s',
      atMs: 2000,
      run: async (procs: Proc[]) => {
        procs.find((p) => p.name === 'worker-1')?.child.kill('SIGKILL');
      },
    },
    {
      key: 'redis-kill',
      name: 'Redis SIGKILLed at 0.5 s, back 10 s later (AOF on)',
      atMs: 500,
      run: async () => {
        const exited = new Promise((r) => redis.once('exit', r));
        redis.kill('SIGKILL');
        await exited;
        await sleep(10_000);
        redis = await startRedis(port, dir);
      },
    },
    {
      key: 'postgres-stop',
      name: 'PostgreSQL stopped at 1 s (immediate), back 15 s later',
      atMs: 1000,
      run: async () => {
        privatePg.stop('immediate');
        await sleep(15_000);
        privatePg.start();
      },
      storm: { databaseUrl: privatePg.url },
    },
    {
      key: 'notifiers-down',
      name: 'Slack 429 and PagerDuty 500 for 60 s from 0.5 s',
      atMs: 500,
      run: async () => {
        const fault = { count: 1e9, kind: 'ratelimited' as const, retryAfter: 2 };
        slack.faults.push(fault);
        pd.failNext(500, 1e9);
        await sleep(60_000);
        fault.count = 0;
        pd.clearFaults();
      },
      // Every run's Slack thread and PagerDuty trigger must arrive once the outage is over.
      check: async (q, schema) => {
        const r = await settle(async () => {
          const [row] = await q(`SELECT (SELECT count(*) FROM "${schema}".runs)::int AS runs,
              (SELECT count(*) FROM "${schema}".slack_threads WHERE root_ts IS NOT NULL)::int AS threads,
              (SELECT count(DISTINCT job_id) FROM "${schema}".notifications WHERE notifier = 'pagerduty' AND state = 'sent')::int AS paged`);
          return { done: row.threads >= row.runs && row.paged >= row.runs, value: row };
        }, 300_000);
        const roots = slack.calls.filter((c) => c.method === 'chat.postMessage' && !c.args.thread_ts && !c.error).length;
        return `after the outage: Slack threads ${r.threads} of ${r.runs} runs (${roots} root messages posted: ${roots - r.threads} duplicates), PagerDuty sent for ${r.paged} of ${r.runs} runs; fake Slack answered ${slack.calls.filter((c) => c.error).length} calls with an error`;
      },
      storm: { env: { WORKER_LOCK_MS: '5000', ...notifierEnv } },
    },
    {
      key: 'hanging-target',
      name: 'one alert in ten also resets a breaker whose target never answers (rule timeout 2 s)',
      atMs: 0,
      run: async () => {},
      storm: {
        rules: `targets:
  hung:
    kind: http-breaker
    status: { url: '${hangUrl}/api/admin/circuit-breaker-status' }
    reset: { method: POST, url: '${hangUrl}/api/admin/reset-circuit-breaker' }
    request_timeout: 30s
rules:
  - name: storm-notify
    match: ['alertname="StormAlert"']
    action: notify
  - name: storm-hung-breaker
    match: ['alertname="StormAlert"', 'instance=~"host-.*0"']
    action: breaker-reset
    target: hung
    timeout: 2s
    attempts: 1
    cooldown: 10m
`,
        expectedRuns: alerts + Math.ceil(alerts / 10),
      },
      check: async (q, schema) => {
        const rows = await q(`SELECT state, error_reason, count(*)::int AS n FROM "${schema}".runs WHERE rule = 'storm-hung-breaker' GROUP BY 1, 2 ORDER BY 1, 2`);
        return `hung-target runs: ${rows.map((r) => `${r.state}${r.error_reason ? `/${r.error_reason}` : ''} ${r.n}`).join(', ')}`;
      },
    },
  ];
  const picked = faults.filter((f) => !values.only || values.only.split(',').includes(f.key));
  console.log(`# remediator faults  ${new Date().toISOString()}  node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# ${values.alerts} alerts x 3 deliveries, 2 receivers + 2 workers, private Redis with AOF on port ${port}\n`);
  console.log(STORM_HEADER.join('\n'));
  try {
    for (const { storm, ...fault } of picked) {
      printStorm(await runStorm({
        alerts, perDelivery: 10, connections: 16, concurrency: 8, mode: 'split', redisUrl, databaseUrl,
        env: { WORKER_LOCK_MS: '5000' }, fault, ...storm,
      }));
    }
  } finally {
    redis.kill('SIGTERM');
    privatePg.destroy();
    hanging.closeAllConnections();
    hanging.close();
    await slack.stop();
    await pd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
