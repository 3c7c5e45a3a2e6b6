/**
 * A storm with Slack and PagerDuty limited as the real services limit them: Slack 1 message
 * (post or edit) per second per channel with bursts of 5, 429 + Retry-After beyond; PagerDuty 120
 * events per minute per routing key. N breaker alerts of one rule in G Alertmanager groups, each
 * group delivered 3 times, all in one Slack channel; `--canary-after` seconds later one critical
 * alert of another rule in the same channel and one in another channel. Counts what the issue
 * asks: how long until each canary's first message, how many posts and edits the storm's channel
 * got, whether every run is accounted for (named in a thread or counted in a summary), PagerDuty
 * events per group, and the share of Slack calls answered 429.
 *
 *   npm run storm:notify [-- --alerts 1000 --groups 43 --canary-after 20 --minutes 5]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { build, isStale } from '../bin/build.js';
import { FakePagerDuty } from '../test/fakes/pagerduty.js';
import { FakeSlack } from '../test/fakes/slack.js';
import { startProc, stop, type Proc } from './storm.js';

export interface NotifyStormOptions {
  alerts: number;
  groups: number;
  canaryAfterS: number;
  /** How long the channel is watched after the storm started. */
  minutes: number;
  redisUrl: string;
  databaseUrl: string;
}

export interface NotifyStormResult {
  runs: number;
  runsEnded: number;
  /** Seconds from the canary's webhook to its first Slack message: same channel, another channel. */
  canarySameChannelS?: number;
  canaryOtherChannelS?: number;
  /** Slack calls in the storm's channel before the canary's first message there, after it was fired. */
  callsAheadOfCanary?: number;
  stormChannelPosts: number;
  stormChannelEdits: number;
  /** Runs with their own thread, and the runs the storm summaries count. */
  threads: number;
  summarized: number;
  slackCalls: number;
  slack429: number;
  pagerDutyEvents: number;
  maxEventsPerGroup: number;
  pagerDuty429: number;
  canaryPagedS?: number;
}

const ROUTING_KEY = 'b'.repeat(32);

export async function runNotifyStorm(o: NotifyStormOptions): Promise<NotifyStormResult> {
  const id = randomBytes(4).toString('hex');
  const schema = `nstorm_${id}`;
  const prefix = `nstorm-${id}`;
  const slack = await new FakeSlack().start();
  slack.limit = { rate: 1, burst: 5 };
  const pd = await new FakePagerDuty().start();
  pd.limit = { perMinute: 120 };
  // Every status read says "open" until a reset; then "closed" once: each run reads, resets, sees it close.
  const reset = new Set<string>();
  const breaker = http.createServer((req, res) => {
    const [, target, op] = (req.url ?? '').split('/');
    req.resume();
    if (op === 'reset') {
      reset.add(target!);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ state: reset.delete(target!) ? 'closed' : 'open' }));
  });
  await new Promise<void>((r) => breaker.listen(0, '127.0.0.1', r));
  const breakerUrl = `http://127.0.0.1:${(breaker.address() as { port: number }).port}`;
  const targets = 50;
  const rulesDir = await mkdtemp(join(tmpdir(), 'remediator-nstorm-'));
  await writeFile(join(rulesDir, 'r.yml'), `targets:\n${Array.from({ length: targets }, (_, i) =>
    `  svc-${i}:\n    kind: http-breaker\n    status: { url: '${breakerUrl}/svc-${i}/status', token_env: BREAKER_TOKEN }\n    reset: { method: POST, url: '${breakerUrl}/svc-${i}/reset', token_env: BREAKER_TOKEN }\n`).join('')}rules:
  - name: breaker-storm
    match: ['alertname="BreakerOpen"']
    action: breaker-reset
    target: 'svc-{{ labels.shard }}'
    params: { poll_interval: 10ms, verify_timeout: 5s }
    quarantine_after: 0
    notify: { slack: { channel: '#incidents' } }
  - name: canary-same
    match: ['alertname="VoiceDown"']
    action: notify
    notify: { slack: { channel: '#incidents' } }
  - name: canary-other
    match: ['alertname="PaymentsDown"']
    action: notify
    notify: { slack: { channel: '#payments' } }
`);
  if (isStale()) build();
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 2 });
  let proc: Proc | undefined;
  try {
    proc = await startProc('all', {
      HOST: '127.0.0.1', PORT: '0', REDIS_URL: o.redisUrl, DATABASE_URL: o.databaseUrl, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix, RULES_DIR: rulesDir,
      WEBHOOK_TOKEN: 'storm', LOG_LEVEL: 'info', REMEDIATOR_ROLE: 'all', BREAKER_TOKEN: 'breaker', WORKER_CONCURRENCY: '32',
      SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pd.url, PUBLIC_URL: 'https://remediator.example',
    });
    const post = (body: unknown) => fetch(`${proc!.url}/webhooks/alertmanager`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer storm' }, body: JSON.stringify(body),
    }).then((r) => r.status);
    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const groups = Array.from({ length: o.groups }, (_, g) => ({
      version: '4', groupKey: `{}:{alertname="BreakerOpen",g="${g}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'remediate',
      groupLabels: { alertname: 'BreakerOpen' }, commonLabels: {}, commonAnnotations: {}, externalURL: '',
      alerts: Array.from({ length: o.alerts }, (_, i) => i).filter((i) => i % o.groups === g).map((i) => ({
        status: 'firing', labels: { alertname: 'BreakerOpen', instance: `host-${i}`, shard: String(i % targets), severity: 'critical' },
        annotations: { summary: `breaker open on host-${i}` }, startsAt, endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: `${id}${i.toString(16).padStart(8, '0')}`,
      })),
    }));
    const t0 = Date.now();
    for (const copy of [groups, [...groups].reverse(), groups]) {
      for (const g of copy) while ((await post(g)) !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + o.canaryAfterS * 1000 - Date.now())));
    const canary = (alertname: string) => ({
      version: '4', groupKey: `{}:{alertname="${alertname}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'remediate', groupLabels: {}, commonLabels: {},
      commonAnnotations: {}, externalURL: '', alerts: [{ status: 'firing', labels: { alertname, severity: 'critical', service: alertname.toLowerCase() },
        annotations: { summary: `${alertname} canary` }, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: `ca${id}${alertname.length}` }],
    });
    const callsBefore = slack.calls.length;
    const tc = Date.now();
    await Promise.all([post(canary('VoiceDown')), post(canary('PaymentsDown'))]);
    const rootOf = (channel: string, name: string) => slack.okCalls('chat.postMessage', channel).find((c) => !c.args.thread_ts && JSON.stringify(c.args).includes(`${name} canary`));
    let same: number | undefined;
    let other: number | undefined;
    let paged: number | undefined;
    const end = t0 + o.minutes * 60_000;
    while (Date.now() < end) {
      same ??= rootOf('#incidents', 'VoiceDown') ? (rootOf('#incidents', 'VoiceDown')!.at - tc) / 1000 : undefined;
      other ??= rootOf('#payments', 'PaymentsDown') ? (rootOf('#payments', 'PaymentsDown')!.at - tc) / 1000 : undefined;
      const page = pd.enqueued().find((r) => r.status === 202 && r.body.event_action === 'trigger' && /VoiceDown/.test(r.body.payload?.summary ?? ''));
      paged ??= page ? (page.at - tc) / 1000 : undefined;
      await new Promise((r) => setTimeout(r, 250));
    }
    const inChannel = slack.calls.filter((c) => slack.channelId(String(c.args.channel ?? '')) === slack.channelId('#incidents') && !c.error && c.at <= end);
    const sameRoot = rootOf('#incidents', 'VoiceDown');
    const ahead = sameRoot ? slack.calls.slice(callsBefore).filter((c) => !c.error && c.at < sameRoot.at && slack.channelId(String(c.args.channel ?? '')) === slack.channelId('#incidents')).length : undefined;
    const roots = slack.roots('#incidents');
    const summaries = roots.filter((m) => /^:(cyclone|checkered_flag):/.test(m.text));
    const summarized = summaries.reduce((n, m) => n + Number(/ran ([\d,]+) times/.exec(m.text)?.[1]?.replace(/,/g, '') ?? 0), 0);
    const [counts] = (await pool.query(`SELECT count(*)::int AS runs, count(*) FILTER (WHERE finished_at IS NOT NULL)::int AS ended FROM "${schema}".runs WHERE rule = 'breaker-storm'`)).rows;
    const perGroup = new Map<string, number>();
    for (const r of pd.enqueued()) if (r.status === 202) perGroup.set(r.body.dedup_key, (perGroup.get(r.body.dedup_key) ?? 0) + 1);
    const slackCalls = slack.calls.filter((c) => c.method.startsWith('chat.')).length;
    return {
      runs: counts.runs, runsEnded: counts.ended, canarySameChannelS: same, canaryOtherChannelS: other, callsAheadOfCanary: ahead,
      stormChannelPosts: inChannel.filter((c) => c.method === 'chat.postMessage').length, stormChannelEdits: inChannel.filter((c) => c.method === 'chat.update').length,
      threads: roots.length - summaries.length - (sameRoot ? 1 : 0), summarized, slackCalls, slack429: slack.limited().length,
      pagerDutyEvents: pd.enqueued().filter((r) => r.status === 202).length, maxEventsPerGroup: Math.max(0, ...[...perGroup.values()]), pagerDuty429: pd.limited().length,
      canaryPagedS: paged,
    };
  } finally {
    if (proc) await stop(proc).catch(() => {});
    await slack.stop();
    await pd.stop();
    await new Promise<void>((r) => (breaker.closeAllConnections(), breaker.close(() => r())));
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await pool.end();
    const redis = new Redis(o.redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    await rm(rulesDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { alerts: { type: 'string', default: '1000' }, groups: { type: 'string', default: '43' }, 'canary-after': { type: 'string', default: '20' }, minutes: { type: 'string', default: '5' } },
  });
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  for (const u of [redisUrl, databaseUrl]) {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(u).hostname)) throw new Error(`refusing to run against a non-loopback server: ${new URL(u).host}`);
  }
  const o = { alerts: Number(values.alerts), groups: Number(values.groups), canaryAfterS: Number(values['canary-after']), minutes: Number(values.minutes), redisUrl, databaseUrl };
  console.log(`# remediator notify storm  ${new Date().toISOString()}  node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# ${o.alerts} breaker alerts of one rule in ${o.groups} groups x 3 deliveries, one Slack channel; canaries after ${o.canaryAfterS} s; watched ${o.minutes} min`);
  console.log('# fakes: Slack 1 msg/s per channel (burst 5, 429 + Retry-After beyond), PagerDuty 120 events/min per routing key\n');
  const r = await runNotifyStorm(o);
  const f = (n: number | undefined, d = 1) => (n === undefined ? 'never' : n.toFixed(d));
  console.log('| runs (ended) | canary root, same channel s | canary root, other channel s | canary page s | storm channel posts + edits | runs with a thread / counted in summaries | Slack 429s / calls | PagerDuty events (max per group) | PagerDuty 429s |');
  console.log('|---|---:|---:|---:|---:|---|---:|---|---:|');
  console.log(`| ${r.runs} (${r.runsEnded}) | ${f(r.canarySameChannelS)} | ${f(r.canaryOtherChannelS)} | ${f(r.canaryPagedS)} | ${r.stormChannelPosts} + ${r.stormChannelEdits} = ${r.stormChannelPosts + r.stormChannelEdits} | ${r.threads} / ${r.summarized} | ${r.slack429} / ${r.slackCalls} (${((100 * r.slack429) / Math.max(1, r.slackCalls)).toFixed(2)}%) | ${r.pagerDutyEvents} (${r.maxEventsPerGroup}) | ${r.pagerDuty429} |`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
