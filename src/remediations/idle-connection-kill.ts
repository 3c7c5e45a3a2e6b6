import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { formatDuration } from '../core/duration.js';
import { duration, envName } from '../rules/schema.js';
import { PermanentError, TransientError } from '../core/errors.js';
import { secretFromEnv } from './http.js';
import { defineRemediation, type RemediationContext, type TargetRefusal } from './types.js';

const nameList = (what: string) => z.array(z.string().min(1)).min(1, `list at least one ${what}, or leave the key out`);

/**
 * A PostgreSQL server. The URL (with its password) is read from `url_env` at run time; it is
 * never written in a rule file and never taken from an alert.
 *
 * The target is the allow-list: `allow` names the databases (required), users and applications
 * (optional) whose backends runs may terminate, and `limits` the least `min_idle` and the most
 * `max_terminate` a rule may ask for. Every run is confined to them in SQL, and params outside them
 * are refused (at load when written in the rule, at run time when filled in from an alert).
 */
const targetSchema = z
  .object({
    url_env: envName,
    allow: z
      .object({
        databases: nameList('database'),
        /** Absent: any role (still minus a rule's exclude_users). */
        users: nameList('user').optional(),
        /** Absent: any application_name. */
        applications: nameList('application').optional(),
      })
      .strict(),
    limits: z
      .object({
        /** No run may terminate backends idle for less than this. */
        min_idle: duration.refine((ms) => ms >= 1000, 'must be at least 1s').default('1m'),
        /** No run may terminate more than this many backends. */
        max_terminate: z.number().int().min(1).max(1000).default(100),
      })
      .strict()
      .default({}),
    /** application_name of remediator's own connection; backends with this name are never terminated. */
    application_name: z.string().regex(/^[\x20-\x7e]{1,63}$/, 'must be 1-63 printable ASCII characters').default('remediator'),
    connect_timeout: duration.default('10s'),
    statement_timeout: duration.default('10s'),
  })
  .strict();

const STATES = ['idle', 'idle in transaction', 'idle in transaction (aborted)'] as const;
/** An include list: absent means "any"; an empty list would match nothing, so it is refused. */
const only = z.array(z.string().min(1)).min(1, 'leave it out to include all').optional();
const except = z.array(z.string().min(1)).default([]);

const paramsSchema = z
  .object({
    /** Backends whose state has not changed for at least this long. */
    min_idle: duration.refine((ms) => ms >= 1000, 'must be at least 1s').default('10m'),
    states: z.array(z.enum(STATES)).min(1).default(['idle']),
    databases: only,
    exclude_databases: except,
    users: only,
    exclude_users: except,
    applications: only,
    exclude_applications: except,
    /** At most this many per run, oldest idle first. */
    max_terminate: z.number().int().min(1).max(1000).default(50),
    /** How long to wait for the terminated backends to leave pg_stat_activity. */
    verify_timeout: duration.default('10s'),
  })
  .strict();

type Target = z.output<typeof targetSchema>;
type Params = z.output<typeof paramsSchema>;
type Ctx = RemediationContext<Params, Target>;

/** One backend picked for termination (`started` pins the pid to that very process). */
interface Backend {
  pid: number;
  database: string | null;
  user: string | null;
  application: string;
  state: string;
  client_addr: string | null;
  idle_seconds: number;
  superuser: boolean;
  started: string;
}

// Which rows a run may touch. pg_stat_activity columns: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
// $1-$6 name filters, $7 states, $8 min idle seconds. Never our own backend, never a non-client backend.
const NAMES = `
      ($1::text[] IS NULL OR a.datname = ANY($1::text[])) AND NOT coalesce(a.datname, '') = ANY($2::text[])
  AND ($3::text[] IS NULL OR a.usename = ANY($3::text[])) AND NOT coalesce(a.usename, '') = ANY($4::text[])
  AND ($5::text[] IS NULL OR a.application_name = ANY($5::text[])) AND NOT coalesce(a.application_name, '') = ANY($6::text[])
  AND a.pid <> pg_backend_pid() AND a.application_name <> current_setting('application_name')`;
const MATCH = `a.backend_type = 'client backend' AND ${NAMES}
  AND a.state = ANY($7::text[]) AND a.state_change < now() - make_interval(secs => $8::float8)`;

// Rows of other roles are shown without state (and with this query text) unless the role has pg_read_all_stats.
const HIDDEN_SQL = `SELECT count(*)::int AS n FROM pg_stat_activity a
  WHERE a.backend_type IS NULL AND a.query = '<insufficient privilege>' AND a.datname IS NOT NULL AND ${NAMES}`;
const SELECT_SQL = `SELECT a.pid, a.datname AS database, a.usename AS user, a.application_name AS application, a.state,
    host(a.client_addr) AS client_addr, floor(extract(epoch FROM now() - a.state_change))::int AS idle_seconds,
    coalesce(r.rolsuper, false) AS superuser, a.backend_start::text AS started, count(*) OVER ()::int AS matching
  FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
  WHERE ${MATCH} ORDER BY a.state_change, a.pid LIMIT $9`;
const COUNT_SQL = `SELECT count(*)::int AS n FROM pg_stat_activity a WHERE ${MATCH}`;
// Re-checks the whole filter at the moment of the kill: a backend that went active since the selection is left alone.
// pg_terminate_backend: https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL
const TERMINATE_SQL = `SELECT pg_terminate_backend(a.pid) AS signalled FROM pg_stat_activity a
  WHERE ${MATCH} AND a.pid = $9 AND a.backend_start = $10::timestamptz`;
const PRESENT_SQL = `SELECT a.pid FROM pg_stat_activity a
  JOIN unnest($1::int[], $2::timestamptz[]) AS t(pid, started) ON a.pid = t.pid AND a.backend_start = t.started`;

/**
 * The params a run uses: a list the rule leaves out is the target's allow-list (so a rule
 * without `databases` still touches only the allowed ones).
 */
function confined(p: Params, t: Target): Params {
  return { ...p, databases: p.databases ?? t.allow.databases, users: p.users ?? t.allow.users, applications: p.applications ?? t.allow.applications };
}

/** Params outside the target's allow-lists and limits (see TargetRefusal). */
function targetRefusals(p: Partial<Params>, t: Target): TargetRefusal[] {
  const out: TargetRefusal[] = [];
  const lists = [
    ['databases', 'database'],
    ['users', 'user'],
    ['applications', 'application'],
  ] as const;
  for (const [key, what] of lists) {
    const allowed = t.allow[key];
    const asked = p[key];
    if (!allowed || !asked) continue;
    asked.forEach((name, i) => {
      if (!allowed.includes(name)) out.push({ path: [key, i], message: `${what} ${JSON.stringify(name)} is not allowed by the target (allow.${key}: ${allowed.join(', ')})` });
    });
  }
  if (p.min_idle !== undefined && p.min_idle < t.limits.min_idle) {
    out.push({ path: ['min_idle'], message: `${formatDuration(p.min_idle)} is below the target's limit (limits.min_idle: ${formatDuration(t.limits.min_idle)})` });
  }
  if (p.max_terminate !== undefined && p.max_terminate > t.limits.max_terminate) {
    out.push({ path: ['max_terminate'], message: `${p.max_terminate} is above the target's limit (limits.max_terminate: ${t.limits.max_terminate})` });
  }
  return out;
}

function filterValues(p: Params): unknown[] {
  const { databases, exclude_databases, users, exclude_users, applications, exclude_applications } = p;
  return [databases ?? null, exclude_databases, users ?? null, exclude_users, applications ?? null, exclude_applications];
}
const matchValues = (p: Params): unknown[] => [...filterValues(p), p.states, p.min_idle / 1000];

const describe = (b: Backend) =>
  `pid ${b.pid} (user ${b.user ?? '?'}, application ${JSON.stringify(b.application)}, database ${b.database ?? '?'}, ${b.state} ${formatDuration(b.idle_seconds * 1000)})`;
const summaryOf = (list: Backend[]) =>
  list.map(({ pid, user, application, database, state, idle_seconds }) => ({ pid, user, application, database, state, idle_seconds }));

/** Client errors are built here from SQLSTATE / errno and a redacted message, never the URL. */
function classify(err: unknown, what: string, redact: (s: string) => string, signal: AbortSignal): Error {
  if (err instanceof PermanentError || err instanceof TransientError) return err;
  if (signal.aborted) return new TransientError('timeout', `${what}: aborted`);
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const text = redact(typeof e.message === 'string' ? e.message : String(err));
  const msg = `${what}: ${text}${code ? ` (${code})` : ''}`;
  const details = code ? { code } : {};
  // SQLSTATEs: https://www.postgresql.org/docs/current/errcodes-appendix.html
  if (code === '28P01' || code === '28000') return new PermanentError('forbidden', msg, details);
  if (code === '3D000') return new PermanentError('not_found', msg, details);
  if (code === '42501') return new PermanentError('forbidden', msg, details);
  if (code?.startsWith('42')) return new PermanentError('bad_request', msg, details);
  if (code === '57014' || /timeout|timed out/i.test(text)) return new TransientError('timeout', msg, details);
  // 53300 too_many_connections is expected here (the pool is exhausted): retry with backoff. Any other
  // SQLSTATE or errno (ECONNREFUSED...) or a dropped connection is the server's or network's state.
  if (code || /connection|terminated/i.test(text)) return new TransientError('unavailable', msg, details);
  return new TransientError('error', msg, details);
}

function redactor(url: string): (s: string) => string {
  let secrets: string[] = [url];
  try {
    const pw = new URL(url).password;
    if (pw) secrets = [url, pw, decodeURIComponent(pw)];
  } catch {
    /* checked before connecting */
  }
  return (s) => secrets.reduce((acc, x) => (x ? acc.split(x).join('***') : acc), s);
}

export const idleConnectionKill = defineRemediation<Params, Target>({
  name: 'idle-connection-kill',
  description:
    'Terminates PostgreSQL client backends idle for longer than min_idle (oldest first, capped, filtered by database/user/application), then checks they are gone.',
  targetKind: 'postgres',
  paramsSchema,
  targetSchema,
  targetRefusals,
  permissions: [
    'PostgreSQL: LOGIN role with pg_signal_backend (terminate other non-superuser roles\' backends; superusers\' backends need a superuser)',
    'PostgreSQL: pg_read_all_stats (see state and state_change of other roles\' backends in pg_stat_activity)',
  ],
  exampleRules: `
targets:
  orders-db:
    kind: postgres
    url_env: ORDERS_DATABASE_URL
    allow:
      databases: [orders]
      users: [orders_app, orders_worker]
    limits: { min_idle: 5m, max_terminate: 50 }
    application_name: remediator
    connect_timeout: 10s
    statement_timeout: 10s
rules:
  - name: orders-db-idle-connections
    match: ['alertname="PostgresConnectionPoolExhausted"', 'service="orders-postgres"']
    action: idle-connection-kill
    target: orders-db
    params:
      min_idle: 10m
      states: [idle]
      exclude_users: [replicator]
      max_terminate: 50
    attempts: 5
    backoff: { type: exponential, delay: 15s }
    cooldown: 15m
`,
  async run(ctx) {
    const { target: t, targetName } = ctx;
    // Before anything else: params an alert filled in may not widen the target.
    const refused = targetRefusals(ctx.params, t);
    if (refused.length) {
      throw new PermanentError('refused_target', `target ${targetName} refuses: ${refused.map((r) => `params.${r.path.join('.')}: ${r.message}`).join('; ')}`, {
        refused: refused.map((r) => ({ path: r.path.join('.'), message: r.message })),
      });
    }
    const url = secretFromEnv(ctx.deps.env, t.url_env);
    if (!/^postgres(ql)?:$/.test(safeProtocol(url))) {
      throw new PermanentError('bad_params', `environment variable ${t.url_env} does not hold a postgres:// URL`);
    }
    const redact = redactor(url);
    const client = new pg.Client({
      connectionString: url,
      application_name: t.application_name,
      connectionTimeoutMillis: t.connect_timeout,
      statement_timeout: t.statement_timeout,
      query_timeout: t.statement_timeout + 5000,
    });
    // A dropped connection is emitted as 'error'; the pending query rejects too, so only log it.
    client.on('error', (err) => ctx.log.warn('postgres connection error', { target: targetName, error: redact(err.message) }));
    const abort = () => void client.end().catch(() => {});
    ctx.signal.addEventListener('abort', abort, { once: true });
    let phase = `connecting to ${targetName}`;
    try {
      if (ctx.signal.aborted) throw new TransientError('timeout', `${phase}: aborted`);
      await client.connect();
      const q = async <R extends pg.QueryResultRow>(what: string, sql: string, values: unknown[]) => {
        phase = `${what} on ${targetName}`;
        return (await client.query<R>(sql, values)).rows;
      };
      return await kill(ctx, confined(ctx.params, t), q);
    } catch (err) {
      throw classify(err, phase, redact, ctx.signal);
    } finally {
      ctx.signal.removeEventListener('abort', abort);
      await client.end().catch(() => {});
    }
  },
});

type Query = <R extends pg.QueryResultRow>(what: string, sql: string, values: unknown[]) => Promise<R[]>;

async function kill(ctx: Ctx, p: Params, q: Query) {
  const { targetName } = ctx;
  const where = `idle >= ${formatDuration(p.min_idle)}, states ${p.states.join(', ')}, databases ${p.databases!.join(', ')}`;
  const [{ n: hidden } = { n: 0 }] = await q<{ n: number }>('reading pg_stat_activity', HIDDEN_SQL, filterValues(p));
  const rows = await q<Backend & { matching: number }>('selecting idle backends', SELECT_SQL, [...matchValues(p), p.max_terminate]);
  const matching = rows[0]?.matching ?? 0;
  const selected: Backend[] = rows.map(({ matching: _, ...b }) => b);
  const hiddenNote = hidden > 0 ? ` ${hidden} backends of other roles are hidden (no state visible): the role lacks pg_read_all_stats.` : '';
  await ctx.step(
    `${matching} backends on ${targetName} match (${where}); selected ${selected.length} (cap ${p.max_terminate}, oldest first).${hiddenNote}`,
    { matching_before: matching, hidden, selected: summaryOf(selected) },
  );
  if (selected.length === 0) {
    return { outcome: 'skipped' as const, summary: `No backends on ${targetName} match (${where}): nothing to terminate.${hiddenNote}`, details: { matching_before: 0, hidden } };
  }
  if (ctx.dryRun) {
    return {
      outcome: 'dry_run' as const,
      summary: `Dry run: would terminate ${selected.length} of ${matching} matching backends on ${targetName}: ${selected.map(describe).join('; ')}.${hiddenNote}`,
      details: { matching_before: matching, hidden, would_terminate: summaryOf(selected), pids: selected.map((b) => b.pid) },
    };
  }

  // Recorded before the first pg_terminate_backend: an attempt that dies in the loop leaves a
  // re-run that knows backends may already be gone (it is then told, not run blind).
  await ctx.step(`Terminating ${selected.length} backends on ${targetName}: ${selected.map(describe).join('; ')}`, { pids: selected.map((b) => b.pid) }, { intent: true });
  const signalled: Backend[] = [];
  const left: Backend[] = [];
  const forbidden: { backend: Backend; error: string }[] = [];
  for (const b of selected) {
    if (ctx.signal.aborted) throw new TransientError('timeout', `terminating backends on ${targetName}: aborted`);
    try {
      const r = await q<{ signalled: boolean }>(`terminating pid ${b.pid}`, TERMINATE_SQL, [...matchValues(p), b.pid, b.started]);
      // No row: went active or ended since the selection. false: the process was already gone.
      (r[0]?.signalled ? signalled : left).push(b);
    } catch (err) {
      if ((err as { code?: unknown }).code !== '42501') throw err;
      forbidden.push({ backend: b, error: String((err as Error).message) });
    }
  }
  // Nothing terminated and some refused: retrying cannot help without the grant.
  if (signalled.length === 0 && forbidden.length > 0) {
    const supers = forbidden.some((f) => f.backend.superuser) ? '; backends of superusers can only be terminated by a superuser' : '';
    throw new PermanentError(
      'forbidden',
      `cannot terminate any of the ${forbidden.length} selected backends on ${targetName}: permission denied, the role needs pg_signal_backend${supers}`,
      { missing_privilege: 'pg_signal_backend', pids: forbidden.map((f) => f.backend.pid), error: forbidden[0]!.error },
    );
  }
  const permission = forbidden.map((f) => f.backend);
  if (permission.length > 0) {
    await ctx.step(`Could not terminate ${permission.length} backends (permission: the role needs pg_signal_backend): ${permission.map(describe).join('; ')}`, {
      could_not_terminate: summaryOf(permission),
    });
  }
  if (signalled.length === 0) {
    return {
      outcome: 'skipped' as const,
      summary: `The ${left.length} selected backends on ${targetName} ended or became active before termination: nothing terminated.`,
      details: { matching_before: matching, hidden, no_longer_matching: left.map((b) => b.pid), could_not_terminate: permission.length },
    };
  }
  await ctx.step(`Sent terminate to ${signalled.length} backends on ${targetName}: ${signalled.map(describe).join('; ')}`, {
    terminated: summaryOf(signalled),
  }, { acted: true });

  // Termination is asynchronous: poll until every signalled pid has left pg_stat_activity.
  const pids = signalled.map((b) => b.pid);
  const started = signalled.map((b) => b.started);
  const deadline = Date.now() + p.verify_timeout;
  let present: number[] = pids;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    present = (await q<{ pid: number }>('verifying termination', PRESENT_SQL, [pids, started])).map((r) => r.pid);
    if (present.length === 0 || Date.now() + delay > deadline) break;
    await sleep(delay, undefined, { signal: ctx.signal });
  }
  const [{ n: after } = { n: 0 }] = await q<{ n: number }>('counting idle backends', COUNT_SQL, matchValues(p));
  const details = {
    matching_before: matching,
    matching_after: after,
    hidden,
    terminated: summaryOf(signalled),
    pids,
    users: [...new Set(signalled.map((b) => b.user))],
    applications: [...new Set(signalled.map((b) => b.application))],
    databases: [...new Set(signalled.map((b) => b.database))],
    could_not_terminate: permission.length,
    could_not_terminate_permission: summaryOf(permission),
    no_longer_matching: left.map((b) => b.pid),
    still_present: present,
  };
  if (present.length > 0) {
    throw new TransientError(
      'verification_failed',
      `${present.length} of ${pids.length} terminated backends on ${targetName} still present after ${formatDuration(p.verify_timeout)}: pids ${present.join(', ')}`,
      details,
    );
  }
  await ctx.step(`Verified: the ${pids.length} backends are gone. Matching backends: ${matching} before, ${after} after.`, {
    matching_before: matching,
    matching_after: after,
  });
  const notDone = permission.length > 0 ? ` ${permission.length} could not be terminated (permission: pg_signal_backend missing).` : '';
  return {
    outcome: 'succeeded' as const,
    summary: `Terminated ${pids.length} idle backends on ${targetName} (${where}); matching ${matching} before, ${after} after.${notDone}${hiddenNote}`,
    details,
  };
}

function safeProtocol(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}
