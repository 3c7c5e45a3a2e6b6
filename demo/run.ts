/**
 * `npm run demo`: remediator end to end on this machine, with no account anywhere.
 *
 * Starts a stand-in service whose circuit breaker is open (loopback only), starts remediator
 * in this process with the rules in demo/rules (its own DATABASE_SCHEMA and QUEUE_PREFIX),
 * sends one alert exactly as Alertmanager would (webhook v4, bearer token), follows the run
 * through the admin API until it ends, and prints what happened and where to look.
 *
 * Needs PostgreSQL and Redis: DATABASE_URL and REDIS_URL, default 127.0.0.1 as for `npm start`.
 * `DRY_RUN=true npm run demo`: the run checks and reports, the breaker stays open.
 * `npm run demo -- --keep`: leaves remediator running (Ctrl-C stops it) so /api/runs can be browsed.
 * Exit 0 when the run ended as expected, 1 when it did not or a dependency is down, 2 on bad settings.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCli } from '../src/cli.js';
import { webhookFor } from '../src/cli/alert.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { DependencyError } from '../src/core/errors.js';
import { redactUrl } from '../src/core/redact.js';
import { createLogger } from '../src/log.js';
import { RuleLoadError } from '../src/rules/load.js';
import { jobIdFor } from '../src/core/run.js';
import { startService, type Service } from '../src/service.js';
import { StandInBreaker } from './stand-in-breaker.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const RULES = join(HERE, 'rules');
/** The stand-in's address as written in demo/rules, replaced by the one it gets. */
const PLACEHOLDER = '127.0.0.1:9096';
const DEADLINE_MS = 30_000;

const say = (line = '') => process.stdout.write(line + '\n');
/** The demo's own rule on its own target (demo/rules/demo.yml). */
const DEMO_QUARANTINE = 'demo-breaker-open@demo-breaker';
/** Where to go from here: a section of README.md (test/integration/demo.test.ts checks it exists). */
const NEXT = 'README.md, "Quick start" (step 1 runs the service for real)';

/** The environment the CLI needs to see the demo's state rather than the default service's. */
const cliEnv = (c: { QUEUE_PREFIX: string; DATABASE_SCHEMA: string }) => `QUEUE_PREFIX=${c.QUEUE_PREFIX} DATABASE_SCHEMA=${c.DATABASE_SCHEMA}`;

/**
 * `remediator resume --quarantine demo-breaker-open@demo-breaker --by demo` with the demo's
 * settings: true when it lifted a quarantine, false when there was none, an Error otherwise.
 */
async function clearDemoQuarantine(c: { REDIS_URL: string; QUEUE_PREFIX: string; DATABASE_URL: string; DATABASE_SCHEMA: string }): Promise<boolean | Error> {
  const err: string[] = [];
  const env = { REDIS_URL: c.REDIS_URL, QUEUE_PREFIX: c.QUEUE_PREFIX, DATABASE_URL: c.DATABASE_URL, DATABASE_SCHEMA: c.DATABASE_SCHEMA };
  const code = await runCli(['resume', '--quarantine', DEMO_QUARANTINE, '--by', 'demo', '--reason', 'npm run demo starts afresh'], { out: () => {}, err: (l) => err.push(l), env });
  if (code === 0) return true;
  if (code === 1 && err.join('\n') === `${DEMO_QUARANTINE} is not quarantined`) return false;
  return new Error(`could not clear the demo's quarantine: ${err.join('; ')}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    say('usage: npm run demo [-- --keep]    (DATABASE_URL, REDIS_URL, DATABASE_SCHEMA, QUEUE_PREFIX, DRY_RUN, LOG_LEVEL)');
    return 0;
  }
  const env = process.env;
  // Only what the demo needs: no Slack, no PagerDuty, nothing from the caller's own setup.
  const input = {
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    REDIS_URL: env.REDIS_URL || 'redis://127.0.0.1:6379',
    DATABASE_SCHEMA: env.DATABASE_SCHEMA || 'remediator_demo',
    QUEUE_PREFIX: env.QUEUE_PREFIX || 'remediator-demo',
    WEBHOOK_TOKEN: randomBytes(16).toString('hex'),
    ADMIN_TOKEN: randomBytes(16).toString('hex'),
    DRY_RUN: env.DRY_RUN ?? '',
    LOG_LEVEL: env.LOG_LEVEL || 'info',
    SHUTDOWN_GRACE: '2000',
  };
  // The service's own log lines are kept and shown only if something goes wrong (or with LOG_LEVEL set).
  const logLines: string[] = [];
  const log = createLogger(input.LOG_LEVEL as 'info', { service: 'remediator' }, (l) => (env.LOG_LEVEL ? process.stderr.write(l + '\n') : logLines.push(l)));
  const failed = (msg: string) => {
    process.stderr.write(`demo: ${msg}\n`);
    if (logLines.length) process.stderr.write(`remediator's log:\n  ${logLines.join('\n  ')}\n`);
    return 1;
  };

  say('remediator demo: one alert, end to end, on this machine (no accounts anywhere)');
  say();
  const standIn = await new StandInBreaker(randomBytes(16).toString('hex')).start();
  const rulesDir = await mkdtemp(join(tmpdir(), 'remediator-demo-'));
  let service: Service | undefined;
  try {
    say(`1. A stand-in service listens on ${standIn.url} with its circuit breaker ${standIn.state}`);
    say('   (admin API: GET /api/admin/circuit-breaker-status, POST /api/admin/reset-circuit-breaker)');
    for (const f of (await readdir(RULES)).filter((n) => /\.ya?ml$/.test(n))) {
      const text = await readFile(join(RULES, f), 'utf8');
      await writeFile(join(rulesDir, f), text.replaceAll(PLACEHOLDER, standIn.url.replace('http://', '')));
    }

    let config;
    try {
      config = loadConfig({ ...input, RULES_DIR: rulesDir });
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`demo: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    try {
      service = await startService(config, { env: { DEMO_BREAKER_TOKEN: standIn.token }, log });
    } catch (err) {
      if (err instanceof DependencyError) {
        process.stderr.write(`demo: cannot start remediator: ${err.message}\n  fix: ${err.fix}\n`);
        return 1;
      }
      if (err instanceof RuleLoadError) return failed(err.message);
      throw err;
    }
    const url = service.url!;
    say(`2. remediator listens on ${url} with the rules in ${relative(process.cwd(), RULES) || '.'} (${service.table().rules.length} rule)${config.DRY_RUN ? ', DRY_RUN=true' : ''}`);
    say(`   PostgreSQL ${redactUrl(config.DATABASE_URL)} schema ${config.DATABASE_SCHEMA}; Redis ${redactUrl(config.REDIS_URL)} prefix ${config.QUEUE_PREFIX}`);

    // The demo fires the same alert at the same target on every run, which the loop detection
    // rightly calls an ineffective fix: a few runs within verify_window would quarantine the demo's
    // rule and the next demo would end skipped. So each run first clears that state of its own rule
    // on its own target (the operator's `resume --quarantine`, which also resets the streak), under
    // its own QUEUE_PREFIX, and says so when there was a quarantine to lift.
    const cleared = await clearDemoQuarantine(config);
    if (cleared instanceof Error) return failed(cleared.message);
    if (cleared) say(`   (lifted the quarantine an earlier demo left on ${DEMO_QUARANTINE}: the demo repeats one alert on one target)`);

    const labels = { alertname: 'CircuitBreakerOpen', service: 'demo', severity: 'critical' };
    const body = webhookFor([{ labels, annotations: { summary: 'Circuit breaker of demo open for 5 minutes' } }]);
    const alert = body.alerts[0]!;
    // The receiver's job id for this firing and rule: the run to follow, not an earlier demo's.
    const jobId = jobIdFor(alert.fingerprint, alert.startsAt, 'demo-breaker-open');
    const res = await fetch(`${url}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${config.WEBHOOK_TOKEN}` },
      body: JSON.stringify(body),
    });
    const answer = await res.text();
    say(`3. Alertmanager's webhook (v4) for ${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ')}:`);
    say(`   POST ${url}/webhooks/alertmanager -> ${res.status} ${answer}`);
    if (res.status !== 200) return failed(`the webhook was not accepted (${res.status})`);

    const admin = { authorization: `Bearer ${config.ADMIN_TOKEN}` };
    const run = await follow(`${url}/api/runs/${jobId}`, admin);
    if (!run) return failed(`the run did not end within ${DEADLINE_MS / 1000} s`);
    say(`4. The run ${run.job_id} (rule ${run.rule}, ${run.action} on ${run.target}):`);
    for (const e of run.events) say(`   ${e.state.padEnd(9)} ${e.message}`);
    say(`   => ${run.state}${run.error_reason ? ` (${run.error_reason})` : ''} after ${run.attempts} attempt${run.attempts === 1 ? '' : 's'}, ${run.duration_ms ?? '?'} ms`);
    say(`   The stand-in's breaker is now ${standIn.state} (${standIn.resets} reset${standIn.resets === 1 ? '' : 's'} received).`);
    say();
    const psql = `psql '${redactUrl(config.DATABASE_URL)}' -c 'SELECT queued_at, rule, state, summary FROM ${config.DATABASE_SCHEMA}.runs ORDER BY queued_at DESC LIMIT 5'`;
    say('Where to see it:');
    say(`   curl -s -H 'Authorization: Bearer ${config.ADMIN_TOKEN}' ${url}/api/runs${values.keep ? '' : '      (while it runs: npm run demo -- --keep)'}`);
    say(`   ${psql}      (the audit stays after the demo)`);
    say(`   ${cliEnv(config)} npx remediator status      (the CLI needs the demo's prefix and schema)`);
    say(config.DRY_RUN ? `Next: npm run demo (without DRY_RUN: it resets the breaker); then ${NEXT}.` : `Next: DRY_RUN=true npm run demo (checks and reports, changes nothing); then ${NEXT}.`);

    const expected = config.DRY_RUN ? 'dry_run' : 'succeeded';
    if (run.state !== expected) {
      // A pause or a quarantine of the demo's own state is lifted with the demo's prefix and schema.
      const hint = run.state === 'skipped' ? `\n  the demo's safety state is under its own prefix: ${cliEnv(config)} npx remediator status (and resume ...)` : '';
      return failed(`the run ended ${run.state}, expected ${expected}${hint}`);
    }
    if (values.keep) {
      say();
      say('remediator keeps running; Ctrl-C stops it.');
      await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    }
    return 0;
  } finally {
    await service?.close();
    await standIn.stop();
    await rm(rulesDir, { recursive: true, force: true });
  }
}

interface Run {
  job_id: string;
  rule: string;
  action: string;
  target: string | null;
  state: string;
  attempts: number;
  duration_ms: number | null;
  summary: string | null;
  error_reason: string | null;
  events: { state: string; message: string }[];
}

/** Polls GET /api/runs/:id (404 until the audit has it) until the run is final; undefined after the deadline. */
async function follow(url: string, headers: Record<string, string>): Promise<Run | undefined> {
  const end = Date.now() + DEADLINE_MS;
  while (Date.now() < end) {
    const res = await fetch(url, { headers });
    if (res.ok) {
      const { run, events } = (await res.json()) as { run: Omit<Run, 'events'>; events: Run['events'] };
      if (['succeeded', 'failed', 'skipped', 'dry_run', 'notified'].includes(run.state)) return { ...run, events };
    } else await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
