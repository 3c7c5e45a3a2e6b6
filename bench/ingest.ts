/**
 * Webhook ingest benchmark: remediator's POST /webhooks/alertmanager against a bare
 * `express()` + `express.json()` endpoint, measured in the same run on the same machine.
 *
 *   npm run bench [-- --duration 10 --warmup 2 --connections 32 --repeat 3 --all --only receiver-new --cpu-prof DIR]
 *
 * Three kinds of process, never more than one server at a time:
 * - this orchestrator (idle while a scenario runs: it only samples CPU counters);
 * - the server under test, a child process: `node --import tsx src/main.ts` (the sources that `npm start` runs compiled)
 *   with its own QUEUE_PREFIX, DATABASE_SCHEMA and a copy of the rules, or the bare endpoint;
 * - the load generator, another child process: 32 keep-alive connections (node:http Agent),
 *   one loop each, a warm-up then a fixed measuring window.
 * Everything listens on and talks to 127.0.0.1 only. See bench/README.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const PAYLOAD_FILE = join(ROOT, 'test/fixtures/alertmanager/01-firing-2alerts.json');
const TOKEN = 'bench-webhook-token';
const WEBHOOK_PATH = '/webhooks/alertmanager';

// ---------------------------------------------------------------------------------------------
// Child mode 1: the bare endpoint.
// ---------------------------------------------------------------------------------------------
async function serveBare(port: number): Promise<void> {
  const { default: express } = await import('express');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.post(WEBHOOK_PATH, express.json({ limit: 1024 * 1024 }), (_req, res) => {
    res.status(200).json({});
  });
  const server = app.listen(port, '127.0.0.1');
  server.keepAliveTimeout = 65_000;
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    server.closeAllConnections();
  });
}

/** The floor: node:http, the body read and JSON.parse'd, `200 {}` (what no framework can beat). */
async function serveBareNode(port: number): Promise<void> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': 2 }).end('{}');
    });
  });
  server.listen(port, '127.0.0.1');
  server.keepAliveTimeout = 65_000;
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    server.closeAllConnections();
  });
}

// ---------------------------------------------------------------------------------------------
// Child mode 2: the load generator.
// ---------------------------------------------------------------------------------------------
interface LoadSpec {
  url: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** new: every request carries fingerprints never sent before; duplicate: the same ones every time. */
  fingerprints: 'new' | 'duplicate';
  /** Alerts per request: the fixture's 2, or more made from them (default 2). */
  alerts?: number;
}

export interface LoadResult {
  requests: number;
  /** Answered requests including the warm-up (to compare with the jobs found in Redis). */
  total: number;
  alerts: number;
  seconds: number;
  statuses: Record<string, number>;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const k = spec.alerts ?? 2;
  const fixture = JSON.parse(await readFile(PAYLOAD_FILE, 'utf8')) as { alerts: Record<string, unknown>[] };
  fixture.alerts = Array.from({ length: k }, (_, i) => ({ ...fixture.alerts[i % fixture.alerts.length], fingerprint: `@@FP${i}@@` }));
  // The body split around its fingerprints, so a new body is a few string concatenations.
  const parts = JSON.stringify(fixture).split(/@@FP\d+@@/);
  const run = randomBytes(4).toString('hex');
  let seq = 0;
  const withFingerprints = (fp: (i: number) => string) => parts.reduce((acc, part, i) => (i === 0 ? part : acc + fp(i - 1) + part), '');
  const fixed = withFingerprints((i) => `ffff${i.toString(16).padStart(12, '0')}`);
  const body = (): string => {
    if (spec.fingerprints === 'duplicate') return fixed;
    const n = seq++;
    return withFingerprints((i) => run + (k * n + i).toString(16).padStart(8, '0'));
  };

  const u = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const post = (b: string) =>
    new Promise<number>((ok, fail) => {
      const req = http.request(
        {
          agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
          headers: {
            'content-type': 'application/json', 'content-length': Buffer.byteLength(b),
            authorization: `Bearer ${TOKEN}`, 'user-agent': 'Alertmanager/0.25.0',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => ok(res.statusCode ?? 0));
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end(b);
    });

  const t0 = performance.now();
  const measureFrom = t0 + spec.warmupMs;
  const until = measureFrom + spec.durationMs;
  // Tell the orchestrator when the window opens and closes, so it samples CPU counters then.
  const tWindow = setTimeout(() => process.send?.('window-start'), spec.warmupMs);
  const tEnd = setTimeout(() => process.send?.('window-end'), spec.warmupMs + spec.durationMs);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let total = 0;
  const loop = async () => {
    for (;;) {
      const start = performance.now();
      if (start >= until) return;
      const b = body();
      let status: number | undefined;
      try {
        status = await post(b);
      } catch {
        if (start >= measureFrom) errors++;
      }
      const end = performance.now();
      if (status !== undefined) total++;
      // A request counts when it started inside the window (those still running at the end finish
      // a little after it: the rate below divides by the window, the error is < 32 requests).
      if (start >= measureFrom && status !== undefined) {
        latencies.push(end - start);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.connections }, loop));
  await new Promise((r) => setTimeout(r, Math.max(0, until - performance.now()) + 5)); // let window-end go out first
  clearTimeout(tWindow);
  clearTimeout(tEnd);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const ok = statuses['200'] ?? 0;
  return {
    requests: latencies.length,
    total,
    alerts: ok * k,
    seconds: spec.durationMs / 1000,
    statuses,
    errors,
    p50: q(50),
    p90: q(90),
    p99: q(99),
    max: latencies[latencies.length - 1] ?? NaN,
  };
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.
// ---------------------------------------------------------------------------------------------
interface Scenario {
  name: string;
  server: 'bare' | 'bare-node' | 'remediator';
  role?: 'receiver' | 'all';
  fingerprints: 'new' | 'duplicate';
  alerts?: number;
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

async function waitHealthy(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (code ${child.exitCode}) before it was ready:\n${stderr()}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`server at ${url} not healthy within 30 s:\n${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** CPU-seconds the whole machine spent busy (all cores; /proc/stat, USER_HZ 100). */
async function machineBusySeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
}

async function redisCpuSeconds(redisUrl: string): Promise<number | undefined> {
  const { Redis } = await import('ioredis');
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await r.connect();
    const info = await r.info('cpu');
    const get = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
    return get('used_cpu_sys') + get('used_cpu_user');
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

/**
 * Remediation jobs in the queue whatever their state (proves "new" made jobs and "duplicate" did
 * not), and ingest jobs still waiting (the audit backlog the ingest worker has not written yet).
 */
async function queueState(redisUrl: string, prefix: string): Promise<{ jobs: number; ingestBacklog: number; deliveries: number }> {
  const { Redis } = await import('ioredis');
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const k = (s: string) => `${prefix}:remediations:${s}`;
    const counts = await Promise.all([
      r.llen(k('wait')), r.llen(k('active')), r.llen(k('paused')),
      r.zcard(k('completed')), r.zcard(k('failed')), r.zcard(k('delayed')), r.zcard(k('prioritized')),
    ]);
    return {
      jobs: counts.reduce((a, b) => a + b, 0),
      ingestBacklog: await r.llen(`${prefix}:ingest:wait`),
      // Accepted deliveries not yet fanned out (all of them with REMEDIATOR_ROLE=receiver: no worker runs).
      deliveries: await r.xlen(`${prefix}:deliveries`),
    };
  } finally {
    r.disconnect();
  }
}

async function dropPrefix(redisUrl: string, prefix: string): Promise<number> {
  const { Redis } = await import('ioredis');
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

/** A copy of the shipped rules plus one rule that matches the benchmark payload (action notify: no network). */
async function rulesCopy(from: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'remediator-bench-rules-'));
  for (const f of (await readdir(from)).filter((n) => n.endsWith('.yml') || n.endsWith('.yaml'))) await copyFile(join(from, f), join(dir, f));
  await writeFile(
    join(dir, 'zz-bench-checkout.yml'),
    `# Added by bench/ingest.ts: matches the payload of 01-firing-2alerts.json.
rules:
  - name: bench-checkout-high-error-rate
    match:
      - alertname="HighErrorRate"
      - namespace="shop"
      - deployment=~"checkout|cart"
      - severity=~"critical|page"
    action: notify
    params:
      instructions: "{{ labels.deployment }} in {{ labels.namespace }}: {{ annotations.summary }}"
    attempts: 3
    backoff: 10s
`,
  );
  return dir;
}

function spawnTsx(args: string[], env: NodeJS.ProcessEnv, execArgv: string[] = []): { child: ChildProcess; stderr: () => string; stdout: () => string } {
  const child = fork(args[0]!, args.slice(1), {
    cwd: ROOT,
    env,
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-8000)));
  // The service logs one JSON line per webhook at LOG_LEVEL=info into a pipe, as in a container;
  // only the tail is kept (the load generator's result is its last line).
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-200_000)));
  return { child, stderr: () => err, stdout: () => out };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(t);
}

async function runScenario(sc: Scenario, o: Options): Promise<LoadResult & { serverCpu: number; redisCpu?: number; loadCpu: number; machineCpu: number; jobs?: number; ingestBacklog?: number; deliveries?: number }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const id = randomBytes(4).toString('hex');
  const schema = `bench_${id}`;
  const prefix = `bench-${id}`;
  const rulesDir = sc.server === 'remediator' ? await rulesCopy(o.rules) : undefined;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production',
    PORT: String(port), HOST: '127.0.0.1',
    REDIS_URL: o.redisUrl, DATABASE_URL: o.databaseUrl, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix,
    RULES_DIR: rulesDir, WEBHOOK_TOKEN: TOKEN, LOG_LEVEL: o.logLevel, REMEDIATOR_ROLE: sc.role ?? 'receiver',
    SHUTDOWN_GRACE: '5000',
  };
  const execArgv = o.cpuProf && sc.server === 'remediator' ? ['--cpu-prof', `--cpu-prof-dir=${join(o.cpuProf, sc.name)}`] : [];
  const server =
    sc.server === 'remediator' ? spawnTsx([join(ROOT, 'src/main.ts')], env, execArgv) : spawnTsx([SELF, sc.server === 'bare' ? 'serve-bare' : 'serve-bare-node', String(port)], env);
  try {
    await waitHealthy(url, server.child, server.stderr);
    const spec: LoadSpec = { url: url + WEBHOOK_PATH, connections: o.connections, warmupMs: o.warmupMs, durationMs: o.durationMs, fingerprints: sc.fingerprints, alerts: sc.alerts };
    const load = spawnTsx([SELF, 'load', JSON.stringify(spec)], { PATH: process.env.PATH, HOME: process.env.HOME });
    // CPU used by the server, Redis and the load generator inside the measuring window.
    const exited = new Promise<number | null>((r) => load.child.once('exit', (c) => r(c)));
    const sample = () => Promise.all([cpuSeconds(server.child.pid!), redisCpuSeconds(o.redisUrl), cpuSeconds(load.child.pid!), machineBusySeconds()]);
    const samples: Promise<[number, number | undefined, number, number]>[] = [];
    load.child.on('message', (m) => {
      if (m === 'window-start' || m === 'window-end') samples.push(sample());
    });
    const code = await exited;
    if (code !== 0) throw new Error(`load generator failed (code ${code}):\n${load.stderr()}`);
    const result = JSON.parse(load.stdout().trim().split('\n').pop()!) as LoadResult;
    if (samples.length !== 2) throw new Error('the load generator did not report its measuring window');
    const [[s0, r0, l0, m0], [s1, r1, l1, m1]] = await Promise.all(samples);
    const queues = sc.server === 'remediator' ? await queueState(o.redisUrl, prefix) : undefined;
    const secs = o.durationMs / 1000;
    return {
      ...result,
      serverCpu: (s1 - s0) / secs,
      loadCpu: (l1 - l0) / secs,
      machineCpu: (m1 - m0) / secs,
      jobs: queues?.jobs,
      ingestBacklog: queues?.ingestBacklog,
      deliveries: queues?.deliveries,
      redisCpu: r0 !== undefined && r1 !== undefined ? (r1 - r0) / secs : undefined,
    };
  } finally {
    await stopChild(server.child);
    if (sc.server === 'remediator') {
      await dropPrefix(o.redisUrl, prefix);
      await dropSchema(o.databaseUrl, schema);
      await rm(rulesDir!, { recursive: true, force: true });
    }
  }
}

interface Options {
  connections: number;
  warmupMs: number;
  durationMs: number;
  rules: string;
  redisUrl: string;
  databaseUrl: string;
  logLevel: string;
  all: boolean;
  cpuProf?: string;
  only?: string;
  repeat: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      connections: { type: 'string', default: '32' },
      warmup: { type: 'string', default: '2' },
      duration: { type: 'string', default: '10' },
      rules: { type: 'string', default: join(ROOT, 'rules') },
      'log-level': { type: 'string', default: 'info' },
      all: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      only: { type: 'string' },
      repeat: { type: 'string', default: '1' },
    },
  });
  const o: Options = {
    connections: Number(values.connections),
    warmupMs: Number(values.warmup) * 1000,
    durationMs: Number(values.duration) * 1000,
    rules: resolve(values.rules!),
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    databaseUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    logLevel: values['log-level']!,
    all: values.all!,
    cpuProf: values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined,
    only: values.only,
    repeat: Number(values.repeat),
  };
  for (const u of [o.redisUrl, o.databaseUrl]) {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(u).hostname)) throw new Error(`refusing to benchmark against a non-loopback server: ${new URL(u).host}`);
  }
  if (!(o.durationMs > 0 && o.durationMs <= 60_000) || !(o.connections >= 1 && o.connections <= 256) || !(o.repeat >= 1 && o.repeat <= 5)) {
    throw new Error('keep the load bounded: 0 < --duration <= 60, 1 <= --connections <= 256, 1 <= --repeat <= 5');
  }

  const scenarios: Scenario[] = [
    { name: 'bare-express', server: 'bare', fingerprints: 'new' },
    { name: 'bare-node', server: 'bare-node', fingerprints: 'new' },
    { name: 'receiver-new', server: 'remediator', role: 'receiver', fingerprints: 'new' },
    { name: 'receiver-duplicate', server: 'remediator', role: 'receiver', fingerprints: 'duplicate' },
    { name: 'receiver-new-20', server: 'remediator', role: 'receiver', fingerprints: 'new', alerts: 20 },
    { name: 'all-new', server: 'remediator', role: 'all', fingerprints: 'new' },
  ];
  // The bare express endpoint always runs (it is the reference); --only picks among the others.
  const picked = scenarios.filter((s) => s.server !== 'remediator' || (o.only ? o.only.split(',').includes(s.name) : s.role === 'receiver' || o.all));

  console.log(`# remediator ingest benchmark  ${new Date().toISOString()}`);
  console.log(`# node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model}), ${o.connections} connections, ${o.warmupMs / 1000}s warm-up + ${o.durationMs / 1000}s, ${o.repeat} round(s), LOG_LEVEL=${o.logLevel}`);
  console.log(`# load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# rules: copy of ${o.rules} + one notify rule matching the payload`);
  type Row = { round: number; sc: Scenario; r: Awaited<ReturnType<typeof runScenario>>; rps: number; ratio: number; usPerReq: number };
  const rows: Row[] = [];
  for (let round = 1; round <= o.repeat; round++) {
    let bareRps = NaN;
    for (const sc of picked) {
      const r = await runScenario(sc, o);
      const rps = r.requests / r.seconds;
      if (sc.server === 'bare') bareRps = rps;
      // Server CPU per request: steadier than req/s on a machine others use too.
      rows.push({ round, sc, r, rps, ratio: rps / bareRps, usPerReq: (r.serverCpu / rps) * 1e6 });
      process.stderr.write(`round ${round}: ${sc.name} ${rps.toFixed(0)} req/s\n`);
    }
  }
  const f = (n: number | undefined, d = 1) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const pct = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : `${(n * 100).toFixed(0)}%`);
  console.log('\n## Every run (ratio: against the bare endpoint of the same round)\n');
  console.log('| round | scenario | role | req/s | alerts/s | p50 ms | p99 ms | max ms | ratio vs bare | non-200 | server CPU | server CPU µs/req | redis CPU | loadgen CPU | machine CPU (of 200%) | requests incl. warm-up | deliveries in the stream | remediation jobs in Redis | ingest jobs waiting at the end |');
  console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { round, sc, r, rps, ratio, usPerReq } of rows) {
    const non200 = r.requests - (r.statuses['200'] ?? 0) + r.errors;
    console.log(
      `| ${round} | ${sc.name} | ${sc.role ?? '-'} | ${f(rps, 0)} | ${f(r.alerts / r.seconds, 0)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.max, 1)} | ${f(ratio, 2)} | ${non200} | ` +
        `${pct(r.serverCpu)} | ${f(usPerReq, 0)} | ${pct(r.redisCpu)} | ${pct(r.loadCpu)} | ${pct(r.machineCpu)} | ${r.total} | ${r.deliveries ?? '-'} | ${r.jobs ?? '-'} | ${r.ingestBacklog ?? '-'} |`,
    );
  }
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  console.log(`\n## Median of ${o.repeat} round(s)\n`);
  console.log('| scenario | role | req/s | alerts/s | p50 ms | p99 ms | ratio vs bare | server CPU µs/req |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const sc of picked) {
    const mine = rows.filter((x) => x.sc === sc);
    const m = (g: (x: Row) => number) => median(mine.map(g));
    console.log(
      `| ${sc.name} | ${sc.role ?? '-'} | ${f(m((x) => x.rps), 0)} | ${f(m((x) => x.r.alerts / x.r.seconds), 0)} | ${f(m((x) => x.r.p50), 2)} | ${f(m((x) => x.r.p99), 2)} | ` +
        `${f(m((x) => x.ratio), 2)} | ${f(m((x) => x.usPerReq), 0)} |`,
    );
  }
  if (o.cpuProf) console.log(`\nCPU profiles of the remediator server in ${o.cpuProf}`);
}

// ---------------------------------------------------------------------------------------------
const mode = process.argv[2];
if (mode === 'serve-bare') {
  await serveBare(Number(process.argv[3]));
} else if (mode === 'serve-bare-node') {
  await serveBareNode(Number(process.argv[3]));
} else if (mode === 'load') {
  const result = await runLoad(JSON.parse(process.argv[3]!) as LoadSpec);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
} else {
  await main();
}
