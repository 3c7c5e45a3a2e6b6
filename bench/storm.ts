/**
 * Alert storm: N distinct alerts, each delivered 3 times (as an HA pair of Alertmanagers plus a
 * repeat would), against remediator processes started here, all-in-one or split into receivers and
 * workers. Counts what matters: exactly one run per alert (0 lost, 0 doubled, 0 stuck), how long
 * from a webhook to its run's start, when the last run ended, and the RSS of every process.
 *
 *   npm run storm [-- --alerts 10000 --per-delivery 10 --mode all|split|both --connections 16 --concurrency 8]
 *
 * Uses the local Redis and PostgreSQL (loopback only) with its own QUEUE_PREFIX and schema, removed
 * at the end. The rule's action is `notify` (no network): the fastest remediation there is, so
 * what bounds the figures is remediator's own work. See bench/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Cluster, Redis } from 'ioredis';
import { build, isStale } from '../bin/build.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN = 'storm-webhook-token';

export interface StormOptions {
  alerts: number;
  perDelivery: number;
  connections: number;
  concurrency: number;
  mode: 'all' | 'split';
  /** Deliveries of each alert (default 3). */
  copies?: number;
  /** Webhooks per second, sent at that pace whatever the answers take (default: as fast as answered). */
  pace?: number;
  redisUrl: string;
  databaseUrl: string;
  /** Extra environment for every remediator process (REDIS_CLUSTER_NODES, ...). */
  env?: Record<string, string>;
  /** Injected while the storm is sent, `atMs` after the first webhook (bench/faults.ts). */
  fault?: {
    name: string;
    atMs: number;
    run: (procs: Proc[]) => Promise<void>;
    /** Checked once the runs are done, before cleanup: a line for the results (bench/faults.ts). */
    check?: (q: (sql: string) => Promise<any[]>, schema: string) => Promise<string>;
  };
  /** A rules file instead of the one notify rule (bench/faults.ts: a target that hangs). */
  rules?: string;
  /** Runs the rules should make (default: one per alert). */
  expectedRuns?: number;
  /** `breaker`: a breaker-reset rule on `targets` declared breakers of a fast fake (default: the `notify` rule). */
  action?: 'notify' | 'breaker';
  /** Declared breaker targets the alerts are spread over (action breaker; default 100). */
  targets?: number;
  /** Canaries: alerts of another rule fired one by one during the storm; their webhook-to-start is the fairness figure. */
  canaries?: number;
  /** Called once every run has ended, before cleanup (bench/cluster.ts: commands per master); its line goes in the results. */
  onDone?: () => Promise<string | undefined>;
  /** QUEUE_PREFIX (default `storm-<id>`, `{storm-<id>}` on a cluster). */
  prefix?: string;
  /** Called once the processes are up, before the first webhook (bench/cluster.ts: resets Redis counters). */
  onReady?: () => Promise<void>;
}

export interface StormResult {
  mode: string;
  alerts: number;
  copies: number;
  webhooks: number;
  non200: number;
  sendSeconds: number;
  runs: number;
  lost: number;
  doubled: number;
  /** Attempts started beyond one per run: a run whose worker died mid-run and ran again (at-least-once execution). */
  reruns: number;
  stuck: number;
  /** Seconds from the last webhook's answer to the last run's end. */
  lastRunAfterLastWebhook: number;
  startP50: number;
  startP99: number;
  startMax: number;
  runsPerSecond: number;
  runsPerSecondPerWorker: number;
  rss: Record<string, number>;
  /** RSS of each process once started, before the storm. */
  startRss: Record<string, number>;
  /** What the fault's own check found (notifications caught up, ...). */
  note?: string;
  /** PostgreSQL statements per run, all processes (remediator_postgres_statements_total, after start-up). */
  statementsPerRun?: number;
  /** Webhook-to-start of the canaries (another rule, fired during the storm), ms. */
  canary?: { n: number; p50: number; p99: number; max: number };
  /** Resets the fake breaker received (action breaker). */
  resets?: number;
  /** Webhooks refused (non-200 or no answer) and retried: from the first to the last refusal, seconds after the first webhook, and the 200s answered meanwhile. */
  refusals?: { n: number; fromS: number; toS: number; okBetween: number; noAnswer: number };
  /** The line onDone returned. */
  done?: string;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  url?: string;
  /** Where its /metrics answer (the webhook port, or METRICS_PORT for a worker). */
  metricsUrl?: string;
  maxRss: number;
  startRss: number;
  out: string;
}

/** Children still running: killed if the bench itself is stopped (Ctrl-C, timeout), so none outlives it. */
const live = new Set<ChildProcess>();
let reaperInstalled = false;
function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const c of live) c.kill('SIGTERM');
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export async function startProc(name: string, env: Record<string, string>): Promise<Proc> {
  installReaper();
  // The compiled service, as `npm start` and the container run it (built first when stale).
  // BENCH_NODE_ARGS: extra node flags for the processes under test (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...extra, 'dist/main.js'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const p: Proc = { name, child, maxRss: 0, startRss: 0, out: '' };
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} not started in 60 s:\n${p.out.slice(-4000)}`)), 60_000);
    const onData = (d: Buffer) => {
      p.out = (p.out + d.toString()).slice(-20_000);
      const m = /"msg":"remediator started".*?"listening":"(http:[^"]+)"/.exec(p.out);
      if (m || /"msg":"remediator started"/.test(p.out)) {
        p.url = m?.[1];
        p.metricsUrl = m?.[1] ?? /"msg":"remediator started".*?"metrics":"(http:[^"]+)"/.exec(p.out)?.[1];
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => fail(new Error(`${name} exited with ${code}:\n${p.out.slice(-4000)}`)));
  });
  return p;
}

export async function rssMiB(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

export async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** Deliveries: groups of `perDelivery` alerts, each group sent 3 times, copies spread over the receivers. */
function deliveries(o: StormOptions, runId: string, startsAt: string): string[][] {
  const groups: string[] = [];
  for (let g = 0; g * o.perDelivery < o.alerts; g++) {
    const alerts = [];
    for (let i = g * o.perDelivery; i < Math.min(o.alerts, (g + 1) * o.perDelivery); i++) {
      alerts.push({
        status: 'firing', labels: { alertname: 'StormAlert', instance: `host-${i}`, shard: String(i % (o.targets ?? 100)), severity: 'page' }, annotations: { summary: `storm ${i}` },
        startsAt, endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: runId + i.toString(16).padStart(8, '0'),
      });
    }
    groups.push(JSON.stringify({
      version: '4', groupKey: `{}:{alertname="StormAlert",g="${g}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'remediate',
      groupLabels: { alertname: 'StormAlert' }, commonLabels: { alertname: 'StormAlert' }, commonAnnotations: {}, externalURL: 'http://127.0.0.1:9093', alerts,
    }));
  }
  // The copies of one group arrive apart, as repeats and HA peers do.
  return [groups, [...groups].reverse(), groups].slice(0, o.copies ?? 3);
}

interface Sent {
  webhooks: number;
  non200: number;
  lastAnswer: number;
  /** Refusals (non-200 or no answer): when the first and the last came, and how many 200s came between them. */
  refusals?: { first: number; last: number; okBetween: number; noAnswer: number };
}

async function send(urls: string[], rounds: string[][], connections: number, pace?: number): Promise<Sent> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections * urls.length });
  const queue = rounds.flat().map((body, i) => ({ body, url: new URL(`${urls[i % urls.length]}/webhooks/alertmanager`) }));
  let next = 0;
  let non200 = 0;
  let lastAnswer = 0;
  const oks: number[] = [];
  let firstRefusal = 0;
  let noAnswer = 0;
  let lastRefusal = 0;
  const post = (u: URL, body: string) =>
    new Promise<number>((ok, fail) => {
      const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.resume();
        res.on('end', () => ok(res.statusCode ?? 0));
      });
      // Alertmanager gives up on a webhook after a while too (and sends it again).
      req.setTimeout(15_000, () => {
        noAnswer++;
        req.destroy(new Error('no answer in 15 s'));
      });
      req.on('error', fail);
      req.end(body);
    });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: pace ? queue.length : connections }, async (_, i) => {
    if (pace) await new Promise((r) => setTimeout(r, t0 + (i * 1000) / pace - Date.now()));
    while (next < queue.length) {
      const { url, body } = queue[next++]!;
      // Alertmanager retries a failed delivery: so does this, until it is accepted.
      for (;;) {
        const status = await post(url, body).catch(() => 0);
        if (status === 200) {
          oks.push(Date.now());
          break;
        }
        non200++;
        lastRefusal = Date.now();
        firstRefusal ||= lastRefusal;
        await new Promise((r) => setTimeout(r, 200));
      }
      lastAnswer = Date.now();
      if (pace) return;
    }
  }));
  agent.destroy();
  const refusals = non200 ? { first: firstRefusal, last: lastRefusal, okBetween: oks.filter((t) => t >= firstRefusal && t <= lastRefusal).length, noAnswer } : undefined;
  return { webhooks: queue.length, non200, lastAnswer, refusals };
}

/** A progress line on stderr (the results table goes to stdout). */
const progress = (line: string) => process.stderr.write(`  [${new Date().toISOString().slice(11, 19)}] ${line}\n`);

export async function runStorm(o: StormOptions): Promise<StormResult> {
  const id = randomBytes(4).toString('hex');
  const schema = `storm_${id}`;
  // In a cluster every key of one prefix must share a {hash tag}.
  const prefix = o.prefix ?? (o.env?.REDIS_CLUSTER_NODES ? `{storm-${id}}` : `storm-${id}`);
  const rulesDir = await mkdtemp(join(tmpdir(), 'remediator-storm-rules-'));
  const breaker = o.action === 'breaker' ? await fastBreaker() : undefined;
  await writeFile(join(rulesDir, 'storm.yml'), o.rules ?? (breaker ? breakerRules(breaker.url, o.targets ?? 100) : `rules:\n  - name: storm-notify\n    match: ['alertname="StormAlert"']\n    action: notify\n    params: { instructions: "look at {{ labels.instance }}" }\n`));
  await writeFile(join(rulesDir, 'canary.yml'), `rules:\n  - name: canary\n    match: ['alertname="StormCanary"']\n    action: notify\n`);
  if (isStale()) build();
  const env = {
    HOST: '127.0.0.1', PORT: '0', REDIS_URL: o.redisUrl, DATABASE_URL: o.databaseUrl, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix,
    RULES_DIR: rulesDir, WEBHOOK_TOKEN: TOKEN, LOG_LEVEL: 'info', WORKER_CONCURRENCY: String(o.concurrency), SHUTDOWN_GRACE: '5000', METRICS_PORT: '0',
    BREAKER_TOKEN: 'storm-breaker-token', ...o.env,
  };
  const procs: Proc[] = [];
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 2 });
  let sampler: NodeJS.Timeout | undefined;
  try {
    if (o.mode === 'all') procs.push(await startProc('all', { ...env, REMEDIATOR_ROLE: 'all' }));
    else {
      // Workers first: they migrate the schema.
      for (let i = 1; i <= 2; i++) procs.push(await startProc(`worker-${i}`, { ...env, REMEDIATOR_ROLE: 'worker' }));
      for (let i = 1; i <= 2; i++) procs.push(await startProc(`receiver-${i}`, { ...env, REMEDIATOR_ROLE: 'receiver' }));
    }
    for (const p of procs) p.startRss = Math.round(await rssMiB(p.child.pid!));
    sampler = setInterval(() => {
      for (const p of procs) void rssMiB(p.child.pid!).then((m) => (p.maxRss = Math.max(p.maxRss, m)));
    }, 200);
    const urls = procs.filter((p) => p.url).map((p) => p.url!);
    const runId = id;
    const statementsBefore = await statements(procs);
    await o.onReady?.();
    const t0 = Date.now();
    const fault = o.fault && new Promise<void>((r) => setTimeout(r, o.fault!.atMs)).then(() => o.fault!.run(procs));
    let sending = true;
    // Canaries: another rule's alerts, one every 250 ms while the storm is sent and worked off.
    const canaries = (async () => {
      for (let i = 0; i < (o.canaries ?? 0); i++) {
        await new Promise((r) => setTimeout(r, 250));
        const body = JSON.stringify({
          version: '4', groupKey: `{}:{alertname="StormCanary",i="${i}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'remediate', groupLabels: {}, commonLabels: {},
          commonAnnotations: {}, externalURL: '', alerts: [{ status: 'firing', labels: { alertname: 'StormCanary', i: String(i) }, annotations: {}, startsAt: new Date().toISOString(),
            endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: `cafe${runId}${i.toString(16).padStart(4, '0')}` }],
        });
        await send([urls[i % urls.length]!], [[body]], 1);
        if (!sending && i >= 3) break;
      }
    })();
    const sent = await send(urls, deliveries(o, runId, new Date(t0 - 60_000).toISOString()), o.connections, o.pace);
    sending = false;
    progress(`sent ${sent.webhooks} webhooks in ${((Date.now() - t0) / 1000).toFixed(1)} s (${sent.non200} refused and retried)`);
    await fault;
    const sendSeconds = (sent.lastAnswer - t0) / 1000;
    // Done when every alert has a finished run and nothing moved for a few seconds.
    const q = (sql: string) => pool.query(sql).then((r) => r.rows);
    let last = '';
    let still = 0;
    let shown = Date.now();
    for (const deadline = Date.now() + 300_000; Date.now() < deadline; ) {
      const [row] = await q(`SELECT count(*)::int AS runs, count(*) FILTER (WHERE finished_at IS NOT NULL)::int AS done FROM "${schema}".runs`);
      const now = `${row.runs}/${row.done}`;
      still = now === last ? still + 1 : 0;
      last = now;
      if ((row.done >= (o.expectedRuns ?? o.alerts) && still >= 4) || still >= 40) break;
      if (Date.now() - shown >= 5000) {
        shown = Date.now();
        progress(`runs ${row.runs}, ended ${row.done}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const [counts] = await q(`SELECT count(*)::int AS runs, count(DISTINCT (fingerprint, rule))::int AS alerts,
        count(*) FILTER (WHERE state IN ('queued', 'running', 'retrying'))::int AS stuck,
        extract(epoch FROM max(finished_at))::float8 * 1000 AS last_end, extract(epoch FROM min(started_at))::float8 * 1000 AS first_start,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)) * 1000 AS p50,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)) * 1000 AS p99,
        max(extract(epoch FROM started_at - queued_at))::float8 * 1000 AS max
      FROM "${schema}".runs WHERE fingerprint LIKE '${runId}%'`);
    // Doubled: a second run for one alert. Re-runs: a run whose attempt started twice.
    const [started] = await q(`SELECT count(*)::int AS n FROM "${schema}".run_events e JOIN "${schema}".runs r USING (job_id) WHERE e.state = 'running' AND r.fingerprint LIKE '${runId}%'`);
    await canaries;
    const [canary] = await q(`SELECT count(*)::int AS n,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)) * 1000 AS p50,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)) * 1000 AS p99,
        max(extract(epoch FROM started_at - queued_at))::float8 * 1000 AS max
      FROM "${schema}".runs WHERE rule = 'canary' AND started_at IS NOT NULL`);
    const statementsAfter = await statements(procs);
    const done = await o.onDone?.();
    const workers = o.mode === 'all' ? 1 : 2;
    const busySeconds = (counts.last_end - counts.first_start) / 1000;
    return {
      mode: o.fault ? `${o.mode}, ${o.fault.name}` : o.pace ? `${o.mode}, ${o.pace} webhooks/s` : o.mode, alerts: o.alerts, copies: o.copies ?? 3, webhooks: sent.webhooks, non200: sent.non200, sendSeconds,
      runs: counts.runs, lost: (o.expectedRuns ?? o.alerts) - counts.alerts, doubled: counts.runs - counts.alerts, reruns: Math.max(0, started.n - counts.runs), stuck: counts.stuck,
      lastRunAfterLastWebhook: (counts.last_end - sent.lastAnswer) / 1000,
      startP50: counts.p50, startP99: counts.p99, startMax: counts.max,
      runsPerSecond: counts.runs / busySeconds, runsPerSecondPerWorker: counts.runs / busySeconds / workers,
      rss: Object.fromEntries(procs.map((p) => [p.name, Math.round(p.maxRss)])),
      startRss: Object.fromEntries(procs.map((p) => [p.name, p.startRss])),
      note: o.fault?.check ? await o.fault.check(q, schema) : undefined,
      statementsPerRun: statementsBefore !== undefined && statementsAfter !== undefined ? (statementsAfter - statementsBefore) / Math.max(1, counts.runs + canary.n) : undefined,
      ...(canary.n ? { canary: { n: canary.n, p50: canary.p50, p99: canary.p99, max: canary.max } } : {}),
      ...(breaker ? { resets: breaker.resets() } : {}),
      ...(sent.refusals ? { refusals: { n: sent.non200, fromS: (sent.refusals.first - t0) / 1000, toS: (sent.refusals.last - t0) / 1000, okBetween: sent.refusals.okBetween, noAnswer: sent.refusals.noAnswer } } : {}),
      ...(done ? { done } : {}),
    };
  } finally {
    clearInterval(sampler);
    for (const p of procs) await stop(p).catch(() => {});
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await pool.end();
    const cluster = o.env?.REDIS_CLUSTER_NODES
      ? new Cluster(o.env.REDIS_CLUSTER_NODES.split(',').map((n) => ({ host: n.split(':')[0]!, port: Number(n.split(':')[1]) })))
      : undefined;
    const r = cluster ?? new Redis(o.redisUrl, { maxRetriesPerRequest: 1 });
    for (const node of cluster ? (await new Promise((ok) => cluster.once('ready', ok)), cluster.nodes('master')) : [r as Redis]) {
      // The global prefix and the shards' (`storm-<id>:{s<i>.<k>}:...`, see src/core/shards.ts).
      for (const match of new Set([`${prefix}:*`, `${prefix.replace(/[{}]/g, '')}:*`])) {
        let cursor = '0';
        do {
          const [nextCursor, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
          cursor = nextCursor;
          // One key per UNLINK (pipelined): in a cluster the keys of one SCAN page sit in different slots.
          if (keys.length) await keys.reduce((pl, k) => pl.unlink(k), node.pipeline()).exec();
        } while (cursor !== '0');
      }
    }
    r.disconnect();
    await rm(rulesDir, { recursive: true, force: true });
    await breaker?.close();
  }
}

/** remediator_postgres_statements_total summed over the processes, or undefined when one did not answer. */
export async function statements(procs: Proc[]): Promise<number | undefined> {
  let total = 0;
  for (const p of procs) {
    if (!p.metricsUrl) return undefined;
    const text = await fetch(`${p.metricsUrl}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).catch(() => '');
    const m = /^remediator_postgres_statements_total (\d+)/m.exec(text);
    if (!m) return undefined;
    total += Number(m[1]);
  }
  return total;
}

/**
 * A fast fake breaker for `--action breaker`: every target's status reads "open" until a reset,
 * then "closed" once (so every run reads, resets and sees it close: the whole remediation).
 */
async function fastBreaker(): Promise<{ url: string; resets: () => number; close: () => Promise<void> }> {
  const closedOnce = new Set<string>();
  let resets = 0;
  const server = http.createServer((req, res) => {
    const [, target, op] = (req.url ?? '').split('/');
    req.resume();
    if (op === 'reset' && req.method === 'POST') {
      resets++;
      closedOnce.add(target!);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }
    const state = closedOnce.delete(target!) ? 'closed' : 'open';
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ state }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, resets: () => resets, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

/** A breaker-reset rule whose target comes from the alert's `shard` label, over `n` declared targets. */
function breakerRules(url: string, n: number): string {
  const targets = Array.from({ length: n }, (_, i) => `  svc-${i}:\n    kind: http-breaker\n    status: { url: '${url}/svc-${i}/status', token_env: BREAKER_TOKEN }\n    reset: { method: POST, url: '${url}/svc-${i}/reset', token_env: BREAKER_TOKEN }\n`).join('');
  return `targets:\n${targets}rules:\n  - name: storm-breaker\n    match: ['alertname="StormAlert"']\n    action: breaker-reset\n    target: 'svc-{{ labels.shard }}'\n    params: { poll_interval: 10ms, verify_timeout: 5s }\n`;
}

export function printStorm(r: StormResult): void {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  console.log(
    `| ${r.mode} | ${r.alerts} x ${r.copies} | ${r.webhooks} | ${r.non200} | ${f(r.sendSeconds)} | ${r.runs} | ${r.lost} | ${r.doubled} | ${r.reruns} | ${r.stuck} | ${f(r.lastRunAfterLastWebhook)} | ` +
      `${f(r.startP50, 0)} | ${f(r.startP99, 0)} | ${f(r.startMax, 0)} | ${f(r.runsPerSecond, 0)} | ${f(r.runsPerSecondPerWorker, 0)} | ${Object.entries(r.rss).map(([k, v]) => `${k} ${v} (${r.startRss[k]} at start)`).join(', ')} |`,
  );
  if (r.note) console.log(`|  | ${r.note} |`);
  const extra = [
    r.statementsPerRun !== undefined ? `PostgreSQL statements per run: ${f(r.statementsPerRun, 2)}` : undefined,
    r.canary ? `canaries (another rule during the storm): ${r.canary.n}, webhook-to-start p50 ${f(r.canary.p50, 0)} ms, p99 ${f(r.canary.p99, 0)} ms, max ${f(r.canary.max, 0)} ms` : undefined,
    r.resets !== undefined ? `breaker resets received: ${r.resets}` : undefined,
    r.refusals ? `webhooks refused and retried: ${r.refusals.n}, from ${f(r.refusals.fromS)} s to ${f(r.refusals.toS)} s after the first webhook, ${r.refusals.okBetween} answered 200 meanwhile${r.refusals.noAnswer ? `, ${r.refusals.noAnswer} never answered (cut after 15 s)` : ''}` : undefined,
    r.done,
  ].filter(Boolean);
  if (extra.length) console.log(`|  | ${extra.join('; ')} |`);
}

export const STORM_HEADER = [
  '| mode | alerts x deliveries | webhooks | non-200 (retried) | sending s | runs | lost | doubled | re-run attempts | stuck | last run ends s after last webhook | webhook-to-start p50 ms | p99 ms | max ms | runs/s | runs/s per worker process | max RSS MiB (at start) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      alerts: { type: 'string', default: '10000' },
      'per-delivery': { type: 'string', default: '10' },
      connections: { type: 'string', default: '16' },
      concurrency: { type: 'string', default: '8' },
      mode: { type: 'string', default: 'both' },
      copies: { type: 'string', default: '3' },
      pace: { type: 'string', default: '0' },
      latency: { type: 'boolean', default: false },
      action: { type: 'string', default: 'notify' },
      targets: { type: 'string', default: '100' },
      canaries: { type: 'string', default: '0' },
    },
  });
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  for (const u of [redisUrl, databaseUrl]) {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(u).hostname)) throw new Error(`refusing to run against a non-loopback server: ${new URL(u).host}`);
  }
  const env: Record<string, string> = {};
  if (process.env.REDIS_CLUSTER_NODES) env.REDIS_CLUSTER_NODES = process.env.REDIS_CLUSTER_NODES;
  const modes = values.mode === 'both' ? (['all', 'split'] as const) : [values.mode as 'all' | 'split'];
  console.log(`# remediator storm  ${new Date().toISOString()}  node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# ${values.alerts} alerts x 3 deliveries, ${values['per-delivery']} alerts per webhook, ${values.connections} connections, WORKER_CONCURRENCY=${values.concurrency}${env.REDIS_CLUSTER_NODES ? `, Redis Cluster ${env.REDIS_CLUSTER_NODES}` : ''}\n`);
  console.log(STORM_HEADER.join('\n'));
  for (const mode of Number(values.alerts) > 0 ? modes : []) {
    printStorm(await runStorm({
      alerts: Number(values.alerts), perDelivery: Number(values['per-delivery']), connections: Number(values.connections),
      concurrency: Number(values.concurrency), mode, redisUrl, databaseUrl, env, copies: Number(values.copies), pace: Number(values.pace) || undefined,
      action: values.action as 'notify' | 'breaker', targets: Number(values.targets), canaries: Number(values.canaries),
    }));
  }
  // Webhook-to-start while the workers have capacity: single-alert webhooks at a steady pace.
  if (values.latency) {
    for (const mode of modes) {
      printStorm(await runStorm({ alerts: 300, perDelivery: 1, connections: 1, concurrency: Number(values.concurrency), mode, redisUrl, databaseUrl, env, copies: 1, pace: 30 }));
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
