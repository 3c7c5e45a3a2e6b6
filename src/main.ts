import { startUsage } from './cli/start-usage.js';
import { ConfigError, loadConfig } from './config.js';
import { DependencyError } from './core/errors.js';
import { exitOnSignals, SHUTDOWN_MARGIN_MS } from './lifecycle.js';
import { createLogger } from './log.js';
import { RuleLoadError } from './rules/load.js';
import { startService } from './service.js';

/** `npm start`: one process with the receiver and the workers (REMEDIATOR_ROLE splits them). */
async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`usage: ${startUsage}\n`);
    process.exit(0);
  }
  // `npm start -- --role worker` is the same as REMEDIATOR_ROLE=worker.
  const i = process.argv.findIndex((a) => a === '--role' || a.startsWith('--role='));
  if (i >= 0) {
    const arg = process.argv[i]!;
    process.env.REMEDIATOR_ROLE = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : (process.argv[i + 1] ?? '');
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`remediator: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.LOG_LEVEL, { service: 'remediator' });
  let service;
  try {
    service = await startService(config, { env: process.env, log, watchRules: true });
  } catch (err) {
    if (err instanceof RuleLoadError) {
      process.stderr.write(`remediator: cannot start: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof DependencyError) {
      // Exit 1, not 2: nothing in the configuration may be wrong; the orchestrator's restart retries.
      process.stderr.write(`remediator: cannot start: ${err.message}\n  fix: ${err.fix} (README: Troubleshooting)\n`);
      process.exit(1);
    }
    log.error('cannot start', { error: (err as Error).message });
    process.exit(1);
  }
  process.on('SIGHUP', () => void service.reload('SIGHUP'));
  exitOnSignals({ close: () => service.close(), log, deadlineMs: config.SHUTDOWN_GRACE + SHUTDOWN_MARGIN_MS });
}

void main();
