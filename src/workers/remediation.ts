import { DelayedError, UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { PermanentError, reasonOf } from '../core/errors.js';
import { incidentKey, type JobSpec, type Outcome, type RunEvent } from '../core/run.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Registry } from '../remediations/registry.js';
import type { RemediationDeps } from '../remediations/types.js';
import type { RuleTable } from '../rules/load.js';
import type { Approvals } from '../redis/approvals.js';
import { isRedisConnectionError } from '../redis/health.js';
import type { SafetyState } from '../redis/safety-state.js';
import { TargetLock } from '../redis/target-lock.js';
import { QUEUES } from '../redis/connection.js';
import { execute } from '../run/execute.js';
import { lockKeyOf } from '../run/placement.js';
import { startCooldown } from '../run/gates/cooldown.js';
import { runGates, type GateContext } from '../run/gates/index.js';
import type { Journal, RunRef } from '../run/journal.js';
import type { SafetyAudit } from '../store/safety-audit.js';
import type { RunReader } from '../store/runs.js';
import { scheduleVerify } from './verify.js';

export interface RemediationWorkerOptions {
  connection: Redis;
  /** This worker's remediation queue (one shard's; a released target wakes the next run waiting for it there). */
  queue: Queue;
  /** That queue's prefix (the shard's); `prefix` is the global one (locks, safety state). Default: `prefix`. */
  queuePrefix?: string;
  /** A separate non-blocking connection for locks and the safety state. */
  redis: Redis;
  prefix: string;
  table: () => RuleTable;
  registry: Registry;
  journal: Journal;
  runs: RunReader;
  deps: RemediationDeps;
  log: Logger;
  concurrency?: number;
  /** Aborted on shutdown after the grace period: running remediations stop and are handed back. */
  shutdown?: AbortSignal;
  /** BullMQ job lock (renewed while the job runs); a dead worker's job runs again after about this long. */
  lockMs?: number;
  /** Pauses, budgets, quarantines, human acknowledgments, approvals: shared by every process. */
  safety: { state: SafetyState; audit: SafetyAudit; approvals: Approvals; verify: Queue };
  /** Counts ended runs and times them, for /metrics. */
  metrics?: Metrics;
}

/**
 * Runs remediation jobs: a thin adapter around "take a job, run the gates, execute, record".
 * Every event goes through the journal. Permanent errors become UnrecoverableError here, and only
 * here; a job waiting (another run holds its target, an approval) is delayed without using an attempt.
 */
export function startRemediationWorker(o: RemediationWorkerOptions): Worker {
  const lock = new TargetLock(o.redis, o.prefix);
  const worker = new Worker(QUEUES.remediations, (job: Job<JobSpec>, token?: string) => processJob(o, lock, job, token), {
    connection: o.connection,
    prefix: o.queuePrefix ?? o.prefix,
    concurrency: o.concurrency ?? 8,
    // BullMQ renews the lock every lockDuration/2 while a job runs, so long remediations keep it;
    // when a worker dies, its job is found stalled after about one lock period and runs again.
    lockDuration: o.lockMs ?? 30_000,
    stalledInterval: o.lockMs ?? 30_000,
    maxStalledCount: 2,
  });
  // Lost Redis is logged once by the connections' RedisHealth; anything else is a worker problem.
  worker.on('error', (err) => isRedisConnectionError(err) || o.log.error('remediation worker error', { error: err }));
  return worker;
}

/** A run waiting for a busy target comes back after this at the latest (its waker died). */
const LOCK_WAIT_FALLBACK_MS = 10_000;

/**
 * The target was handed to `jobId`, first in its line: wake it (promote it once it is a delayed
 * job; it may still be moving there, a few milliseconds after it joined the line). A job that no
 * longer waits (finished, removed) cannot take it: release on its behalf, to the next in line.
 * Gives up quietly after a while: the fallback delay brings the job back, and it holds the lock.
 */
async function handTo(queue: Queue, lock: TargetLock, lockKey: string, jobId: string, ttlMs: number): Promise<void> {
  let next: string | undefined = jobId;
  for (let hops = 0; next && hops < 100; hops++) {
    const state = await stateOf(queue, next);
    if (state === 'delayed' || state === 'waiting' || state === 'prioritized' || state === 'active') return;
    next = await lock.release(lockKey, next, ttlMs).catch(() => undefined);
  }
}

/** A job's state once it is settled somewhere other than "moving to delayed"; promotes it when it is delayed. */
async function stateOf(queue: Queue, jobId: string): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const job = await queue.getJob(jobId).catch(() => undefined);
    if (!job) return 'missing';
    const state = await job.getState().catch(() => 'unknown');
    if (state === 'delayed') {
      await job.promote().catch(() => {});
      return state;
    }
    if (state !== 'active') return state;
    await new Promise((r) => setTimeout(r, 25));
  }
  return 'active';
}

async function processJob(o: RemediationWorkerOptions, lock: TargetLock, job: Job<JobSpec>, token?: string): Promise<void> {
  const spec = job.data;
  const attempt = job.attemptsMade + 1;
  const maxAttempts = job.opts.attempts ?? 1;
  const log = o.log.child({ job: spec.jobId, rule: spec.rule, fingerprint: spec.alert.fingerprint, action: spec.action, target: spec.target, attempt });
  const ref: RunRef = { jobId: spec.jobId, rule: spec.rule, dryRun: spec.dryRun };
  const record = (e: RunEvent) => o.journal.record(ref, { attempt, ...e });
  let startedAtMs: number | undefined;
  const end = async (outcome: Outcome, message: string, extra: Omit<RunEvent, 'type' | 'message'> = {}) => {
    o.metrics?.runs.inc({ action: spec.action, rule: spec.rule, outcome });
    if (startedAtMs !== undefined) o.metrics?.runDuration.observe({ action: spec.action, outcome }, (performance.now() - startedAtMs) / 1000);
    await record({ type: outcome, message, ...extra });
    // One line per state change; a failure is an error line, so it is found by level alone.
    (outcome === 'failed' ? log.error : log.info)('run ended', { state: outcome, summary: message, reason: extra.reason, error: extra.error });
  };

  const table = o.table();
  const rule = table.rules.find((r) => r.spec.name === spec.rule);
  let run = await o.journal.load(spec.jobId);
  if (!run) {
    // A job queued before the journal took runs in at intake, or added by hand: give it its run.
    const pd = rule?.spec.notify.pagerduty;
    await o.journal.ensureRun(spec, new Date(job.timestamp).toISOString(), incidentKey(pd ? pd.dedup : 'group_key', spec));
    run = (await o.journal.load(spec.jobId))!;
  }
  ref.incident = run.incident_key ?? undefined;
  if (!rule || rule.spec.action !== spec.action) {
    await end('failed', `Rule ${spec.rule} is no longer in the rule table (or changed its action): not run.`, { reason: 'rule_removed' });
    throw new UnrecoverableError('rule removed');
  }
  if (spec.refusal) {
    await end('failed', `Not run: ${spec.refusal.message}`, { reason: spec.refusal.reason, error: spec.refusal.message });
    throw new UnrecoverableError(spec.refusal.message);
  }

  // One run at a time per target (src/run/placement.ts says which runs take the lock).
  const lockKey = lockKeyOf(spec, rule.spec) ?? '';
  const needsLock = lockKey !== '';
  const held = !needsLock || (await lock.acquire(lockKey, spec.jobId, rule.spec.timeout + 60_000));
  if (!held) {
    // Another run acts on this target now: wait in line without using an attempt. The run that
    // releases the target wakes this job; the fallback only covers a releaser that died.
    await job.moveToDelayed(Date.now() + LOCK_WAIT_FALLBACK_MS, token);
    throw new DelayedError();
  }
  let abandoned: Promise<unknown> | undefined;
  let cooling = false;
  const ctx: GateContext = {
    spec, rule, table, run, attempt, firstTry: job.attemptsMade === 0, now: o.deps.now(), journal: o.journal,
    safety: o.safety.state, safetyAudit: o.safety.audit, approvals: o.safety.approvals,
    say: async (message, details) => void (await record({ type: 'step', message, details })),
  };
  const cool = async () => {
    if (cooling) return;
    cooling = true;
    await startCooldown(ctx, o.deps.now());
  };
  try {
    const verdict = await runGates(ctx);
    if (verdict && 'done' in verdict) {
      await record({ type: 'note', message: verdict.done });
      log.info('duplicate of a finished run, not run again', { state: run.state });
      return;
    }
    if (verdict && 'until' in verdict) {
      // Waiting for a person: the job comes back at the deadline (or when released) without using an attempt; the finally frees the target.
      await job.moveToDelayed(verdict.until, token);
      throw new DelayedError();
    }
    if (verdict) {
      await end('skipped', verdict.message, { reason: verdict.skip, details: verdict.details, page: verdict.page });
      await o.safety.state.count(verdict.skip).catch((e: Error) => log.warn('could not count the safety decision', { error: e.message }));
      return;
    }
    startedAtMs = performance.now();
    log.info('run started', { state: 'running', waitedMs: Date.now() - job.timestamp });
    await record({ type: 'running', message: `Attempt ${attempt} started${spec.dryRun ? ' (dry run)' : ''}` });
    const result = await execute({
      remediation: o.registry.get(spec.action), rule, table, spec, attempt, log, deps: o.deps, shutdown: o.shutdown,
      history: async () => (run.acted_at || run.attempts > 0 ? o.runs.runEvents(spec.jobId) : []),
      step: async (message, details, acted) => {
        // The intent is durable before the call that changes the target; the cooldown starts with it.
        await record({ type: 'step', message, details, acted });
        if (acted) await cool();
      },
      onAbandoned: (p) => (abandoned = p),
    });
    if (result.outcome === 'succeeded' || result.outcome === 'notified') await cool();
    await end(result.outcome, result.summary, { details: result.details });
    if (result.outcome === 'succeeded' && !spec.dryRun) {
      // Judge the fix at the end of its verify_window (loop and flap detection, src/run/verdict.ts).
      const finished = o.deps.now();
      await o.safety.state.setPendingFix(spec.rule, spec.target ?? '', spec.jobId, finished, rule.spec.verify_window + 3_600_000)
        .catch((e: Error) => log.warn('could not keep the fix for its verdict', { error: e.message }));
      await scheduleVerify(o.safety.verify, { runId: spec.jobId, rule: spec.rule, target: spec.target ?? '', windowMs: rule.spec.verify_window })
        .catch((e: Error) => log.warn('could not schedule the fix verification', { error: e.message }));
    }
  } catch (err) {
    if (err instanceof DelayedError) throw err;
    if (o.shutdown?.aborted && !(err instanceof PermanentError)) {
      // Interrupted by our own shutdown: hand the job back without using up an attempt.
      await record({ type: 'retrying', message: 'Interrupted by a worker shutdown; handed back to the queue.', reason: 'unavailable' })
        .catch((e: Error) => log.warn('could not record the hand-back', { error: e.message }));
      log.warn('run interrupted by shutdown, handed back to the queue', { state: 'retrying' });
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    const permanent = err instanceof PermanentError;
    const final = permanent || attempt >= maxAttempts;
    const message = (err as Error).message;
    const reason = reasonOf(err);
    const details = (err as PermanentError).details;
    if (final) {
      await end('failed', `Failed after ${attempt} attempt${attempt > 1 ? 's' : ''}: ${message}`, { reason, error: message, details });
    } else {
      await record({ type: 'retrying', message: `Attempt ${attempt} failed: ${message}`, reason, error: message, details });
      log.warn('attempt failed, will retry', { reason, error: message });
    }
    if (permanent) throw new UnrecoverableError(message);
    throw err;
  } finally {
    const release = (owner: string) =>
      lock.release(lockKey, owner, rule.spec.timeout + 60_000).then(
        (next) => (next ? handTo(o.queue, lock, lockKey, next, rule.spec.timeout + 60_000) : undefined),
        (e: Error) => log.warn('could not release target lock', { error: e.message }),
      );
    if (abandoned && needsLock) {
      // A remediation left running past its deadline keeps the target until it ends (or the lock's
      // TTL passes), under an owner that this job's own retry does not match.
      const owner = `${spec.jobId}:abandoned:${attempt}`;
      const kept = await lock.handOver(lockKey, spec.jobId, owner).catch((e: Error) => (log.warn('could not hand the target lock over', { error: e.message }), false));
      void abandoned.then(() => (kept ? release(owner) : undefined));
    } else if (needsLock) {
      await release(spec.jobId);
    }
  }
}
