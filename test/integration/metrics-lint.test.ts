import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from '../../src/cli.js';
import { FakeSlack } from '../fakes/slack.js';
import { DATABASE_URL } from '../helpers/pg.js';
import { startRemediator } from '../helpers/process.js';
import { dropPrefix, eventually, REDIS_URL } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

function hasPromtool(): boolean {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `promtool check metrics` on a scrape: its exit code and what it said (nothing when the scrape is clean). */
async function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdin.end(text);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

const RULES = `
rules:
  - name: lint-notify
    match: ['alertname="LintNotify"']
    action: notify
    notify: { slack: { channel: '#ops' } }
  - name: lint-paused
    match: ['alertname="LintPaused"']
    action: notify
`;

// .ci/run installs promtool: there a missing one fails instead of skipping.
const missing = hasPromtool() ? undefined : 'promtool not installed (Debian: apt-get install prometheus)';

test('the /metrics of a running service passes promtool check metrics, with every family of ours holding samples', { skip: missing && process.env.CI !== 'true' ? missing : false }, async () => {
  assert.ok(!missing, missing);
  const id = `${process.pid}_${Date.now().toString(36)}`;
  const schema = `lint_${id}`;
  const prefix = `lint-${id}`;
  const dir = await mkdtemp(join(tmpdir(), 'remediator-lint-'));
  await writeFile(join(dir, 'rules.yml'), RULES);
  const slack = await new FakeSlack().start();
  // One failed Slack delivery (retried), so the failure counter has a sample too.
  slack.fail({ count: 1, kind: 'http500' });
  const env = { DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix };
  const child = await startRemediator({
    ...env, PORT: '0', HOST: '127.0.0.1', RULES_DIR: dir, WEBHOOK_TOKEN: 'test-webhook-token', SHUTDOWN_GRACE: '2000',
    SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url,
  });
  try {
    // A safety skip (a pause), so remediator_safety_skips_total has a sample and is linted.
    const quiet = { out: () => {}, err: () => {}, env };
    assert.equal(await runCli(['pause', 'rule:lint-paused', '--reason', 'lint test'], quiet), 0);
    assert.equal((await postWebhook(child.url, firingWebhook('LintNotify', 'f1a1000000000001'))).status, 200);
    assert.equal((await postWebhook(child.url, firingWebhook('LintPaused', 'f1a1000000000002'))).status, 200);
    assert.equal((await fetch(`${child.url}/webhooks/alertmanager`, { method: 'POST' })).status, 401);
    child.proc.kill('SIGHUP'); // a rules reload, counted
    const text = await eventually(async () => {
      const t = await (await fetch(`${child.url}/metrics`)).text();
      const ready = /^remediator_safety_skips_total\{reason="paused"\} 1$/m.test(t) &&
        /^remediator_notifications_sent_total\{notifier="slack"\} [1-9]/m.test(t) &&
        /^remediator_runs_total\{.*outcome="notified"\} 1$/m.test(t) &&
        /^remediator_rules_reloads_total\{result="success"\} 1$/m.test(t);
      return ready ? t : undefined;
    }, `a run, a Slack delivery and a safety skip in /metrics\n${child.output()}`, 30_000);

    const lint = await promtoolCheck(text);
    assert.equal(lint.output, '', `promtool check metrics:\n${lint.output}`);
    assert.equal(lint.code, 0);
    // Every family of ours is in the scrape with at least one sample, so promtool saw it.
    const families = [...text.matchAll(/^# TYPE (remediator_\w+) \w+$/gm)].map((m) => m[1]!);
    assert.ok(families.length >= 20, families.join(', '));
    const empty = families.filter((f) => !new RegExp(`^${f}(_bucket|_sum|_count)?(\\{[^}]*\\})? `, 'm').test(text));
    assert.deepEqual(empty, [], 'families without a sample (promtool does not look at those)');
    assert.match(text, /^# TYPE remediator_safety_skips_total counter$/m);
    assert.doesNotMatch(text, /^nodejs_active_\w+_total/m);
  } finally {
    await child.stop();
    await slack.stop();
    await rm(dir, { recursive: true, force: true });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, prefix);
  }
});
