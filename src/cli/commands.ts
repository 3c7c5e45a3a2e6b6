import type { ParseArgsConfig } from 'node:util';
import type { Registry } from '../remediations/registry.js';
import { startUsage } from './start-usage.js';

// Each command loads what it needs when it runs (pg, ioredis, BullMQ, the rules engine): `--help`
// and the overview load nothing but this table, and one command does not pay for the others.
const configOf = async (io: CliIo) => (await import('../config.js')).loadConfig(io.env);

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface Parsed {
  values: Record<string, unknown>;
  positionals: string[];
  /** The arguments after the command's name, as given. */
  raw: string[];
}

/**
 * One command of the CLI. This table is the only way a command is dispatched, so every command
 * has a usage that `--help` prints before anything is loaded or connected, and the overview
 * (`remediator --help`) is built from it.
 */
export interface Command {
  /** Starts with `remediator NAME`; the synopsis line(s), then what it does. */
  usage: string;
  /** One line for the overview. */
  summary: string;
  /** Parsed strictly with node:util parseArgs (an unknown option is exit 2); absent: the command reads `raw` itself. */
  options?: NonNullable<ParseArgsConfig['options']>;
  /** Most positional arguments accepted (with `options`). */
  positionals?: number;
  run(args: Parsed, io: CliIo, registry: Registry): Promise<number>;
}

const rulesDir = (values: Record<string, unknown>, io: CliIo) => (values.dir as string | undefined) ?? io.env.RULES_DIR ?? './rules';

/** `numbers SUB ...`: its own small parser (src/cli/numbers.ts); it needs the database. */
async function numbers(sub: string, raw: string[], io: CliIo): Promise<number> {
  const config = await configOf(io);
  const [{ default: pg }, { migrate }, { postgresError }, { numbersCommand }] = await Promise.all([
    import('pg'), import('../store/migrate.js'), import('../core/dependencies.js'), import('./numbers.js'),
  ]);
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
  try {
    await migrate(pool, config.DATABASE_SCHEMA).catch((err: unknown) => {
      throw postgresError(err, config.DATABASE_URL, `migrating schema ${config.DATABASE_SCHEMA}`);
    });
    return await numbersCommand([sub, ...raw], { pool, schema: config.DATABASE_SCHEMA, out: io.out, err: io.err });
  } finally {
    await pool.end();
  }
}

/** pause, resume, status, approve, reject: straight against Redis and PostgreSQL (src/cli/safety.ts). */
const safety = (name: string): Command['run'] => async ({ raw }, io) => {
  const config = await configOf(io);
  return (await import('./safety.js')).safetyCommand(name, raw, { config, out: io.out, err: io.err });
};

export const commands: Record<string, Command> = {
  start: {
    usage: startUsage,
    summary: 'run the service (same as npm start)',
    options: { role: { type: 'string' } },
    positionals: 0,
    // bin/remediator.js starts the service itself (dist/main.js); only --help comes here.
    async run(_args, io) {
      io.err('remediator start runs the service from the command line: npx remediator start, or npm start');
      return 2;
    },
  },
  'rules check': {
    usage: `remediator rules check [--dir DIR] [--env]
    Validates every rule file as the service loads them; prints every problem as
    file:line:col: rule "name": field: message (exit 2). --env: also every secret the rules name
    (token_env, url_env, routing_key_env) must be set in this environment.`,
    summary: 'validate every rule file; --env: and that their secrets are set',
    options: { dir: { type: 'string' }, env: { type: 'boolean' } },
    positionals: 0,
    run: async ({ values }, io, registry) => (await import('./rules.js')).rulesCheck(rulesDir(values, io), values.env ? io.env : undefined, registry, io),
  },
  'rules test': {
    usage: `remediator rules test PAYLOAD.json [--dir DIR] [--json] [--all] [--state]
remediator rules test --alert 'alertname="X",service="y"' [--alert ...] [--resolved] [--dir DIR] [--json] [--all] [--state]
    Per alert: which rules match, the job each would enqueue (action, target, resolved params),
    and the near misses: rules that failed on one matcher only, with that matcher. --all: every
    rule that does not match, with the first matcher that failed (--json always has them all).
    PAYLOAD.json is an Alertmanager webhook body (see demo/webhook.json); --alert builds one from
    a label set, as Alertmanager would send it. Each job shows its budgets and approval; --state
    also whether a pause or quarantine holds it now. Never enqueues, runs a remediation or calls a target.`,
    summary: 'which rules match an alert, the job each would enqueue, and the near misses',
    options: { dir: { type: 'string' }, json: { type: 'boolean' }, all: { type: 'boolean' }, alert: { type: 'string', multiple: true }, resolved: { type: 'boolean' }, state: { type: 'boolean' } },
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
      const state = values.state ? await (await import('./replay.js')).safetyState(await configOf(io)) : undefined;
      return (await import('./rules.js')).rulesTest({ file, alerts, resolved: values.resolved as boolean | undefined }, rulesDir(values, io), { json: Boolean(values.json), all: Boolean(values.all) }, registry, io, state);
    },
  },
  'rules replay': {
    usage: `remediator rules replay --since 24h | --file PAYLOADS [--dir DIR] [--all] [--json]
    What the rules in DIR would have done with past alerts: those of the audit (--since; each with
    its outcome then, only those that would differ unless --all) or webhook bodies (--file: a JSON
    array of bodies, one body, or one body per line). Today's pauses and quarantines (Redis)
    apply; budgets and cooldowns are simulated over the replayed alerts, in order. A run that was
    a dry run then stays one; the DRY_RUN of this shell plays no part.`,
    summary: 'what the rules in DIR would have done with past alerts (audit) or webhook bodies',
    options: { since: { type: 'string' }, file: { type: 'string' }, dir: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } },
    positionals: 0,
    async run({ values }, io, registry) {
      const table = await (await import('../rules/load.js')).loadRules(rulesDir(values, io), registry);
      const v = values as { since?: string; file?: string; all?: boolean; json?: boolean };
      return (await import('./replay.js')).replayCommand(table, v, { config: await configOf(io), out: io.out, err: io.err });
    },
  },
  'remediations list': {
    usage: `remediator remediations list [NAME]
    Each remediation (or just NAME): what it does, its params with their defaults, the fields of
    its target kind, the permissions it needs, and a complete example rules file.`,
    summary: 'params, target fields, permissions and an example of each remediation',
    options: {},
    positionals: 1,
    async run({ positionals }, io, registry) {
      const name = positionals[0];
      if (name !== undefined && !registry.has(name)) {
        io.err(`unknown remediation ${JSON.stringify(name)} (known: ${[...registry.keys()].sort().join(', ')})`);
        return 2;
      }
      (await import('./remediations.js')).listRemediations(registry, name, io.out);
      return 0;
    },
  },
  migrate: {
    usage: `remediator migrate
    Creates or updates remediator's schema (DATABASE_URL, DATABASE_SCHEMA); the service also does at start.`,
    summary: 'create or update the database schema',
    options: {},
    positionals: 0,
    async run(_args, io) {
      const config = await configOf(io);
      const [{ default: pg }, { migrate }, { postgresError }] = await Promise.all([import('pg'), import('../store/migrate.js'), import('../core/dependencies.js')]);
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
  'numbers add': {
    usage: `remediator numbers add <pool> <provider_id> <+E164> [--state spare|active]
    Adds a sender number to a pool (DATABASE_URL, DATABASE_SCHEMA), as a spare unless --state active.`,
    summary: 'add a sender number to a pool',
    run: ({ raw }, io) => numbers('add', raw, io),
  },
  'numbers list': {
    usage: `remediator numbers list [pool]
    Every sender number (of one pool), with its state and cooldown.`,
    summary: 'list sender numbers and their states',
    run: ({ raw }, io) => numbers('list', raw, io),
  },
  'numbers disable': {
    usage: `remediator numbers disable <provider_id>
    Takes a number out of rotation (banned, broken); says when its pool has no active number left.`,
    summary: 'take a sender number out of rotation',
    run: ({ raw }, io) => numbers('disable', raw, io),
  },
  'numbers enable': {
    usage: `remediator numbers enable <provider_id>
    Returns a disabled number to its pool as a spare.`,
    summary: 'return a disabled sender number as a spare',
    run: ({ raw }, io) => numbers('enable', raw, io),
  },
  pause: {
    usage: `remediator pause <all|rule:NAME|action:NAME|target:NAME> --reason TEXT [--until ISO | --for 30m] [--by NAME] [--force]
    Stops automation there: runs are recorded as skipped (paused) until resumed or --until/--for.
    A scope no rule table (RULES_DIR, the live workers) knows is refused unless --force. Says which
    Redis and prefix it wrote to and which live workers read them; exit 3 when none does.
    Straight against Redis and PostgreSQL (REDIS_URL, QUEUE_PREFIX, DATABASE_URL, DATABASE_SCHEMA).`,
    summary: 'stop automation for everything, a rule, an action or a target',
    run: safety('pause'),
  },
  resume: {
    usage: `remediator resume <all|rule:NAME|action:NAME|target:NAME> [--by NAME] [--reason TEXT]
remediator resume --quarantine RULE@TARGET [--by NAME] [--reason TEXT]
    Lifts a pause, or a loop quarantine. Uses REDIS_URL, QUEUE_PREFIX, DATABASE_URL and
    DATABASE_SCHEMA: give the ones of the service whose pause or quarantine it is.`,
    summary: 'lift a pause, or a quarantine (--quarantine RULE@TARGET)',
    run: safety('resume'),
  },
  status: {
    usage: `remediator status [--json]
    Pauses, quarantines, PagerDuty holds and the runs held back so far, by reason.`,
    summary: 'pauses, quarantines, PagerDuty holds, runs held back',
    run: safety('status'),
  },
  approve: {
    usage: `remediator approve <run id> [--by NAME]
    Approves a run waiting for approval (a rule with approval:).`,
    summary: 'approve a run waiting for approval',
    run: safety('approve'),
  },
  reject: {
    usage: `remediator reject <run id> [--by NAME]
    Rejects a run waiting for approval: it is skipped (rejected).`,
    summary: 'reject a run waiting for approval',
    run: safety('reject'),
  },
};

/** `remediator --help`: every command with its synopsis, built from the table so that none is left out. */
export function overview(): string {
  const width = 34;
  const lines = Object.values(commands).flatMap((c) => {
    const synopsis = c.usage.split('\n')[0]!.replace(/^remediator /, '').replace(/\s+\(.*\)$/, '');
    // A long synopsis gets its own line, the summary below it.
    return synopsis.length <= width ? [`  ${synopsis.padEnd(width)}  ${c.summary}`] : [`  ${synopsis}`, `  ${''.padEnd(width)}  ${c.summary}`];
  });
  return `usage: remediator <command> [options]      (remediator <command> --help, or remediator help <command>, for one command)

${lines.join('\n')}

DIR defaults to RULES_DIR, else ./rules.
Exit codes: 0 ok, 1 failure (a dependency down...), 2 bad input or invalid rules.`;
}
