import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { ident } from '../store/migrate.js';
import { cliRedis } from './connect.js';
import type { Config } from '../config.js';
import { webhookSchema } from '../core/alert.js';
import type { AlertInfo } from '../core/alert.js';
import { parseDuration } from '../core/duration.js';
import type { RuleTable } from '../rules/load.js';
import { decide } from '../rules/table.js';
import { budgetsFor } from '../run/gates/budget.js';
import { SafetyState, type Pause, type Quarantine } from '../redis/safety-state.js';

/** One alert as it arrived, and (from the audit) what happened to it then. */
interface Replayed {
  alert: AlertInfo;
  groupKey: string;
  receiver: string;
  externalURL: string;
  receivedAt: Date;
  /** "rule: outcome" per rule, from the audit; undefined for --file input. */
  before?: string[];
  /** Per rule that ran then: whether that run was a dry run (the audit's runs.dry_run). */
  dryThen?: Map<string, boolean>;
}

/**
 * `remediator rules replay --since 24h | --file PAYLOADS [--dir DIR] [--json] [--all]`:
 * what the rule table in DIR would have done with past alerts, with today's pauses and
 * quarantines (from Redis) and the new budgets and cooldowns simulated over the replayed sequence.
 * With the audit as source, each alert's outcome then is shown next to the new one; only
 * differences unless --all.
 *
 * Nothing here reads the caller's DRY_RUN: whether a run is a dry run is the new rule's `dry_run`,
 * or what the audit recorded for that alert (the service's DRY_RUN then). Otherwise replaying
 * the audit of a DRY_RUN service from a shell without it would call every run different.
 */
export async function replayCommand(
  table: RuleTable,
  args: { since?: string; file?: string; all?: boolean; json?: boolean },
  o: { config: Config; out: (l: string) => void; err: (l: string) => void },
): Promise<number> {
  const { since, file } = args;
  if ((since === undefined) === (file === undefined)) {
    o.err('rules replay needs --since DURATION (from the audit) or --file PAYLOADS (webhook bodies: a JSON array, one body, or one body per line)');
    return 2;
  }
  let items: Replayed[];
  if (file !== undefined) {
    const read = await fromFile(file);
    if (typeof read === 'string') {
      o.err(read);
      return 2;
    }
    items = read;
  } else {
    const ms = parseDuration(since!);
    if (!ms) {
      o.err(`--since: ${JSON.stringify(since)} is not a duration such as 24h`);
      return 2;
    }
    items = await fromAudit(o.config, new Date(Date.now() - ms));
  }
  const state = await safetyState(o.config).catch((err: Error) => {
    o.err(`warning: pauses and quarantines not read from Redis (${err.message}); replaying without them`);
    return { pauses: [] as Pause[], quarantines: [] as Quarantine[] };
  });
  const sim = new Simulation(table, state);
  const report = items.map((it) => {
    // A dry run then stays one for the rules that ran; a rule that did not run then gets the
    // delivery's mode as far as the audit shows it: dry when every run of that alert was.
    const dryRuns = [...(it.dryThen?.values() ?? [])];
    const allDry = dryRuns.length > 0 && dryRuns.every(Boolean);
    const ctx = { groupKey: it.groupKey, receiver: it.receiver, externalURL: it.externalURL, receivedAt: it.receivedAt.toISOString(), dryRun: false };
    const { decisions } = decide(table, it.alert, ctx);
    const after = decisions.map((d) => {
      if (d.kind !== 'enqueue' || !d.job) return d.kind === 'no_match' ? 'no rule matches' : `${d.rule}: ${d.kind.replace('_', ' ')}`;
      const dryRun = d.job.dryRun || (it.dryThen?.get(d.job.rule) ?? allDry);
      return sim.run({ ...d.job, dryRun }, it.receivedAt.getTime());
    });
    return { alert: it.alert, at: it.receivedAt.toISOString(), before: it.before, after };
  });
  const differ = report.filter((r) => r.before && r.before.join('\n') !== r.after.join('\n'));
  if (args.json) {
    o.out(JSON.stringify({ alerts: report.length, differ: differ.length, report }, null, 2));
    return 0;
  }
  const shown = args.all || file !== undefined ? report : differ;
  for (const r of shown) {
    o.out(`alert ${r.alert.labels.alertname ?? '(no alertname)'} ${r.alert.fingerprint} ${r.alert.status} at ${r.at}`);
    if (r.before) o.out(`  before: ${r.before.join('; ')}`);
    o.out(`  ${r.before ? 'after:  ' : ''}${r.after.join('; ')}`);
  }
  const counts = new Map<string, number>();
  for (const r of report) for (const a of r.after) {
    const k = /skipped \((\w+)\)/.exec(a)?.[1] ?? (/: runs /.test(a) ? 'runs' : a === 'no rule matches' ? 'no_match' : a.slice(a.indexOf(': ') + 2).replace(' ', '_'));
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  o.out(`${report.length} alerts replayed${file === undefined ? `, ${differ.length} with a different outcome` : ''}: ${[...counts].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return 0;
}

/**
 * The worker's checks, in its order, over the replayed sequence instead of Redis and the audit:
 * the same firing again is the same run (one job id); a cooldown counts runs that acted (a dry
 * run does not start one); today's pauses and quarantines; budgets (a dry run checks but takes no slot).
 */
class Simulation {
  private readonly outcomes = new Map<string, string>(); // job id -> outcome
  private readonly used = new Map<string, number[]>(); // budget key -> times of simulated runs
  private readonly acted = new Map<string, number>(); // rule + target -> time of the last run that acted

  constructor(
    private readonly table: RuleTable,
    private readonly state: { pauses: Pause[]; quarantines: Quarantine[] },
  ) {}

  run(job: { jobId: string; rule: string; action: string; target?: string; dryRun: boolean }, t: number): string {
    const seen = this.outcomes.get(job.jobId);
    if (seen) return seen;
    const outcome = this.decide(job, t);
    this.outcomes.set(job.jobId, outcome);
    return outcome;
  }

  private decide(job: { rule: string; action: string; target?: string; dryRun: boolean }, t: number): string {
    const rule = this.table.rules.find((r) => r.spec.name === job.rule)!;
    const cooldown = rule.spec.cooldown;
    const key = `${job.rule}\n${job.target ?? ''}`;
    const last = this.acted.get(key);
    if (cooldown !== undefined && last !== undefined && t - last < cooldown) return `${job.rule}: skipped (cooldown)`;
    const held = heldBy(this.state, job);
    if (held) return `${job.rule}: skipped (${held.split(':')[0]})`;
    const budgets = budgetsFor(rule, this.table);
    const spent = budgets.find((b) => (this.used.get(b.key) ?? []).filter((x) => x > t - b.perMs).length >= b.runs);
    if (spent) return `${job.rule}: skipped (budget)`;
    if (!job.dryRun) {
      for (const b of budgets) this.used.set(b.key, [...(this.used.get(b.key) ?? []), t]);
      this.acted.set(key, t);
    }
    const how = rule.spec.approval?.required ? ' after approval' : '';
    return `${job.rule}: runs ${job.action}${job.target ? ` on ${job.target}` : ''}${how}${job.dryRun ? ' (dry run)' : ''}`;
  }
}

/** The webhook bodies of a file: a JSON array of them, one (pretty-printed or not), or one per line (JSON lines). */
async function fromFile(file: string): Promise<Replayed[] | string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return `${file}: ${(err as Error).message}`;
  }
  const bodies: { body: unknown; where: string }[] = [];
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = undefined;
  }
  if (Array.isArray(whole)) whole.forEach((body, i) => bodies.push({ body, where: `${file}: [${i}]` }));
  else if (whole !== undefined) bodies.push({ body: whole, where: file });
  else {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.trim()) continue;
      try {
        bodies.push({ body: JSON.parse(lines[i]!), where: `${file}:${i + 1}` });
      } catch (err) {
        return `${file}:${i + 1}: not JSON (${(err as Error).message}): --file takes a JSON array of webhook bodies, one body, or one body per line`;
      }
    }
  }
  const out: Replayed[] = [];
  for (const { body, where } of bodies) {
    const hook = webhookSchema.safeParse(body);
    if (!hook.success) return `${where}: ${hook.error.issues[0]!.path.join('.') || '(body)'}: ${hook.error.issues[0]!.message}`;
    for (const a of hook.data.alerts) {
      const started = Date.parse(a.startsAt);
      out.push({
        alert: { fingerprint: a.fingerprint, status: a.status, startsAt: a.startsAt, endsAt: a.endsAt, labels: a.labels, annotations: a.annotations, generatorURL: a.generatorURL },
        groupKey: hook.data.groupKey, receiver: hook.data.receiver, externalURL: hook.data.externalURL,
        receivedAt: new Date(Number.isNaN(started) ? Date.now() : started),
      });
    }
  }
  return out;
}

async function fromAudit(config: Config, since: Date): Promise<Replayed[]> {
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 });
  const s = ident(config.DATABASE_SCHEMA);
  try {
    const { rows } = await pool.query(
      `SELECT a.id, a.received_at, a.fingerprint, a.status, a.starts_at, a.ends_at, a.labels, a.annotations, a.generator_url, a.receiver, a.group_key, a.external_url,
              coalesce(json_agg(json_build_object('rule', d.rule, 'decision', d.decision, 'state', r.state, 'reason', r.error_reason, 'action', r.action, 'target', r.target, 'dry_run', r.dry_run) ORDER BY d.id)
                FILTER (WHERE d.id IS NOT NULL), '[]') AS decisions
       FROM ${s}.alerts a LEFT JOIN ${s}.decisions d ON d.alert_id = a.id LEFT JOIN ${s}.runs r ON r.job_id = d.job_id AND d.decision IN ('enqueued', 'duplicate')
       WHERE a.received_at >= $1 GROUP BY a.id ORDER BY a.received_at, a.id`,
      [since],
    );
    return rows.map((r) => ({
      alert: {
        fingerprint: r.fingerprint, status: r.status, startsAt: r.starts_at?.toISOString() ?? '', endsAt: r.ends_at?.toISOString() ?? '0001-01-01T00:00:00Z',
        labels: r.labels, annotations: r.annotations, generatorURL: r.generator_url ?? '',
      },
      groupKey: r.group_key, receiver: r.receiver, externalURL: r.external_url ?? '', receivedAt: r.received_at,
      before: (r.decisions as Before[]).map(describeBefore),
      dryThen: new Map((r.decisions as Before[]).filter((d) => d.rule && d.dry_run !== null).map((d) => [d.rule!, d.dry_run!])),
    }));
  } finally {
    await pool.end();
  }
}

/** The audit's outcome in the words replay uses for the new one, so that equal outcomes compare equal. */
type Before = { rule: string | null; decision: string; state: string | null; reason: string | null; action: string | null; target: string | null; dry_run: boolean | null };

function describeBefore(d: Before): string {
  if (d.decision === 'no_match') return 'no rule matches';
  if (d.decision !== 'enqueued' && d.decision !== 'duplicate') return `${d.rule}: ${d.decision.replace('_', ' ')}`;
  // A worker's "duplicate" is the same firing handled by an earlier run: replay sees one run there too.
  if (d.state === 'skipped' && d.reason && d.reason !== 'duplicate') return `${d.rule}: skipped (${d.reason})`;
  return `${d.rule}: runs ${d.action ?? ''}${d.target ? ` on ${d.target}` : ''}${d.dry_run ? ' (dry run)' : ''}`;
}

/** Pauses and quarantines as they are now, from Redis (also for `rules test --state`). */
export async function safetyState(config: Config): Promise<{ pauses: Pause[]; quarantines: Quarantine[] }> {
  const redis = await cliRedis(config); // down: a DependencyError (Redis, REDIS_URL, fix), not an ioredis stack
  try {
    const store = new SafetyState(redis, config.QUEUE_PREFIX);
    return { pauses: await store.pauses(new Date()), quarantines: await store.quarantines() };
  } finally {
    redis.disconnect();
  }
}

/** Why a job would be held back now by a pause or a quarantine ("paused: SCOPE by WHO", "quarantined: ..."), or undefined. */
export function heldBy(state: { pauses: Pause[]; quarantines: Quarantine[] }, job: { rule: string; action: string; target?: string }): string | undefined {
  const pause = state.pauses.find((p) => ['all', `rule:${job.rule}`, `action:${job.action}`, `target:${job.target ?? ''}`].includes(p.scope));
  if (pause) return `paused: ${pause.scope} by ${pause.by}: ${pause.reason}`;
  const q = state.quarantines.find((x) => x.rule === job.rule && x.target === (job.target ?? ''));
  return q ? `quarantined: ${q.reason} since ${q.at}` : undefined;
}
