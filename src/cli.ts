import { parseArgs, type ParseArgsConfig } from 'node:util';
import pg from 'pg';
import { migrate } from './store/migrate.js';
import { ConfigError, loadConfig } from './config.js';
import { postgresError } from './core/dependencies.js';
import { DependencyError } from './core/errors.js';
import { LabelSetError } from './cli/alert.js';
import { numbersCommand, numbersUsage } from './cli/numbers.js';
import { listRemediations } from './cli/remediations.js';
import { rulesCheck, rulesTest } from './cli/rules.js';
import { replayCommand, safetyState } from './cli/replay.js';
import { isSafetyCommand, safetyCommand, safetyUsage } from './cli/safety.js';
import { buildRegistry, type Registry } from './remediations/registry.js';
import { loadRules, RuleLoadError } from './rules/load.js';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

interface Command {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Most positional arguments accepted. */
  positionals: number;
  run(args: { values: Record<string, unknown>; positionals: string[] }, io: CliIo, registry: Registry): Promise<number>;
}

const rulesDir = (values: Record<string, unknown>, io: CliIo) => (values.dir as string | undefined) ?? io.env.RULES_DIR ?? './rules';

const commands: Record<string, Command> = {
  'rules check': {
    usage: `remediator rules check [--dir DIR] [--env]
    Validates every rule file as the service loads them; prints every problem as
    file:line:col: rule "name": field: message (exit 2). --env: also every secret the rules name
    (token_env, url_env, routing_key_env) must be set in this environment.`,
    options: { dir: { type: 'string' }, env: { type: 'boolean' } },
    positionals: 0,
    run: ({ values }, io, registry) => rulesCheck(rulesDir(values, io), values.env ? io.env : undefined, registry, io),
  },
  'rules test': {
    usage: `remediator rules test PAYLOAD.json [--dir DIR] [--json]
remediator rules test --alert 'alertname="X",service="y"' [--alert ...] [--resolved] [--dir DIR] [--json] [--state]
    Per alert: which rules match, the job each would enqueue (action, target, resolved params),
    and why the others do not match. PAYLOAD.json is an Alertmanager webhook body (see
    demo/webhook.json); --alert builds one from a label set, as Alertmanager would send it.
    Each job shows its budgets and approval; --state also whether a pause or quarantine holds it now.
    Never enqueues, runs a remediation or calls a target.`,
    options: { dir: { type: 'string' }, json: { type: 'boolean' }, alert: { type: 'string', multiple: true }, resolved: { type: 'boolean' }, state: { type: 'boolean' } },
    positionals: 1,
    async run({ values, positionals }, io, registry) {
      const alerts = (values.alert as string[] | undefined) ?? [];
      const file = positionals[0];
      if ((file === undefined) === (alerts.length === 0)) {
        io.err('rules test needs either a payload file or --alert LABELS (not both)');
        io.err(`usage: ${commands['rules test']!.usage}`);
        return 2;
      }
      // --state: whether today's pauses and quarantines (Redis: REDIS_URL, QUEUE_PREFIX) would hold each job.
      const state = values.state ? await safetyState(loadConfig(io.env)) : undefined;
      return rulesTest({ file, alerts, resolved: values.resolved as boolean | undefined }, rulesDir(values, io), Boolean(values.json), registry, io, state);
    },
  },
  'remediations list': {
    usage: `remediator remediations list [NAME]
    Each remediation (or just NAME): what it does, its params with their defaults, the fields of
    its target kind, the permissions it needs, and a complete example rules file.`,
    options: {},
    positionals: 1,
    async run({ positionals }, io, registry) {
      const name = positionals[0];
      if (name !== undefined && !registry.has(name)) {
        io.err(`unknown remediation ${JSON.stringify(name)} (known: ${[...registry.keys()].sort().join(', ')})`);
        return 2;
      }
      listRemediations(registry, name, io.out);
      return 0;
    },
  },
  migrate: {
    usage: `remediator migrate
    Creates or updates remediator's schema (DATABASE_URL, DATABASE_SCHEMA); the service also does at start.`,
    options: {},
    positionals: 0,
    async run(_args, io) {
      const config = loadConfig(io.env);
      const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
      try {
        const applied = await migrate(pool, config.DATABASE_SCHEMA).catch((err: unknown) => {
          throw postgresError(err, config.DATABASE_URL, `migrating schema ${config.DATABASE_SCHEMA}`);
        });
        io.out(applied.length ? `applied ${applied.join(', ')} in schema ${config.DATABASE_SCHEMA}` : `schema ${config.DATABASE_SCHEMA} is up to date`);
        return 0;
      } finally {
        await pool.end();
      }
    },
  },
};

const usage = `usage: remediator <command> [options]      (remediator <command> --help for one command)

  start                              run the service (same as npm start)
  rules check [--dir DIR] [--env]    validate every rule file; --env: and that their secrets are set
  rules test PAYLOAD.json | --alert 'alertname="X",service="y"'  [--dir DIR] [--json]
                                     which rules match an alert and the job each would enqueue
  remediations list [NAME]           params, target fields, permissions and an example of each
  rules replay --since 24h | --file payloads.jsonl [--dir DIR] [--all] [--json]
                                     what the rules in DIR would have done with past alerts
                                     (audit) or webhook bodies: budgets, pauses, quarantines
  migrate                            create or update the database schema
  numbers add|list|disable|enable    manage sender number pools
${safetyUsage}

DIR defaults to RULES_DIR, else ./rules.
Exit codes: 0 ok, 1 failure (a dependency down...), 2 bad input or invalid rules.`;

const isHelp = (a: string | undefined) => a === '--help' || a === '-h' || a === 'help';

/** Runs one CLI command; returns the exit code (0 ok, 1 failure, 2 bad input or invalid rules). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [cmd, sub] = argv;
  if (cmd === undefined || isHelp(cmd)) {
    (cmd ? io.out : io.err)(usage);
    return cmd ? 0 : 2;
  }
  const registry = buildRegistry();
  try {
    if (cmd === 'numbers') return await numbers(argv.slice(1), io);
    // Operator controls and replay parse their own arguments (src/cli/safety.ts, src/cli/replay.ts).
    if (isSafetyCommand(cmd)) return await safetyCommand(cmd, argv.slice(1), { config: loadConfig(io.env), out: io.out, err: io.err });
    if (cmd === 'rules' && sub === 'replay') {
      const rest = argv.slice(2);
      const i = rest.indexOf('--dir');
      const table = await loadRules(i >= 0 ? rest[i + 1]! : (io.env.RULES_DIR ?? './rules'), registry);
      return await replayCommand(table, rest, { config: loadConfig(io.env), out: io.out, err: io.err });
    }
    const name = commands[cmd] ? cmd : `${cmd} ${sub}`;
    const command = commands[name];
    if (!command) {
      // `remediator rules --help` lists the rules commands.
      const group = Object.keys(commands).filter((k) => k.startsWith(`${cmd} `));
      if (group.length && (sub === undefined || isHelp(sub))) {
        (sub ? io.out : io.err)(group.map((k) => `usage: ${commands[k]!.usage}`).join('\n\n'));
        return sub ? 0 : 2;
      }
      io.err(`unknown command ${JSON.stringify(argv.slice(0, group.length ? 2 : 1).join(' '))}`);
      io.err(usage);
      return 2;
    }
    const rest = argv.slice(name.split(' ').length);
    let args;
    try {
      args = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
      if (args.positionals.length > command.positionals) throw new Error(`unexpected argument ${JSON.stringify(args.positionals[command.positionals])}`);
    } catch (err) {
      io.err(`remediator ${name}: ${(err as Error).message}`);
      io.err(`usage: ${command.usage}`);
      return 2;
    }
    if (args.values.help) {
      io.out(`usage: ${command.usage}`);
      return 0;
    }
    return await command.run(args as { values: Record<string, unknown>; positionals: string[] }, io, registry);
  } catch (err) {
    if (err instanceof RuleLoadError) {
      for (const p of err.problems) io.err(p);
      io.err(`${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in the rules`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof LabelSetError) {
      io.err(err instanceof LabelSetError ? `--alert: ${err.message}` : err.message);
      return 2;
    }
    if (err instanceof DependencyError) {
      io.err(`error: ${err.message}`);
      io.err(`  fix: ${err.fix}`);
      return 1;
    }
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}

/** `numbers ...` has its own small parser (it predates this one); it needs the database. */
async function numbers(args: string[], io: CliIo): Promise<number> {
  if (args.length === 0 || isHelp(args[0])) {
    numbersUsage.forEach((l) => (args.length ? io.out : io.err)(l));
    return args.length ? 0 : 2;
  }
  const config = loadConfig(io.env);
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
  try {
    await migrate(pool, config.DATABASE_SCHEMA).catch((err: unknown) => {
      throw postgresError(err, config.DATABASE_URL, `migrating schema ${config.DATABASE_SCHEMA}`);
    });
    return await numbersCommand(args, { pool, schema: config.DATABASE_SCHEMA, out: io.out, err: io.err });
  } finally {
    await pool.end();
  }
}
