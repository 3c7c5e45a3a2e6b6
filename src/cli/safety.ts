import { userInfo } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../store/migrate.js';
import type { Config } from '../config.js';
import { postgresError, redisError } from '../core/dependencies.js';
import { silentLogger } from '../log.js';
import { decideApproval, lift, OperatorInputError, pause, resume, status, statusLines } from '../run/operator.js';
import { standaloneOperator } from './operator.js';

/**
 * remediator pause | resume | status, straight against Redis and PostgreSQL (REDIS_URL,
 * QUEUE_PREFIX, DATABASE_URL, DATABASE_SCHEMA): it works while the service is down, and every
 * running process sees the change at its next job.
 */
export async function safetyCommand(cmd: string, args: string[], o: { config: Config; out: (l: string) => void; err: (l: string) => void }): Promise<number> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--') && args[i - 1] !== '--json'));
  const by = `cli:${flag('--by') ?? userInfo().username}`;
  // No retries: a CLI says at once that Redis is down (as a DependencyError naming REDIS_URL), instead of ioredis' unhandled-error stack.
  const redis = new Redis(o.config.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 3000, lazyConnect: true, retryStrategy: () => null });
  let lastError: unknown;
  redis.on('error', (err) => (lastError = err));
  const pool = new pg.Pool({ connectionString: o.config.DATABASE_URL, max: 2 });
  let standalone: ReturnType<typeof standaloneOperator> | undefined;
  try {
    await redis.connect().catch((err: unknown) => {
      throw redisError(lastError ?? err, o.config.REDIS_URL);
    });
    await migrate(pool, o.config.DATABASE_SCHEMA).catch((err: unknown) => {
      throw postgresError(err, o.config.DATABASE_URL, `migrating schema ${o.config.DATABASE_SCHEMA}`);
    });
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
      if (args.includes('--json')) o.out(JSON.stringify(s, null, 2));
      else statusLines(s).forEach((l) => o.out(l));
      return 0;
    }
    if (cmd === 'pause') {
      const scope = positional[0];
      if (!scope) return usageError(o, 'pause needs a scope: all, rule:NAME, action:NAME or target:NAME');
      const p = await pause(op, { scope, by, reason: flag('--reason') ?? '', until: flag('--until'), for: flag('--for') });
      o.out(`paused ${p.scope}${p.until ? ` until ${p.until}` : ''} (by ${p.by}): ${p.reason}`);
      return 0;
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
    if (!old) return usageError(o, `${scope} is not paused`, 1);
    o.out(`resumed ${old.scope} (paused by ${old.by} at ${old.at})`);
    return 0;
  } catch (err) {
    if (err instanceof OperatorInputError) return usageError(o, err.message);
    throw err;
  } finally {
    await standalone?.close().catch(() => {});
    redis.disconnect();
    await pool.end();
  }
}

function usageError(o: { err: (l: string) => void }, message: string, code = 2): number {
  o.err(message);
  return code;
}
