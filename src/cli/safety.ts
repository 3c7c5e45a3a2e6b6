import { userInfo } from 'node:os';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Config } from '../config.js';
import { silentLogger } from '../log.js';
import { reach, reachLines, type Reach } from '../redis/reach.js';
import { buildRegistry } from '../remediations/registry.js';
import { loadRules } from '../rules/load.js';
import { scopeNames, unknownScope, type ScopeNames } from '../rules/scopes.js';
import { decideApproval, lift, OperatorInputError, pause, resume, status, statusLines } from '../run/operator.js';
import { cliPool, cliRedis } from './connect.js';
import { standaloneOperator } from './operator.js';

/** Exit code of pause, resume and status when no live worker reads what was written (see reach.ts). */
export const NO_LIVE_WORKER = 3;

/**
 * remediator pause | resume | status, straight against Redis and PostgreSQL (REDIS_URL,
 * QUEUE_PREFIX, DATABASE_URL, DATABASE_SCHEMA): it works while the service is down, and every
 * running process sees the change at its next job. Each says where it wrote and how many live
 * workers read there (exit 3 when none does: a wrong REDIS_URL or QUEUE_PREFIX reaches nobody).
 */
export async function safetyCommand(cmd: string, args: string[], o: { config: Config; out: (l: string) => void; err: (l: string) => void }): Promise<number> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const booleans = ['--json', '--force'];
  const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--') && !booleans.includes(args[i - 1]!)));
  const by = `cli:${flag('--by') ?? userInfo().username}`;
  // Both fail as the service does when down: the dependency, its variable and the fix, exit 1.
  const redis: Redis = await cliRedis(o.config);
  let pool: pg.Pool;
  try {
    pool = await cliPool(o.config);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const report = (r: Reach, verb: 'written to' | 'read from') => {
    for (const l of reachLines(r, verb)) (l.startsWith('WARNING') ? o.err : o.out)(l);
    return r.applies === 0 ? NO_LIVE_WORKER : 0;
  };
  let standalone: ReturnType<typeof standaloneOperator> | undefined;
  try {
    standalone = standaloneOperator({ config: o.config, env: process.env, pool, redis, table: () => undefined, log: silentLogger });
    const op = standalone.op;
    if (cmd === 'approve' || cmd === 'reject') {
      const jobId = positional[0];
      if (!jobId) return usageError(o, `${cmd} needs a run id`);
      const r = await decideApproval(op, { jobId, decision: cmd === 'approve' ? 'approved' : 'rejected', by });
      if (!r.ok) return usageError(o, r.error, 1);
      o.out(`run ${jobId} ${r.decision.decision} by ${by}`);
      return 0;
    }
    if (cmd === 'status') {
      const s = await status(op);
      const r = await reach(redis, o.config.QUEUE_PREFIX);
      if (args.includes('--json')) {
        o.out(JSON.stringify({ ...s, reach: r }, null, 2));
        if (r.warning) o.err(`WARNING: ${r.warning}`);
        return r.applies === 0 ? NO_LIVE_WORKER : 0;
      }
      statusLines(s).forEach((l) => o.out(l));
      return report(r, 'read from');
    }
    if (cmd === 'pause') {
      const scope = positional[0];
      if (!scope) return usageError(o, 'pause needs a scope: all, rule:NAME, action:NAME or target:NAME');
      if (!args.includes('--force')) {
        const unknown = unknownScope(scope, await knownScopes(o.config, redis, o.err), [...buildRegistry().keys()]);
        if (unknown) return usageError(o, `${unknown}; nothing paused (--force pauses it anyway)`);
      }
      const p = await pause(op, { scope, by, reason: flag('--reason') ?? '', until: flag('--until'), for: flag('--for') });
      o.out(`paused ${p.scope}${p.until ? ` until ${p.until}` : ''} (by ${p.by}): ${p.reason}`);
      return report(await reach(redis, o.config.QUEUE_PREFIX, p.scope), 'written to');
    }
    const q = flag('--quarantine');
    if (q !== undefined) {
      const lifted = await lift(op, { which: q, by, reason: flag('--reason') });
      if (!lifted) return usageError(o, `${q} is not quarantined`, 1);
      o.out(`quarantine of ${lifted.rule}@${lifted.target} lifted (by ${by})`);
      return 0;
    }
    const scope = positional[0];
    if (!scope) return usageError(o, 'resume needs a scope, or --quarantine RULE@TARGET');
    const old = await resume(op, { scope, by, reason: flag('--reason') });
    if (!old) {
      // Not paused here: perhaps the pause is in another Redis or prefix than this one.
      usageError(o, `${scope} is not paused`, 1);
      report(await reach(redis, o.config.QUEUE_PREFIX), 'read from');
      return 1;
    }
    o.out(`resumed ${old.scope} (paused by ${old.by} at ${old.at})`);
    return report(await reach(redis, o.config.QUEUE_PREFIX), 'written to');
  } catch (err) {
    if (err instanceof OperatorInputError) return usageError(o, err.message);
    throw err;
  } finally {
    await standalone?.close().catch(() => {});
    redis.disconnect();
    await pool.end();
  }
}

/**
 * What a scope may name: the rules in RULES_DIR (when they load here) and those of every live
 * worker (from its heartbeat), so a check from a laptop without the rules still works.
 */
async function knownScopes(config: Config, redis: Redis, err: (l: string) => void): Promise<ScopeNames[]> {
  const known: ScopeNames[] = [];
  try {
    known.push(scopeNames(await loadRules(config.RULES_DIR, buildRegistry())));
  } catch (e) {
    err(`note: rules in RULES_DIR ${config.RULES_DIR} not loaded (${(e as Error).message.split('\n')[0]}); checking the scope against the live workers' rules`);
  }
  const r = await reach(redis, config.QUEUE_PREFIX);
  known.push(...r.workers.map((w) => w.scopes));
  return known;
}

function usageError(o: { err: (l: string) => void }, message: string, code = 2): number {
  o.err(message);
  return code;
}
