import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { DATABASE_URL } from '../helpers/pg.js';
import { commands } from '../../src/cli/commands.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/remediator.js');

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('rules check passes on the shipped rules; on bad ones prints every problem as file:line:col, sorted, on stderr (exit 2)', async () => {
  const ok = await cli(['rules', 'check']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: \d+ rules and \d+ targets in \d+ files/);
  const bad = await cli(['rules', 'check', '--dir', 'test/fixtures/rules-invalid']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  const lines = bad.stderr.trimEnd().split('\n');
  assert.match(bad.stderr, /^test\/fixtures\/rules-invalid\/unknown-action\.yml:5:13: rule "restart-all": action: unknown action "restart-everything"/m);
  // Both problems of one rule, not only the first.
  assert.match(bad.stderr, /^test\/fixtures\/rules-invalid\/every-problem-of-a-rule\.yml:7:13: rule "c": action: unknown action/m);
  assert.match(bad.stderr, /^test\/fixtures\/rules-invalid\/every-problem-of-a-rule\.yml:8:15: rule "c": cooldown: bad duration "ten minutes"/m);
  // An alias bomb is a problem of its file like any other (exit 2), not a crash.
  assert.match(bad.stderr, /^test\/fixtures\/rules-invalid\/alias-bomb\.yml:4:8: YAML: refused: aliases expand too far/m);
  assert.match(bad.stderr, /^test\/fixtures\/rules-invalid\/yaml-syntax\.yml:5:5: YAML: /m);
  const located = lines.slice(0, -1);
  assert.ok(located.every((l) => /^test\/fixtures\/rules-invalid\/[\w-]+\.yml:\d+:\d+: /.test(l)), bad.stderr);
  const key = (l: string) => { const [f, line, col] = l.split(':'); return [f!, Number(line), Number(col)] as const; };
  const sorted = [...located].sort((a, b) => { const [fa, la, ca] = key(a); const [fb, lb, cb] = key(b); return fa < fb ? -1 : fa > fb ? 1 : la - lb || ca - cb; });
  assert.deepEqual(located, sorted);
  assert.match(lines.at(-1)!, /^\d+ problems in the rules$/);
});

test('rules test explains matches, the job each would enqueue, and every non-match', async () => {
  const r = await cli(['rules', 'test', 'test/fixtures/alertmanager/06-prometheus-firing.json', '--dir', 'test/fixtures/rules-test']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /alert LabAlwaysFiring [0-9a-f]+ \(firing\)/);
  assert.match(r.stdout, /MATCH always-notify: would enqueue notify params=\{"instructions":"checkout in shop"\}/);
  assert.match(r.stdout, /near miss only-prod: env="prod" failed: label env is missing/);
  const json = await cli(['rules', 'test', 'test/fixtures/alertmanager/06-prometheus-firing.json', '--dir', 'test/fixtures/rules-test', '--json']);
  const report = JSON.parse(json.stdout);
  assert.equal(report[0].decisions[0].kind, 'enqueue');
  assert.deepEqual(report[0].decisions[0].job.params, { instructions: 'checkout in shop' });
  const missing = await cli(['rules', 'test']);
  assert.equal(missing.code, 2);
});

test('rules test shows the matches and the near misses (one matcher failed); --all every rule that does not match', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'remediator-near-'));
  const rule = (name: string, match: string[]) => [`  - name: ${name}`, `    match: [${match.map((m) => `'${m}'`).join(', ')}]`, '    action: notify'];
  try {
    await writeFile(join(dir, 'r.yml'), ['rules:',
      ...rule('hit', ['alertname="Disk"', 'severity="page"']),
      ...rule('typo', ['alertname="Disk"', 'severity="pgae"']),
      ...rule('other-alert', ['alertname="Cpu"', 'severity="warn"']),
      ...rule('only-name', ['alertname="Memory"']),
      ...Array.from({ length: 20 }, (_, i) => rule(`unrelated-${i}`, [`alertname="Other${i}"`, 'team="x"'])).flat(),
      ''].join('\n'));
    const r = await cli(['rules', 'test', '--alert', 'alertname="Disk",severity="page"', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.slice(1), [
      '  MATCH hit: would enqueue notify params={}',
      '  near miss typo: severity="pgae" failed: severity is "page"',
      '  (22 other rules do not match: --all lists them)',
      '(a test only: nothing was enqueued, run or called)',
    ]);
    const all = await cli(['rules', 'test', '--alert', 'alertname="Disk",severity="page"', '--dir', dir, '--all']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^ {2}near miss typo: /m);
    assert.match(all.stdout, /^ {2}no match other-alert: alertname="Cpu" failed: alertname is "Disk"$/m);
    assert.match(all.stdout, /^ {2}no match only-name: alertname="Memory" failed: alertname is "Disk"$/m);
    assert.equal(all.stdout.match(/^ {2}no match unrelated-/gm)?.length, 20);
    assert.doesNotMatch(all.stdout, /other rules? do(es)? not match/);
    const json = JSON.parse((await cli(['rules', 'test', '--alert', 'alertname="Disk",severity="page"', '--dir', dir, '--json'])).stdout);
    assert.equal(json[0].verdicts.length, 24, '--json has every rule');
    assert.deepEqual(json[0].verdicts.filter((v: { nearMiss: boolean }) => v.nearMiss).map((v: { rule: string }) => v.rule), ['typo']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('remediations list shows every remediation with params and permissions', async () => {
  const r = await cli(['remediations', 'list']);
  assert.equal(r.code, 0);
  for (const name of ['notify', 'breaker-reset', 'idle-connection-kill', 'worker-restart', 'number-rotation']) {
    assert.match(r.stdout, new RegExp(`^${name}  \\(`, 'm'), `${name} listed`);
  }
  assert.match(r.stdout, /pg_signal_backend/);
  assert.match(r.stdout, /^ {4}verify_timeout +duration +default 60s$/m);
});

test('migrate creates the schema once; a bad environment names the variable', async () => {
  const schema = `cli_${Date.now().toString(36)}`;
  const env = { DATABASE_URL, DATABASE_SCHEMA: schema };
  const first = await cli(['migrate'], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /applied 001-audit/);
  const second = await cli(['migrate'], env);
  assert.match(second.stdout, /is up to date/);
  const pool = new pg.Pool({ connectionString: DATABASE_URL });
  try {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".schema_migrations`);
    assert.ok(rows[0].n >= 3);
  } finally {
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    await pool.end();
  }
  const bad = await cli(['migrate'], { DATABASE_SCHEMA: 'Bad-Name' });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /DATABASE_SCHEMA: must be a lower-case SQL identifier/);
});

test('npm start entry point: starts with one line, then SIGTERM shuts down cleanly (exit 0)', async () => {
  const { startRemediator } = await import('../helpers/process.js');
  const { dropPrefix, REDIS_URL } = await import('../helpers/service.js');
  const schema = `start_${Date.now().toString(36)}`;
  const prefix = `start-${Date.now().toString(36)}`;
  const child = await startRemediator({
    PORT: '0', HOST: '127.0.0.1', DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix, RULES_DIR: 'rules',
    WEBHOOK_TOKEN: 'x', SHUTDOWN_GRACE: '2000',
  });
  try {
    assert.match(child.output(), /"msg":"remediator started".*"rules":\d+/);
    const health = await fetch(`${child.url}/healthz`);
    assert.equal(health.status, 200);
    // No ADMIN_TOKEN: one line says what is off, before "remediator started".
    const lines = child.output().split('\n');
    const off = lines.findIndex((l) => /"level":"info".*"msg":"status page \(\/ui\) and admin API \(\/api\) are off: neither ADMIN_TOKEN nor VIEWER_TOKEN is set"/.test(l));
    assert.ok(off >= 0 && off < lines.findIndex((l) => /"msg":"remediator started"/.test(l)), child.output());
    assert.equal((await fetch(`${child.url}/ui`)).status, 403);
    assert.equal((await fetch(`${child.url}/api/runs`)).status, 403);
  } finally {
    const code = await child.stop('SIGTERM');
    assert.equal(code, 0, child.output());
    assert.match(child.output(), /"msg":"shutting down"/);
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, prefix);
  }
});

test('with ADMIN_TOKEN set, and in a worker-only process, nothing is said about the admin API; with VIEWER_TOKEN only, that it is read-only', async () => {
  const { startRemediator } = await import('../helpers/process.js');
  const { dropPrefix, REDIS_URL } = await import('../helpers/service.js');
  const id = Date.now().toString(36);
  const base = { PORT: '0', HOST: '127.0.0.1', DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: `admin_${id}`, QUEUE_PREFIX: `admin-${id}`, RULES_DIR: 'rules', WEBHOOK_TOKEN: 'x', SHUTDOWN_GRACE: '2000' };
  try {
    for (const env of [{ ...base, ADMIN_TOKEN: 'a'.repeat(32) }, { ...base, REMEDIATOR_ROLE: 'worker' }]) {
      const child = await startRemediator(env);
      await child.stop('SIGTERM');
      assert.match(child.output(), /"msg":"remediator started"/);
      assert.doesNotMatch(child.output(), /admin API/);
    }
    // A viewer token only: read-only, and said so.
    const viewer = await startRemediator({ ...base, VIEWER_TOKEN: 'v'.repeat(32) });
    await viewer.stop('SIGTERM');
    assert.match(viewer.output(), /"msg":"status page \(\/ui\) and admin API \(\/api\) are read-only: ADMIN_TOKEN is not set \(pause, resume, lift and approve need it\)"/);
  } finally {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    await pool.query(`DROP SCHEMA IF EXISTS "admin_${id}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, `admin-${id}`);
  }
});

test('a bad rules directory stops the start with the file and rule named (exit 2)', async () => {
  const r = await cli(['start'], { RULES_DIR: 'test/fixtures/rules-invalid', PORT: '0' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot start: invalid rules \(\d+ problems\):/);
  assert.match(r.stderr, /unknown-action\.yml:5:13: rule "restart-all": action: unknown action/);
});

test('numbers through the CLI binary: add, list, bad input exits 2', async () => {
  const schema = `clinum_${Date.now().toString(36)}`;
  const env = { DATABASE_URL, DATABASE_SCHEMA: schema };
  try {
    const add = await cli(['numbers', 'add', 'advisor-senders', '1065403522', '+919800000001', '--state', 'active'], env);
    assert.equal(add.code, 0, add.stderr);
    const list = await cli(['numbers', 'list'], env);
    assert.match(list.stdout, /advisor-senders\s+1065403522\s+\+919800000001\s+active/);
    const bad = await cli(['numbers', 'add', 'advisor-senders', 'x', '123'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr + bad.stdout, /E\.164/);
  } finally {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  }
});

test('a change to the rules files and SIGHUP reload the table; a bad reload keeps the old one', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { startRemediator } = await import('../helpers/process.js');
  const { dropPrefix, REDIS_URL, eventually } = await import('../helpers/service.js');
  const dir = await mkdtemp(join(tmpdir(), 'remediator-reload-'));
  await writeFile(join(dir, 'a.yml'), "rules:\n  - name: a\n    match: ['alertname=\"A\"']\n    action: notify\n");
  const id = Date.now().toString(36);
  const child = await startRemediator({
    PORT: '0', HOST: '127.0.0.1', DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: `reload_${id}`, QUEUE_PREFIX: `reload-${id}`, RULES_DIR: dir,
    WEBHOOK_TOKEN: 'x', REMEDIATOR_ROLE: 'receiver',
  });
  const count = (re: RegExp) => child.output().split('\n').filter((l) => re.test(l)).length;
  try {
    await writeFile(join(dir, 'b.yml'), "rules:\n  - name: b\n    match: ['alertname=\"B\"']\n    action: notify\n");
    await eventually(async () => count(/"msg":"rules reloaded".*"reason":"rules directory changed".*"rules":2/) >= 1, `file-change reload\n${child.output()}`);
    await writeFile(join(dir, 'c.yml'), "rules:\n  - name: c\n    match: ['alertname=\"C\"']\n    action: nope\n");
    await eventually(async () => count(/"msg":"rules reload refused, keeping the previous rules".*c\.yml:4:13: rule \\"c\\": action: unknown action/) >= 1, `refused reload\n${child.output()}`);
    await rm(join(dir, 'c.yml'));
    await eventually(async () => count(/"msg":"rules reloaded".*"rules":2/) >= 2, 'reload after the bad file is gone');
    child.proc.kill('SIGHUP');
    await eventually(async () => count(/"msg":"rules reloaded".*"reason":"SIGHUP".*"rules":2/) >= 1, `SIGHUP reload\n${child.output()}`);
  } finally {
    await child.stop();
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    await pool.query(`DROP SCHEMA IF EXISTS "reload_${id}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, `reload-${id}`);
    await rm(dir, { recursive: true, force: true });
  }
});

test('--help works on every command and subcommand, before anything connects; no command or a bad option exits 2', async () => {
  // Every command, as the overview lists them; the overview is built from the one table runCli
  // dispatches through, and must list exactly that table.
  const help = await cli(['--help']);
  assert.equal(help.code, 0, help.stderr);
  const listed = [...help.stdout.matchAll(/^ {2}([a-z]+(?: [a-z]+)?)(?= |$)/gm)].map((m) => m[1]!);
  assert.deepEqual([...listed].sort(), Object.keys(commands).sort(), 'the overview lists every command');
  for (const group of ['rules', 'numbers', 'remediations']) assert.ok(listed.some((n) => n.startsWith(`${group} `)), group);
  // Help must not need the dependencies: both point at a closed port.
  const { freePort } = await import('../helpers/process.js');
  const down = await freePort();
  const env = { DATABASE_URL: `postgres://postgres@127.0.0.1:${down}/postgres`, REDIS_URL: `redis://127.0.0.1:${down}`, RULES_DIR: 'test/fixtures/rules-invalid' };
  // Every command three ways, three processes at a time (help loads nothing but the command table).
  const cases = listed.flatMap((name) => [[...name.split(' '), '--help'], [...name.split(' '), '-h'], ['help', ...name.split(' ')]].map((args) => ({ name, args })));
  for (let i = 0; i < cases.length; i += 3) {
    await Promise.all(cases.slice(i, i + 3).map(async ({ name, args }) => {
      const r = await cli(args, env);
      const what = args.join(' ');
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`usage: remediator ${name} `) || r.stdout.startsWith(`usage: remediator ${name}\n`), `${what}:\n${r.stdout}`);
      assert.equal(r.stderr, '', what);
    }));
  }
  // A help flag among other arguments still only prints the usage.
  const mid = await cli(['pause', 'all', '--reason', 'x', '--help'], env);
  assert.equal(mid.code, 0, mid.stderr);
  assert.match(mid.stdout, /^usage: remediator pause /);
  for (const args of [['-h'], ['help'], ['rules', '--help'], ['numbers', '--help']]) {
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: remediator/, args.join(' '));
    assert.equal(r.stderr, '', args.join(' '));
  }
  const group = await cli(['numbers', '--help']);
  for (const sub of ['add', 'list', 'disable', 'enable']) assert.match(group.stdout, new RegExp(`^usage: remediator numbers ${sub} `, 'm'));
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /^usage: remediator <command>/);
  const bad = await cli(['rules', 'check', '--bogus']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^remediator rules check: Unknown option '--bogus'/);
  const badReplay = await cli(['rules', 'replay', '--sinc', '1h']);
  assert.equal(badReplay.code, 2);
  assert.match(badReplay.stderr, /^remediator rules replay: Unknown option/);
  const unknown = await cli(['rules', 'frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^unknown command "rules frobnicate"/);
  const nums = await cli(['numbers', 'frobnicate']);
  assert.equal(nums.code, 2);
  assert.equal(nums.stdout, '', 'errors go to stderr');
  assert.match(nums.stderr, /^unknown command "numbers frobnicate"\nusage: remediator numbers add /);
});

test('npm start -- --help prints the same usage as remediator start --help, and starts nothing', async () => {
  const viaCli = await cli(['start', '--help']);
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', '--help'], { cwd: root });
  assert.match(viaCli.stdout, /^usage: remediator start \[--role all\|receiver\|worker\]/);
  assert.equal(stdout, viaCli.stdout);
});

test('remediations list | head: the closed pipe ends the command quietly (exit 0, no EPIPE stack)', async () => {
  const child = spawn(process.execPath, [bin, 'remediations', 'list'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  // The reader goes away before the first line, as `head` does after its tenth.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

test('remediations list shows, per remediation, params with defaults, target fields, permissions and an example rules file', async () => {
  const r = await cli(['remediations', 'list', 'breaker-reset']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^breaker-reset {2}\(target kind: http-breaker\)$/m);
  assert.match(r.stdout, /^ {2}params:\n {4}verify_timeout +duration +default 60s\n {4}poll_interval +duration +default 2s$/m);
  assert.match(r.stdout, /^ {2}target fields \(kind: http-breaker\):$/m);
  assert.match(r.stdout, /^ {4}status\.url +string +required$/m);
  assert.match(r.stdout, /^ {4}status\.token_env +env var name +optional$/m);
  assert.match(r.stdout, /^ {4}request_timeout +duration +default 10s$/m);
  assert.match(r.stdout, /^ {2}permissions:\n {4}- HTTP: read the breaker status endpoint$/m);
  assert.match(r.stdout, /^ {2}example \(a complete rules file\):\n {4}targets:\n {6}image-gen:\n {8}kind: http-breaker$/m);
  assert.doesNotMatch(r.stdout, /^notify /m, 'only the one asked for');
  const unknown = await cli(['remediations', 'list', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown remediation "nope" \(known: breaker-reset, /);
});

test('rules test --alert builds the webhook from a label set; a bad label set exits 2', async () => {
  const labels = 'alertname="LabAlwaysFiring",severity="critical",deployment="checkout",namespace="shop"';
  const r = await cli(['rules', 'test', '--alert', labels, '--dir', 'test/fixtures/rules-test']);
  assert.equal(r.code, 0, r.stderr);
  // The fingerprint Alertmanager would give this label set.
  assert.match(r.stdout, /^alert LabAlwaysFiring [0-9a-f]{16} \(firing\) \{alertname="LabAlwaysFiring",severity="critical",deployment="checkout",namespace="shop"\}$/m);
  assert.match(r.stdout, /MATCH always-notify: would enqueue notify params=\{"instructions":"checkout in shop"\}/);
  assert.match(r.stdout, /near miss only-prod: env="prod" failed: label env is missing/);
  const json = JSON.parse((await cli(['rules', 'test', '--alert', `{${labels}}`, '--alert', 'alertname="Other"', '--resolved', '--dir', 'test/fixtures/rules-test', '--json'])).stdout);
  assert.equal(json.length, 2);
  assert.equal(json[0].alert.status, 'resolved');
  assert.equal(json[0].decisions[0].kind, 'not_applicable');
  assert.equal(json[1].decisions[0].kind, 'no_match');
  const bad = await cli(['rules', 'test', '--alert', 'alertname=~"X"']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^--alert: bad label "alertname=~\\"X\\"": an alert's labels are name="value" \(no =~\)/);
  const both = await cli(['rules', 'test', 'demo/webhook.json', '--alert', 'alertname="X"']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /needs either a payload file or --alert LABELS \(not both\)/);
});

test('rules test with the sample payload the README documents', async () => {
  const r = await cli(['rules', 'test', 'demo/webhook.json', '--dir', 'demo/rules']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^alert CircuitBreakerOpen 30bf752934833b33 \(firing\)/m);
  assert.match(r.stdout, /MATCH demo-breaker-open: would enqueue breaker-reset on demo-breaker params=\{"verify_timeout":"10s","poll_interval":"200ms"\}/);
});

test('rules check --env: every secret the rules name must be set in this environment', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'remediator-env-'));
  const variable = `REMEDIATOR_CLI_TEST_TOKEN_${process.pid}`;
  try {
    await writeFile(join(dir, 'r.yml'), [
      'targets:',
      '  b:',
      '    kind: http-breaker',
      `    status: { url: 'http://127.0.0.1:1/s', token_env: ${variable} }`,
      "    reset: { url: 'http://127.0.0.1:1/r' }",
      'rules:',
      '  - name: r',
      "    match: ['alertname=\"X\"']",
      '    action: notify',
      `    notify: { pagerduty: { routing_key_env: ${variable}_PD } }`,
      '',
    ].join('\n'));
    const plain = await cli(['rules', 'check', '--dir', dir]);
    assert.equal(plain.code, 0, 'without --env only the rules are checked');
    const env = { [variable]: '', [`${variable}_PD`]: '' };
    const missing = await cli(['rules', 'check', '--dir', dir, '--env'], env);
    assert.equal(missing.code, 2);
    const lines = missing.stderr.trimEnd().split('\n');
    assert.equal(lines[0], `${dir}/r.yml:4:55: target "b": status.token_env: environment variable ${variable} is not set: runs that need it fail with reason missing_secret`);
    assert.equal(lines[1], `${dir}/r.yml:10:45: rule "r": notify.pagerduty.routing_key_env: environment variable ${variable}_PD is not set: PagerDuty events of this rule are not sent`);
    assert.match(lines[2]!, /^rules check: the rules are valid, but 2 secret variables they name are not set here/);
    const set = await cli(['rules', 'check', '--dir', dir, '--env'], { [variable]: 'x', [`${variable}_PD`]: 'y' });
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^ok: 1 rules and 1 targets in 1 files .*; all 2 secret variables they name are set$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('testing never acts: rules check --env and every form of rules test call no target and need no database or Redis', async () => {
  const { createServer } = await import('node:http');
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { freePort } = await import('../helpers/process.js');
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end('{"state":"open"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const dir = await mkdtemp(join(tmpdir(), 'remediator-noact-'));
  try {
    await writeFile(join(dir, 'r.yml'), [
      'targets:',
      '  b:',
      '    kind: http-breaker',
      `    status: { url: '${base}/status', token_env: NOACT_TOKEN }`,
      `    reset: { method: POST, url: '${base}/reset', token_env: NOACT_TOKEN }`,
      'rules:',
      '  - name: reset',
      "    match: ['alertname=\"CircuitBreakerOpen\"']",
      '    action: breaker-reset',
      '    target: b',
      '',
    ].join('\n'));
    const down = await freePort();
    const env = { NOACT_TOKEN: 't', DATABASE_URL: `postgres://postgres@127.0.0.1:${down}/postgres`, REDIS_URL: `redis://127.0.0.1:${down}` };
    const runs = [
      await cli(['rules', 'test', '--alert', 'alertname="CircuitBreakerOpen"', '--dir', dir], env),
      await cli(['rules', 'test', '--alert', 'alertname="CircuitBreakerOpen"', '--dir', dir, '--json'], env),
      await cli(['rules', 'test', 'demo/webhook.json', '--dir', dir], env),
      await cli(['rules', 'check', '--dir', dir, '--env'], env),
    ];
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.match(runs[0]!.stdout, /MATCH reset: would enqueue breaker-reset on b/);
    assert.match(runs[0]!.stdout, /^\(a test only: nothing was enqueued, run or called\)$/m);
    assert.equal(requests, 0, 'the target was never called');
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('migrate with PostgreSQL down names it, DATABASE_URL and the fix (exit 1)', async () => {
  const { freePort } = await import('../helpers/process.js');
  const port = await freePort();
  const r = await cli(['migrate'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres` });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error: PostgreSQL at postgres://postgres@127\\.0\\.0\\.1:${port}/postgres \\(DATABASE_URL\\) is not reachable: connect ECONNREFUSED`, 'm'));
  assert.match(r.stderr, /^ {2}fix: start PostgreSQL, or set DATABASE_URL to where it runs$/m);
});

test('pause, resume and status with Redis down name it, REDIS_URL and the fix (exit 1), without a stack', async () => {
  const { freePort } = await import('../helpers/process.js');
  const port = await freePort();
  for (const args of [['status'], ['pause', 'all', '--reason', 'x'], ['resume', 'all']]) {
    const r = await cli(args, { REDIS_URL: `redis://127.0.0.1:${port}` });
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stderr, `error: Redis at redis://127.0.0.1:${port} (REDIS_URL) is not reachable: connect ECONNREFUSED 127.0.0.1:${port}\n  fix: start Redis, or set REDIS_URL to where it runs\n`, args.join(' '));
  }
});
