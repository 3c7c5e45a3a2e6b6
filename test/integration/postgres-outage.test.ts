import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { FakeBreaker } from '../fakes/breaker.js';
import { FakeSlack } from '../fakes/slack.js';
import { PrivatePostgres } from '../helpers/postgres.js';
import { freePort, startRemediator, type Child } from '../helpers/process.js';
import { dropPrefix, eventually, REDIS_URL } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/**
 * PostgreSQL goes away under a running remediator (a real process, so a crash is an exit we can
 * see): one backend terminated, then the server stopped with every connection dropped. The
 * process must live through it, keep accepting webhooks (they need Redis only), and once
 * PostgreSQL is back every alert is in the audit and every fix ran exactly once.
 */
const N = 6;
let db: PrivatePostgres;
let rulesDir: string;
let remediator: Child & { url: string };
let slack: FakeSlack;
const breakers: FakeBreaker[] = [];
let pool: pg.Pool;
const prefix = `pgout-${process.pid}`;

before(async () => {
  db = new PrivatePostgres(await freePort()).init();
  db.start();
  slack = await new FakeSlack().start();
  for (let i = 0; i < N; i++) breakers.push(await new FakeBreaker().start());
  rulesDir = await mkdtemp(join(tmpdir(), 'remediator-rules-'));
  await writeFile(join(rulesDir, 'r.yml'), `
targets:${breakers.map((b, i) => b.targetYaml(`svc${i}`)).join('')}
rules:
  - name: reset
    match: ['alertname="Open"']
    action: breaker-reset
    target: "{{ labels.service }}"
    params: { poll_interval: 20ms, verify_timeout: 10s }
    backoff: 100ms
    notify: { slack: { channel: '#ops' } }
`);
  remediator = await startRemediator({
    PORT: '0', HOST: '127.0.0.1', RULES_DIR: rulesDir, REDIS_URL, DATABASE_URL: db.url, DATABASE_SCHEMA: 'remediator', QUEUE_PREFIX: prefix,
    WEBHOOK_TOKEN: 'test-webhook-token', BREAKER_TOKEN: breakers[0]!.token, SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_DIGEST_AFTER: '0', LOG_LEVEL: 'info',
  });
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => {});
});

after(async () => {
  await remediator?.stop('SIGKILL');
  await pool?.end().catch(() => {});
  db?.destroy();
  await slack?.stop();
  for (const b of breakers) await b.stop();
  await dropPrefix(REDIS_URL, prefix);
  await rm(rulesDir, { recursive: true, force: true });
});

const fire = async (i: number) => {
  breakers[i]!.state = 'open';
  const res = await postWebhook(remediator.url, firingWebhook('Open', `0be${String(i).padStart(13, '0')}`, { labels: { service: `svc${i}` } }));
  assert.equal(res.status, 200, `alert ${i} accepted`);
};
const alive = () => remediator.proc.exitCode === null && remediator.proc.signalCode === null;
const runs = async () => (await pool.query(`SELECT job_id, target, state FROM remediator.runs ORDER BY target`)).rows;

test('PostgreSQL terminated and stopped under load costs delay, never the process, an alert or a doubled fix', async () => {
  await fire(0);
  await eventually(async () => (await runs()).some((r) => r.target === 'svc0' && r.state === 'succeeded'), 'first run succeeded');

  // 1. Every backend of remediator terminated at once (pooled idle ones and any checked out).
  await fire(1);
  await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'postgres' AND pid <> pg_backend_pid() AND backend_type = 'client backend'`);
  await fire(2);

  // 2. The server stops (connections dropped) while alerts keep coming, and stays down a while.
  await pool.end();
  db.stop('immediate');
  await fire(3);
  await fire(4);
  await sleep(3000); // the outage itself: the process must ride it out
  assert.ok(alive(), `remediator still running during the outage:\n${remediator.output().slice(-2000)}`);
  await fire(5);
  db.start();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });

  const done = await eventually(async () => {
    const r = await runs();
    return r.length === N && r.every((x) => x.state === 'succeeded') && r;
  }, 'every run succeeded after PostgreSQL came back', 60_000, 200);
  assert.ok(alive(), 'remediator never exited');
  assert.deepEqual(done.map((r) => r.target), breakers.map((_, i) => `svc${i}`));
  assert.deepEqual(breakers.map((b) => b.resets), breakers.map(() => 1), 'each breaker reset exactly once');
  const alerts = (await pool.query(`SELECT count(*)::int AS n FROM remediator.alerts`)).rows[0].n;
  assert.equal(alerts, N, 'every accepted alert is in the audit, once');
  const queued = (await pool.query(`SELECT job_id, count(*)::int AS n FROM remediator.run_events WHERE state = 'queued' GROUP BY job_id`)).rows;
  assert.equal(queued.length, N);
  assert.ok(queued.every((q) => q.n === 1), 'one queued event per run');
  // Slack caught up too: one root message per run.
  await eventually(async () => slack.calls.filter((c) => c.method === 'chat.postMessage' && !c.args.thread_ts && !c.error).length === N, 'one Slack thread per run', 60_000, 200);
  assert.doesNotMatch(remediator.output(), /Unhandled 'error' event|uncaughtException|unhandledRejection/);
});
