import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { z } from 'zod';
import { migrate } from './audit/migrate.js';
import { ConfigError, loadConfig } from './config.js';
import { numbersCommand } from './cli/numbers.js';
import { heldBy, replayCommand, safetyState } from './cli/replay.js';
import { budgetsFor } from './safety/gates.js';
import { formatDuration } from './rules/duration.js';
import { isSafetyCommand, safetyCommand, safetyUsage } from './cli/safety.js';
import { buildRegistry, type Registry } from './remediations/registry.js';
import { loadRules, RuleLoadError, type RuleTable } from './rules/load.js';
import { decide } from './rules/table.js';
import { webhookSchema } from './receivers/payload.js';

const usage = `usage: remediator <command>
  start                         run the service (same as npm start)
  rules check [--dir DIR]       validate every rule file (default RULES_DIR or ./rules)
  rules test <payload.json> [--dir DIR] [--json] [--state]
                                show, per alert, which rules match, the job each would
                                enqueue (with its budgets and approval; --state: held now
                                by a pause or quarantine), and why the others do not match
  rules replay --since 24h | --file payloads.jsonl [--dir DIR] [--all] [--json]
                                what the rules in DIR would have done with past alerts (audit)
                                or webhook bodies (one per line): budgets, pauses, quarantines
  remediations list             every remediation with its params and permissions
  migrate                       apply database migrations (DATABASE_URL, DATABASE_SCHEMA)
  numbers add|list|disable|enable ...   manage sender number pools
${safetyUsage}`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Runs one CLI command; returns the exit code (0 ok, 1 failure, 2 bad input or invalid rules). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  const flag = (args: string[], name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const registry = buildRegistry();
  try {
    if (cmd === 'rules' && sub === 'check') {
      const dir = flag(rest, '--dir') ?? io.env.RULES_DIR ?? './rules';
      const table = await loadRules(dir, registry);
      io.out(`ok: ${table.rules.length} rules and ${table.targets.size} targets in ${table.files.length} files (${dir})`);
      return 0;
    }
    if (cmd === 'rules' && sub === 'test') {
      const file = rest.find((a, i) => !a.startsWith('--') && rest[i - 1] !== '--dir');
      if (!file) {
        io.err('rules test needs a payload file (an Alertmanager webhook body)');
        return 2;
      }
      return await rulesTest(file, flag(rest, '--dir') ?? io.env.RULES_DIR ?? './rules', rest.includes('--json'), registry, io, rest.includes('--state'));
    }
    if (cmd === 'rules' && sub === 'replay') {
      const table = await loadRules(flag(rest, '--dir') ?? io.env.RULES_DIR ?? './rules', registry);
      return await replayCommand(table, rest, { config: loadConfig(io.env), out: io.out, err: io.err });
    }
    if (cmd === 'remediations' && sub === 'list') {
      listRemediations(registry, io);
      return 0;
    }
    if (isSafetyCommand(cmd)) return await safetyCommand(cmd!, [sub, ...rest].filter((a): a is string => a !== undefined), { config: loadConfig(io.env), out: io.out, err: io.err });
    if (cmd === 'migrate' || cmd === 'numbers') {
      const config = loadConfig(io.env);
      const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
      try {
        if (cmd === 'migrate') {
          const applied = await migrate(pool, config.DATABASE_SCHEMA);
          io.out(applied.length ? `applied ${applied.join(', ')} in schema ${config.DATABASE_SCHEMA}` : `schema ${config.DATABASE_SCHEMA} is up to date`);
          return 0;
        }
        await migrate(pool, config.DATABASE_SCHEMA);
        return await numbersCommand([sub ?? '', ...rest].filter((a, i) => i > 0 || a !== ''), { pool, schema: config.DATABASE_SCHEMA, out: io.out });
      } finally {
        await pool.end();
      }
    }
    io.err(usage);
    return 2;
  } catch (err) {
    if (err instanceof RuleLoadError || err instanceof ConfigError) {
      io.err(err.message);
      return 2;
    }
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}

async function rulesTest(file: string, dir: string, json: boolean, registry: Registry, io: CliIo, withState = false): Promise<number> {
  const table = await loadRules(dir, registry);
  let body: unknown;
  try {
    body = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    io.err(`${file}: ${(err as Error).message}`);
    return 2;
  }
  const parsed = webhookSchema.safeParse(body);
  if (!parsed.success) {
    for (const i of parsed.error.issues) io.err(`${file}: ${i.path.join('.') || '(body)'}: ${i.message}`);
    return 2;
  }
  const hook = parsed.data;
  // --state: today's pauses and quarantines from Redis (REDIS_URL, QUEUE_PREFIX).
  const state = withState ? await safetyState(loadConfig(io.env)) : { pauses: [], quarantines: [] };
  const ctx = { groupKey: hook.groupKey, receiver: hook.receiver, externalURL: hook.externalURL, receivedAt: new Date().toISOString(), dryRun: false };
  const report = hook.alerts.map((a) => {
    const alert = { fingerprint: a.fingerprint, status: a.status, startsAt: a.startsAt, endsAt: a.endsAt, labels: a.labels, annotations: a.annotations, generatorURL: a.generatorURL };
    const { verdicts, decisions } = decide(table, alert, ctx);
    return {
      alert: { fingerprint: a.fingerprint, status: a.status, labels: a.labels },
      verdicts,
      decisions: decisions.map(({ job, ...d }) => ({ ...d, job: job && { action: job.action, target: job.target, params: job.params, dryRun: job.dryRun }, safety: job && safetyNotes(table, job, state) })),
    };
  });
  if (json) {
    io.out(JSON.stringify(report, null, 2));
    return 0;
  }
  for (const r of report) {
    io.out(`alert ${r.alert.labels.alertname ?? '(no alertname)'} ${r.alert.fingerprint} (${r.alert.status})`);
    for (const d of r.decisions) {
      if (d.kind === 'no_match') io.out('  no rule matches');
      else if (d.kind === 'enqueue') {
        io.out(`  MATCH ${d.rule}: would enqueue ${d.job!.action}${d.job!.target ? ` on ${d.job!.target}` : ''} params=${JSON.stringify(d.job!.params)}${d.job!.dryRun ? ' (dry run)' : ''}`);
        for (const note of d.safety ?? []) io.out(`    ${note}`);
      }
      else io.out(`  MATCH ${d.rule}: ${d.kind.replace('_', ' ')}: ${d.reason}`);
    }
    for (const v of r.verdicts.filter((x) => !x.matched)) io.out(`  no match ${v.rule}: ${v.reason}`);
  }
  return 0;
}

/** What the safety gates say about a job: held now (with --state), budgets, approval, resolved handling. */
function safetyNotes(table: RuleTable, job: { rule: string; action: string; target?: string }, state: Parameters<typeof heldBy>[0]): string[] {
  const rule = table.rules.find((r) => r.spec.name === job.rule)!;
  const notes: string[] = [];
  const held = heldBy(state, job);
  if (held) notes.push(`HELD: would be skipped (${held})`);
  for (const b of budgetsFor(rule, table)) notes.push(`budget: ${b.label}`);
  if (rule.spec.approval?.required) notes.push(`approval: waits for ${rule.spec.approval.approvers.join(', ')} (timeout ${formatDuration(rule.spec.approval.timeout)})`);
  if (rule.spec.run_if_resolved) notes.push('runs even if the alert resolved before it starts');
  return notes;
}

function listRemediations(registry: Registry, io: CliIo): void {
  for (const r of registry.values()) {
    io.out(`${r.name}${r.targetKind ? `  (target kind: ${r.targetKind})` : '  (no target)'}`);
    io.out(`  ${r.description}`);
    const shape = (r.paramsSchema as unknown as { shape?: Record<string, z.ZodTypeAny> }).shape;
    if (shape && Object.keys(shape).length) {
      io.out('  params:');
      for (const [k, s] of Object.entries(shape)) io.out(`    ${k}${s.isOptional() ? ' (optional)' : ''}${describeDefault(s)}`);
    }
    if (r.permissions.length) {
      io.out('  permissions:');
      for (const p of r.permissions) io.out(`    - ${p}`);
    }
    io.out('');
  }
}

function describeDefault(s: z.ZodTypeAny): string {
  const def = s._def as { typeName?: string; defaultValue?: () => unknown };
  return def.typeName === 'ZodDefault' && def.defaultValue ? ` = ${JSON.stringify(def.defaultValue())}` : '';
}
