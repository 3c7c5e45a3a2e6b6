import { parseArgs } from 'node:util';
import { commands, overview, type CliIo, type Command } from './cli/commands.js';

export type { CliIo } from './cli/commands.js';

const isHelp = (a: string | undefined) => a === '--help' || a === '-h' || a === 'help';

/** The command `argv` names (one word or two), and the arguments after its name. */
function lookup(argv: string[]): { name: string; command: Command; rest: string[] } | undefined {
  const [cmd, sub] = argv;
  if (cmd !== undefined && commands[cmd]) return { name: cmd, command: commands[cmd], rest: argv.slice(1) };
  const two = `${cmd} ${sub}`;
  if (commands[two]) return { name: two, command: commands[two], rest: argv.slice(2) };
  return undefined;
}

/** The usage of `rules`, `numbers`...: every command of that group. */
function groupUsage(group: string): string | undefined {
  const names = Object.keys(commands).filter((k) => k.startsWith(`${group} `));
  return names.length ? names.map((k) => `usage: ${commands[k]!.usage}`).join('\n\n') : undefined;
}

/** Runs one CLI command; returns the exit code (0 ok, 1 failure, 2 bad input or invalid rules). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [cmd, sub] = argv;
  if (cmd === undefined || isHelp(cmd)) {
    // `remediator help rules test`: that command's usage.
    if (cmd === 'help' && argv.length > 1) return runCli([...argv.slice(1), '--help'], io);
    (cmd ? io.out : io.err)(overview());
    return cmd ? 0 : 2;
  }
  const found = lookup(argv);
  if (!found) {
    // `remediator rules` / `remediator rules --help`: the rules commands.
    const group = groupUsage(cmd);
    if (group && (sub === undefined || isHelp(sub))) {
      (sub ? io.out : io.err)(group);
      return sub ? 0 : 2;
    }
    io.err(`unknown command ${JSON.stringify(argv.slice(0, group ? 2 : 1).join(' '))}`);
    io.err(group ?? overview());
    return 2;
  }
  const { name, command, rest } = found;
  // Before anything is loaded or connected: help needs neither rules nor Redis nor PostgreSQL.
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`usage: ${command.usage}`);
    return 0;
  }
  let args;
  try {
    if (command.options) {
      args = { ...parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true }), raw: rest };
      if (args.positionals.length > (command.positionals ?? 0)) throw new Error(`unexpected argument ${JSON.stringify(args.positionals[command.positionals ?? 0])}`);
    } else args = { values: {}, positionals: [], raw: rest };
  } catch (err) {
    io.err(`remediator ${name}: ${(err as Error).message}`);
    io.err(`usage: ${command.usage}`);
    return 2;
  }
  try {
    const { buildRegistry } = await import('./remediations/registry.js');
    return await command.run(args as { values: Record<string, unknown>; positionals: string[]; raw: string[] }, io, buildRegistry());
  } catch (err) {
    // The error classes of what ran, loaded now so that --help never loads them.
    const [{ RuleLoadError }, { ConfigError }, { LabelSetError }, { DependencyError }] = await Promise.all([
      import('./rules/load.js'), import('./config.js'), import('./cli/alert.js'), import('./core/errors.js'),
    ]);
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
