import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { finalStates, type AuditStore, type RunState } from '../store/journal-store.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventSink, RunEvent } from '../notifiers/events.js';
import { publishSafely } from '../notifiers/sink.js';
import { formatDuration } from '../rules/duration.js';
import type { CompiledRule, RuleTable } from '../rules/load.js';
import type { JobSpec } from '../core/run.js';
import { abortMessage, deadline, DeadlineError } from '../core/deadline.js';
import { PermanentError, reasonOf, TransientError } from '../core/errors.js';
import type { Registry } from '../remediations/registry.js';
import type { RemediationDeps, RemediationResult } from '../remediations/types.js';
import { untilStored } from '../store/retry.js';
import { QUEUES } from '../redis/connection.js';
import { checkGates } from '../run/gates.js';
import type { SafetyStore } from '../redis/safety-state.js';
import type { SafetyAudit } from '../store/safety-audit.js';
import type { Approvals } from '../redis/approvals.js';
import { scheduleVerify } from './verify.js';
import { isRedisConnectionError } from '../redis/health.js';
import { TargetLock } from '../redis/target-lock.js';

/** How long a remediation gets to unwind after its deadline before it is left running on its own. */
const UNWIND_MS = 1000;

export interface RemediationWorkerOptions {
  connection: Redis;
  /** A separate non-blocking connection for locks. */
  redis: Redis;
  prefix: string;
  table: () => RuleTable;
  registry: Registry;
  audit: AuditStore;
  sink: EventSink;
  deps: RemediationDeps;
  log: Logger;
  concurrency?: number;
  /** Aborted on shutdown after the grace period: running remediations stop and are retried. */
  shutdown?: AbortSignal;
  /** BullMQ job lock (renewed while the job runs); a dead worker's job runs again after about this long. */
  lockMs?: number;
  /** Pauses, budgets, quarantines, human acknowledgments (src/safety), shared by every process. */
  safety: { store: SafetyStore; audit: SafetyAudit; approvals: Approvals; verify: Queue };
  /** Counts ended runs and times them, for /metrics. */
  metrics?: Metrics;
}

/**
 * Runs remediation jobs. The order of checks matters: the rule must still exist, the job must not
 * repeat a firing already handled, the target lock serialises remediations on one target, and
 * the cooldown is checked under that lock. Permanent errors become UnrecoverableError here, and
 * only here.
 */
export function startRemediationWorker(o: RemediationWorkerOptions): Worker {
  const lock = new TargetLock(o.redis, o.prefix);
  const worker = new Worker(QUEUES.remediations, (job: Job<JobSpec>, token?: string) => processJob(o, lock, job, token), {
    connection: o.connection,
    prefix: o.prefix,
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

async function processJob(o: RemediationWorkerOptions, lock: TargetLock, job: Job<JobSpec>, token?: string): Promise<void> {
  const spec = job.data;
  const attempt = job.attemptsMade + 1;
  const maxAttempts = job.opts.attempts ?? 1;
  const log = o.log.child({ job: spec.jobId, rule: spec.rule, fingerprint: spec.alert.fingerprint, action: spec.action, target: spec.target, attempt });
  const rule = o.table().rules.find((r) => r.spec.name === spec.rule);
  const notify = rule?.spec.notify ?? {};
  const publish = (type: RunEvent['type'], message: string, extra: Partial<RunEvent> = {}) =>
    publishSafely(o.sink, {
      type, message, jobId: spec.jobId, rule: spec.rule, action: spec.action, target: spec.target, alert: spec.alert,
      groupKey: spec.groupKey, receiver: spec.receiver, externalURL: spec.externalURL, dryRun: spec.dryRun, attempt,
      notify, at: new Date().toISOString(), ...extra,
    }, log);
  // Audit writes wait out a PostgreSQL outage (delay, never a lost record nor a used attempt).
  const stored = <T>(what: string, fn: () => Promise<T>) => untilStored(what, fn, { log, signal: o.shutdown });
  let startedAtMs: number | undefined;
  const end = async (state: RunState, summary: string, extra: { details?: Record<string, unknown>; reason?: string; error?: string; page?: string } = {}) => {
    const at = o.deps.now();
    const { page, ...recorded } = extra;
    o.metrics?.runs.inc({ action: spec.action, rule: spec.rule, outcome: state });
    if (startedAtMs !== undefined) o.metrics?.runDuration.observe({ action: spec.action, outcome: state }, (performance.now() - startedAtMs) / 1000);
    await stored('run ended', () => o.audit.runEnded(spec, { state, attempt, summary, at, ...recorded }));
    await publish(state as RunEvent['type'], summary, { details: extra.details, reason: extra.reason as RunEvent['reason'], ...(page ? { page } : {}) });
    // One line per state change; a failure is an error line, so it is found by level alone.
    (state === 'failed' ? log.error : log.info)('run ended', { state, summary, reason: extra.reason, error: extra.error });
  };

  if (!rule || rule.spec.action !== spec.action) {
    await end('failed', `Rule ${spec.rule} is no longer in the rule table (or changed its action): not run.`, { reason: 'rule_removed' });
    throw new UnrecoverableError('rule removed');
  }
  if (spec.refusal) {
    await end('failed', `Not run: ${spec.refusal.message}`, { reason: spec.refusal.reason, error: spec.refusal.message });
    throw new UnrecoverableError(spec.refusal.message);
  }
  // The same job id again after its run finished: BullMQ freed the id after the retention, or the
  // worker died between recording the outcome and completing the job. Never run it twice, and
  // keep the recorded outcome.
  const previous = await stored('read run', () => o.audit.getRun(spec.jobId));
  if (previous && finalStates.includes(previous.state) && previous.attempts > 0 && job.attemptsMade === 0) {
    await stored('run event', () => o.audit.addEvent(spec.jobId, 'skipped', attempt, `This firing was already handled (${previous.state}); not run again.`));
    log.info('duplicate of a finished run, not run again', { state: previous.state });
    return;
  }
  const earlier = await stored('find earlier run', () => o.audit.findEarlierRun(spec));
  if (earlier) {
    await end('skipped', `Duplicate: this firing was already handled by run ${earlier.job_id} (${earlier.state}).`, { reason: 'duplicate' });
    return;
  }

  // One run at a time per target. A rule without a target (notify) touches nothing: its runs need
  // the lock only for the cooldown check, which must not race; otherwise a storm of notify runs
  // would go through one at a time (each other one delayed 2-3 s), as it did.
  const needsLock = spec.target !== undefined || rule.spec.cooldown !== undefined;
  const lockKey = `${spec.action}:${spec.target ?? spec.rule}`;
  const held = !needsLock || (await lock.acquire(lockKey, spec.jobId, rule.spec.timeout + 60_000));
  if (!held) {
    // Another run acts on this target now: come back shortly without using an attempt.
    await job.moveToDelayed(Date.now() + 2000 + Math.floor(Math.random() * 1000), token);
    throw new DelayedError();
  }
  let abandoned: Promise<unknown> | undefined;
  try {
    if (rule.spec.cooldown) {
      const recent = await stored('cooldown check', () => o.audit.recentRunOnTarget(spec, rule.spec.cooldown!, o.deps.now()));
      if (recent) {
        await end('skipped', `Cooldown: rule ${spec.rule} already ran on ${spec.target ?? 'this target'} at ${recent.started_at?.toISOString()} (cooldown ${formatDuration(rule.spec.cooldown)}).`, { reason: 'cooldown' });
        return;
      }
    }
    // Pauses, loop quarantine, a person's PagerDuty acknowledgment, an alert already resolved, budgets.
    const gate = await checkGates({
      store: o.safety.store, audit: o.audit, safetyAudit: o.safety.audit, approvals: o.safety.approvals, rule, table: o.table(), spec, now: o.deps.now(),
      say: async (message, details) => {
        await stored('run event', () => o.audit.addEvent(spec.jobId, 'step', attempt, message, details));
        await publish('step', message, { details });
      },
    });
    if (gate && 'waitMs' in gate) {
      // Waiting for a person: the job comes back later without using an attempt; the finally frees the target.
      await job.moveToDelayed(Date.now() + gate.waitMs, token);
      throw new DelayedError();
    }
    if (gate) {
      await end('skipped', gate.message, { reason: gate.reason, details: gate.details, page: gate.page });
      await o.safety.store.count(gate.reason).catch((e: Error) => log.warn('could not count the safety decision', { error: e.message }));
      return;
    }
    const startedAt = o.deps.now();
    await stored('run started', () => o.audit.runStarted(spec, attempt, new Date(job.timestamp), startedAt));
    startedAtMs = performance.now();
    log.info('run started', { state: 'running', waitedMs: startedAt.getTime() - job.timestamp });
    await publish('running', `Attempt ${attempt} of ${maxAttempts} started${spec.dryRun ? ' (dry run)' : ''}.`);
    const result = await runRemediation(o, rule, spec, attempt, log, publish, (p) => (abandoned = p));
    const state: RunState = result.outcome;
    await end(state, result.summary, { details: result.details });
    if (state === 'succeeded' && !spec.dryRun) {
      // Judge the fix at the end of its verify_window (loop and flap detection, src/safety/loop.ts).
      await scheduleVerify(o.safety.verify, { runId: spec.jobId, rule: spec.rule, target: spec.target ?? '', windowMs: rule.spec.verify_window })
        .catch((e: Error) => log.warn('could not schedule the fix verification', { error: e.message }));
    }
  } catch (err) {
    if (err instanceof DelayedError) throw err;
    if (o.shutdown?.aborted && !(err instanceof PermanentError)) {
      // Interrupted by our own shutdown: hand the job back without using up an attempt.
      await o.audit
        .runEnded(spec, { state: 'retrying', attempt, summary: 'Interrupted by a worker shutdown; handed back to the queue.', reason: 'unavailable', at: o.deps.now() })
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
      const at = o.deps.now();
      await stored('run retrying', () => o.audit.runEnded(spec, { state: 'retrying', attempt, summary: `Attempt ${attempt} failed: ${message}`, reason, error: message, details, at }));
      await publish('retrying', `Attempt ${attempt} of ${maxAttempts} failed: ${message}. Retrying.`, { reason, details });
      log.warn('attempt failed, will retry', { reason, error: message });
    }
    if (permanent) throw new UnrecoverableError(message);
    throw err;
  } finally {
    const release = (owner: string) => lock.release(lockKey, owner).catch((e: Error) => log.warn('could not release target lock', { error: e.message }));
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

async function runRemediation(
  o: RemediationWorkerOptions,
  rule: CompiledRule,
  spec: JobSpec,
  attempt: number,
  log: Logger,
  publish: (type: RunEvent['type'], message: string, extra?: Partial<RunEvent>) => Promise<void>,
  onAbandoned: (stillRunning: Promise<unknown>) => void,
): Promise<RemediationResult> {
  const remediation = o.registry.get(spec.action);
  if (!remediation) throw new PermanentError('bad_params', `action ${spec.action} is not registered`);
  let target: unknown;
  if (remediation.targetKind !== null) {
    const t = spec.target === undefined ? undefined : o.table().targets.get(spec.target);
    if (!t || t.kind !== remediation.targetKind) {
      throw new PermanentError('refused_target', `target ${JSON.stringify(spec.target)} is not a declared ${remediation.targetKind} target`);
    }
    target = t.config;
  }
  const params = (remediation.paramsSchema as z.ZodTypeAny).safeParse(spec.params);
  if (!params.success) {
    const i = params.error.issues[0]!;
    throw new PermanentError('bad_params', `params.${i.path.join('.')}: ${i.message}`);
  }
  // What earlier attempts of this run did to the target (steps marked `acted`), from the audit.
  const acted = (await untilStored('read run history', () => o.audit.runEvents(spec.jobId), { log, signal: o.shutdown })).filter(
    (e) => e.state === 'step' && (e.details as { acted?: unknown } | null)?.acted === true,
  );
  // The rule's timeout bounds the whole run, shutdown included; the race below frees this worker
  // slot at the deadline even when a remediation ignores its signal.
  const run = deadline('rule timeout', rule.spec.timeout, [o.shutdown]);
  const work = remediation.run({
    params: params.data,
    target,
    targetName: spec.target ?? '',
    alert: spec.alert,
    ruleName: spec.rule,
    dryRun: spec.dryRun,
    runId: spec.jobId,
    attempt,
    signal: run.signal,
    log,
    deps: o.deps,
    step: async (message, details, opts) => {
      const d = opts?.acted ? { ...details, acted: true } : details;
      await untilStored('run step', () => o.audit.addEvent(spec.jobId, 'step', attempt, message, d), { log, signal: run.signal });
      await publish('step', message, { details: d });
    },
  });
  const outcome = work.then(
    (value): Outcome => ({ ok: true, value }),
    (error: unknown): Outcome => ({ ok: false, error }),
  );
  try {
    return truthful(await run.race(work), acted);
  } catch (err) {
    if (!run.signal.aborted) throw err;
    // A remediation that honours its signal unwinds within moments, and says what it was doing.
    const late = await Promise.race([outcome, sleep(UNWIND_MS, undefined, { ref: false })]);
    if (late?.ok) return truthful(late.value, acted); // it finished as the deadline fired: that is its outcome
    if (!late) {
      // It ignores its signal: the slot is freed anyway; the target lock stays with it (up to the lock's TTL).
      log.warn('remediation still running after its deadline; worker slot freed, target lock kept until it ends', { deadline: abortMessage(run.signal.reason) });
      onAbandoned(outcome);
      void outcome.then((ended) => log.warn('abandoned remediation ended', ended.ok ? { outcome: ended.value.outcome, summary: ended.value.summary } : { error: (ended.error as Error)?.message }));
    }
    const reason = run.signal.reason;
    if (!(reason instanceof DeadlineError)) throw late ? late.error : err;
    // Name the deadline that fired; keep the remediation's own words when they already do (they say which request it cut).
    const said = late?.error instanceof Error && late.error.message.includes(reason.message) ? late.error.message : undefined;
    throw new TransientError('timeout', said ?? (late ? reason.message : `${reason.message}; the remediation did not stop and was left running`), { deadline: reason.which, ms: reason.ms });
  } finally {
    run.dispose();
  }
}

/**
 * A run cut off after it acted (its worker killed, an attempt that timed out) runs again and may
 * find nothing left to do, because its own earlier action worked. Saying "skipped: nothing
 * needed doing" would deny the action in the audit: report it as the earlier action's outcome.
 */
function truthful(result: RemediationResult, acted: { attempt: number | null; message: string }[]): RemediationResult {
  if (result.outcome !== 'skipped' || acted.length === 0) return result;
  const what = acted.map((a) => `${a.message}${a.attempt ? ` (attempt ${a.attempt})` : ''}`).join('; ');
  return {
    outcome: 'succeeded',
    summary: `An earlier attempt of this run acted: ${what}. Checked again now: ${result.summary}`,
    details: { ...result.details, earlier_actions: acted.map((a) => ({ attempt: a.attempt, message: a.message })) },
  };
}

type Outcome = { ok: true; value: RemediationResult } | { ok: false; error: unknown };
