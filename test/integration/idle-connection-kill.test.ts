import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { compileRules } from '../../src/rules/load.js';
import { PermanentError, TransientError } from '../../src/core/errors.js';
import { idleConnectionKill } from '../../src/remediations/idle-connection-kill.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { makeContext } from '../helpers/context.js';
import { DATABASE_URL } from '../helpers/pg.js';

// Every backend this file opens has an application_name starting with PREFIX, and every run of the
// remediation is scoped with `applications: [...]` to names under it: nothing else on the server is touched.
const PREFIX = `idlekill-test-${randomBytes(4).toString('hex')}`;
const ENV = 'IDLEKILL_TEST_DATABASE_URL';
let seq = 0;
const appName = (label: string) => `${PREFIX}-${label}-${++seq}`;

const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const clients: pg.Client[] = [];
const roles: string[] = [];

function urlAs(user: string, password?: string, database = 'postgres', port = 5432): string {
  const u = new URL(DATABASE_URL);
  u.username = user;
  u.password = password ?? '';
  u.port = String(port);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Opens a connection named `app` and returns its pid; `as` connects as another role. */
async function open(app: string, as?: string): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: as ? urlAs(as) : DATABASE_URL, application_name: app });
  client.on('error', () => {}); // the remediation terminates these on purpose
  clients.push(client);
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return { client, pid: rows[0]!.pid };
}

async function openIdle(app: string, n: number, as?: string): Promise<number[]> {
  const pids: number[] = [];
  for (let i = 0; i < n; i++) pids.push((await open(app, as)).pid); // sequential: oldest first
  return pids;
}

async function openIdleInTransaction(app: string, aborted = false): Promise<number> {
  const { client, pid } = await open(app);
  await client.query('BEGIN');
  if (aborted) await client.query('SELECT 1/0').catch(() => {});
  else await client.query('SELECT 1');
  return pid;
}

async function openActive(app: string): Promise<number> {
  const { client, pid } = await open(app);
  client.query('SELECT pg_sleep(60)').catch(() => {}); // not awaited: stays active; cancelled in after()
  await waitFor(pid, ['active'], 0);
  return pid;
}

/** Polls pg_stat_activity until every pid is in one of `states` and has been for more than `seconds`. */
async function waitFor(pids: number | number[], states: string[], seconds: number): Promise<void> {
  const list = Array.isArray(pids) ? pids : [pids];
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE pid = ANY($1::int[]) AND state = ANY($2::text[]) AND state_change < now() - make_interval(secs => $3::float8)`,
      [list, states, seconds],
    );
    if (rows[0]!.n === list.length) return;
    if (Date.now() > deadline) throw new Error(`pids ${list.join(',')} not ${states.join('/')} for ${seconds}s within 10s`);
    await sleep(100);
  }
}

async function alive(pids: number[]): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid', [pids]);
  return rows.map((r) => r.pid);
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

function ctx(params: Record<string, unknown>, opts: { dryRun?: boolean; url?: string | null; target?: Record<string, unknown> } = {}) {
  const env: NodeJS.ProcessEnv = opts.url === null ? {} : { [ENV]: opts.url ?? DATABASE_URL };
  return makeContext(idleConnectionKill, {
    params: { min_idle: '1s', ...params },
    target: { url_env: ENV, connect_timeout: '3s', ...opts.target },
    targetName: 'test-db',
    dryRun: opts.dryRun,
    deps: { env },
  });
}

after(async () => {
  // Our own backends only (they all carry PREFIX), then the roles this file created.
  await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()`, [`${PREFIX}%`]);
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  for (const r of roles) await admin.query(`DROP ROLE IF EXISTS "${r}"`);
  await admin.end();
});

test('terminates exactly the matching idle backends, by pid, and leaves active, idle-in-transaction and other apps alone', async () => {
  const app = appName('main');
  const other = appName('other');
  const idle = await openIdle(app, 3);
  const active = await openActive(app);
  const inTx = await openIdleInTransaction(app);
  const otherIdle = await openIdle(other, 1);
  await waitFor([...idle, inTx, ...otherIdle], ['idle', 'idle in transaction'], 1);

  const c = ctx({ applications: [app] });
  const res = await idleConnectionKill.run(c);

  assert.equal(res.outcome, 'succeeded', res.summary);
  const d = res.details as Record<string, any>;
  assert.deepEqual(sorted(d.pids), sorted(idle));
  assert.equal(d.matching_before, 3);
  assert.equal(d.matching_after, 0);
  assert.equal(d.could_not_terminate, 0);
  assert.deepEqual(d.applications, [app]);
  assert.deepEqual(d.users, [new URL(DATABASE_URL).username]);
  assert.deepEqual(d.databases, ['postgres']);
  assert.deepEqual(await alive(idle), [], 'idle backends are gone');
  assert.deepEqual(await alive([active, inTx, ...otherIdle]), sorted([active, inTx, ...otherIdle]));
  assert.match(c.steps.map((s) => s.message).join('\n'), /Verified: the 3 backends are gone/);
});

test('honours max_terminate, oldest idle first', async () => {
  const app = appName('cap');
  const idle = await openIdle(app, 5); // opened one after the other: idle[0] is the oldest
  await waitFor(idle, ['idle'], 1);

  const res = await idleConnectionKill.run(ctx({ applications: [app], max_terminate: 2 }));

  assert.equal(res.outcome, 'succeeded', res.summary);
  const d = res.details as Record<string, any>;
  assert.deepEqual(d.pids, idle.slice(0, 2));
  assert.equal(d.matching_before, 5);
  assert.equal(d.matching_after, 3);
  assert.deepEqual(await alive(idle), sorted(idle.slice(2)));
});

test('exclude filters on application, user and database', async () => {
  const keep = appName('keep');
  const kill = appName('kill');
  const kept = await openIdle(keep, 2);
  const killed = await openIdle(kill, 2);
  await waitFor([...kept, ...killed], ['idle'], 1);
  const user = new URL(DATABASE_URL).username;

  const noUser = await idleConnectionKill.run(ctx({ applications: [keep, kill], exclude_users: [user] }));
  assert.equal(noUser.outcome, 'skipped', noUser.summary);
  const noDb = await idleConnectionKill.run(ctx({ applications: [keep, kill], exclude_databases: ['postgres'] }));
  assert.equal(noDb.outcome, 'skipped', noDb.summary);
  const otherDb = await idleConnectionKill.run(ctx({ applications: [keep, kill], databases: ['no_such_database'] }));
  assert.equal(otherDb.outcome, 'skipped', otherDb.summary);
  assert.deepEqual(await alive([...kept, ...killed]), sorted([...kept, ...killed]));

  const res = await idleConnectionKill.run(ctx({ applications: [keep, kill], exclude_applications: [keep], users: [user], databases: ['postgres'] }));
  assert.equal(res.outcome, 'succeeded', res.summary);
  assert.deepEqual(sorted((res.details as any).pids), sorted(killed));
  assert.deepEqual(await alive([...kept, ...killed]), sorted(kept));
});

test('idle in transaction (and aborted) only when asked for', async () => {
  const app = appName('tx');
  const [idle] = await openIdle(app, 1);
  const inTx = await openIdleInTransaction(app);
  const aborted = await openIdleInTransaction(app, true);
  await waitFor(idle!, ['idle'], 1);
  await waitFor(inTx, ['idle in transaction'], 1);
  await waitFor(aborted, ['idle in transaction (aborted)'], 1);

  const first = await idleConnectionKill.run(ctx({ applications: [app] }));
  assert.deepEqual((first.details as any).pids, [idle]);
  assert.deepEqual(await alive([inTx, aborted]), sorted([inTx, aborted]));

  const second = await idleConnectionKill.run(ctx({ applications: [app], states: ['idle in transaction'] }));
  assert.equal(second.outcome, 'succeeded', second.summary);
  assert.deepEqual((second.details as any).pids, [inTx]);
  assert.deepEqual(await alive([inTx, aborted]), [aborted]);

  const third = await idleConnectionKill.run(ctx({ applications: [app], states: ['idle', 'idle in transaction (aborted)'] }));
  assert.deepEqual((third.details as any).pids, [aborted]);
  assert.deepEqual(await alive([aborted]), []);
});

test('dry run lists exactly what it would terminate and terminates nothing', async () => {
  const app = appName('dry');
  const idle = await openIdle(app, 3);
  const active = await openActive(app);
  await waitFor(idle, ['idle'], 1);

  const res = await idleConnectionKill.run(ctx({ applications: [app], max_terminate: 2 }, { dryRun: true }));

  assert.equal(res.outcome, 'dry_run');
  assert.deepEqual((res.details as any).pids, idle.slice(0, 2));
  assert.equal((res.details as any).matching_before, 3);
  for (const pid of idle.slice(0, 2)) assert.match(res.summary, new RegExp(`pid ${pid} `));
  assert.doesNotMatch(res.summary, new RegExp(`pid ${idle[2]} `));
  assert.deepEqual(await alive([...idle, active]), sorted([...idle, active]));
});

test('nothing matching: skipped with a clear summary', async () => {
  const app = appName('fresh');
  const pids = await openIdle(app, 2); // idle, but not for 10 minutes (the default)
  const res = await idleConnectionKill.run(ctx({ applications: [app], min_idle: '10m' }));
  assert.equal(res.outcome, 'skipped');
  assert.match(res.summary, /No backends on test-db match \(idle >= 10m, states idle\): nothing to terminate/);
  assert.deepEqual(await alive(pids), sorted(pids));
});

test('never terminates its own connection nor other connections with its application_name', async () => {
  const app = appName('victim');
  const self = appName('self');
  const victims = await openIdle(app, 2);
  const sibling = await openIdle(self, 1); // e.g. another remediator run, same application_name
  await waitFor([...victims, ...sibling], ['idle'], 1);

  const res = await idleConnectionKill.run(ctx({ applications: [app, self] }, { target: { application_name: self } }));

  assert.equal(res.outcome, 'succeeded', res.summary); // a killed own backend would have failed the run
  assert.deepEqual(sorted((res.details as any).pids), sorted(victims));
  assert.deepEqual(await alive(sibling), sibling);
});

describe('roles without the privileges', () => {
  const tag = randomBytes(4).toString('hex');
  const killer = `idlekill_killer_${tag}`; // pg_read_all_stats, no pg_signal_backend
  const victim = `idlekill_victim_${tag}`;
  const blind = `idlekill_blind_${tag}`; // neither
  before(async () => {
    for (const r of [killer, victim, blind]) {
      await admin.query(`CREATE ROLE "${r}" LOGIN`);
      roles.push(r);
    }
    await admin.query(`GRANT pg_read_all_stats TO "${killer}"`);
  });

  test('another role\'s backends, all refused: permanent forbidden naming pg_signal_backend; own role\'s backends still terminated', async () => {
    const app = appName('perm');
    const victims = await openIdle(app, 2, victim);
    await waitFor(victims, ['idle'], 1);

    await assert.rejects(idleConnectionKill.run(ctx({ applications: [app] }, { url: urlAs(killer) })), (err: unknown) => {
      assert.ok(err instanceof PermanentError, String(err));
      assert.equal(err.reason, 'forbidden');
      assert.match(err.message, /pg_signal_backend/);
      assert.deepEqual(sorted(err.details.pids as number[]), sorted(victims));
      return true;
    });
    assert.deepEqual(await alive(victims), sorted(victims));

    // Partial: the killer's own role's backend can be terminated; the rest are reported, not fatal.
    const [own] = await openIdle(app, 1, killer);
    await waitFor(own!, ['idle'], 1);
    const c = ctx({ applications: [app] }, { url: urlAs(killer) });
    const res = await idleConnectionKill.run(c);
    assert.equal(res.outcome, 'succeeded', res.summary);
    assert.deepEqual((res.details as any).pids, [own]);
    assert.equal((res.details as any).could_not_terminate, 2);
    assert.match(res.summary, /2 could not be terminated \(permission: pg_signal_backend missing\)/);
    assert.ok(c.steps.some((s) => /Could not terminate 2 backends \(permission/.test(s.message)));
    assert.deepEqual(await alive([own!, ...victims]), sorted(victims));
  });

  test('without pg_read_all_stats the other roles\' rows are hidden: says so, terminates nothing', async () => {
    const app = appName('blind');
    const victims = await openIdle(app, 2, victim);
    await waitFor(victims, ['idle'], 1);

    const res = await idleConnectionKill.run(ctx({ applications: [app] }, { url: urlAs(blind) }));

    assert.equal(res.outcome, 'skipped');
    assert.match(res.summary, /2 backends of other roles are hidden .* lacks pg_read_all_stats/);
    assert.deepEqual(await alive(victims), sorted(victims));
  });
});

test('missing env var: permanent error naming the variable', async () => {
  await assert.rejects(idleConnectionKill.run(ctx({ applications: ['x'] }, { url: null })), (err: unknown) => {
    assert.ok(err instanceof PermanentError);
    assert.equal(err.reason, 'missing_secret');
    assert.match(err.message, new RegExp(`secret missing: environment variable ${ENV} is not set`));
    return true;
  });
  await assert.rejects(idleConnectionKill.run(ctx({ applications: ['x'] }, { url: 'mysql://u:hunter2@db/x' })), (err: unknown) => {
    assert.ok(err instanceof PermanentError);
    assert.doesNotMatch(err.message, /hunter2/);
    return true;
  });
});

test('unreachable database: transient error, no password in the message', async () => {
  const port = await closedPort();
  const secret = 'pw-s3cr3t-value';
  await assert.rejects(idleConnectionKill.run(ctx({ applications: ['x'] }, { url: urlAs('postgres', secret, 'postgres', port) })), (err: unknown) => {
    assert.ok(err instanceof TransientError, String(err));
    assert.equal(err.reason, 'unavailable');
    assert.match(err.message, /ECONNREFUSED/);
    assert.doesNotMatch(err.message + JSON.stringify(err.details), new RegExp(secret));
    return true;
  });
});

test('unknown database and unknown role: permanent errors', async () => {
  await assert.rejects(idleConnectionKill.run(ctx({ applications: ['x'] }, { url: urlAs('postgres', undefined, `nodb_${randomBytes(4).toString('hex')}`) })), (err: unknown) => {
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.reason, 'not_found');
    assert.match(err.message, /3D000/);
    return true;
  });
  await assert.rejects(idleConnectionKill.run(ctx({ applications: ['x'] }, { url: urlAs(`norole_${randomBytes(4).toString('hex')}`) })), (err: unknown) => {
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.reason, 'forbidden');
    return true;
  });
});

test('params schema: defaults and refusals', () => {
  const p = idleConnectionKill.paramsSchema.parse({});
  assert.equal(p.min_idle, 600_000);
  assert.deepEqual(p.states, ['idle']);
  assert.equal(p.max_terminate, 50);
  assert.equal(p.applications, undefined);
  for (const bad of [{ min_idle: '500ms' }, { states: ['active'] }, { states: [] }, { applications: [] }, { max_terminate: 0 }, { url: 'x' }]) {
    assert.equal(idleConnectionKill.paramsSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
  assert.equal(idleConnectionKill.targetSchema!.safeParse({ url_env: ENV, url: 'postgres://x' }).success, false);
});

test('exampleRules and rules/stario-database.yml load with the registry', async () => {
  const example = compileRules([{ file: 'example.yml', text: idleConnectionKill.exampleRules }], buildRegistry());
  assert.equal(example.rules[0]!.remediation.name, 'idle-connection-kill');
  const file = 'rules/stario-database.yml';
  const table = compileRules([{ file, text: await readFile(file, 'utf8') }], buildRegistry());
  assert.deepEqual(table.rules.map((r) => r.spec.action), ['idle-connection-kill']);
  const params = idleConnectionKill.paramsSchema.parse(table.rules[0]!.spec.params);
  assert.equal(params.min_idle, 600_000);
  assert.equal(params.max_terminate, 50);
  assert.deepEqual(table.targets.get('stario-primary')?.config, idleConnectionKill.targetSchema!.parse({ url_env: 'STARIO_PRIMARY_DATABASE_URL', application_name: 'remediator', connect_timeout: '5s', statement_timeout: '10s' }));
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}
