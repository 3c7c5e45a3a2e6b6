import { setTimeout as sleep } from 'node:timers/promises';
import { abortMessage, deadline, DeadlineError } from '../core/deadline.js';
import { PermanentError, TransientError } from '../core/errors.js';
import type { JobSpec } from '../core/run.js';
import type { Logger } from '../log.js';
import type { RemediationDeps, RemediationResult, Remediation } from '../remediations/types.js';
import type { CompiledRule, RuleTable } from '../rules/load.js';
import { checkAction } from '../rules/table.js';
import type { EventRow } from '../store/runs.js';

/** How long a remediation gets to unwind after its deadline before it is left running on its own. */
const UNWIND_MS = 1000;

export interface ExecuteOptions {
  remediation: Remediation<any, any> | undefined;
  rule: CompiledRule;
  table: RuleTable;
  spec: JobSpec;
  attempt: number;
  log: Logger;
  deps: RemediationDeps;
  /** Aborted on shutdown after the grace period. */
  shutdown?: AbortSignal;
  /** What earlier attempts of this run recorded (read only when the run acted before). */
  history: () => Promise<EventRow[]>;
  /** Records a step of the run (the journal); `acted` marks one that changes the target. */
  step(message: string, details: Record<string, unknown> | undefined, acted: boolean): Promise<void>;
  /** Called when the remediation ignores its deadline and is left running: the caller keeps the target locked until it ends. */
  onAbandoned(stillRunning: Promise<unknown>): void;
}

/**
 * Runs one attempt of a remediation: checks again what it may act on (the rule table may have
 * changed since the intake), then runs it under the rule's timeout. The race frees this worker
 * slot at the deadline even when a remediation ignores its signal. A remediation that finds
 * nothing left to do after an earlier attempt of the same run acted reports that action.
 */
export async function execute(o: ExecuteOptions): Promise<RemediationResult> {
  const { spec, rule } = o;
  if (!o.remediation) throw new PermanentError('bad_params', `action ${spec.action} is not registered`);
  const checked = checkAction(o.table, o.remediation, spec.target, spec.params);
  if (!checked.ok) throw new PermanentError(checked.reason, checked.message);
  const acted = (await o.history()).filter((e) => e.state === 'step' && (e.details?.acted === true || e.details?.intent === true));
  const run = deadline('rule timeout', rule.spec.timeout, [o.shutdown]);
  const work = o.remediation.run({
    params: checked.params,
    target: checked.target?.config,
    targetName: spec.target ?? '',
    alert: spec.alert,
    ruleName: spec.rule,
    dryRun: spec.dryRun,
    runId: spec.jobId,
    attempt: o.attempt,
    signal: run.signal,
    log: o.log,
    deps: o.deps,
    step: (message, details, opts) =>
      o.step(message, opts?.acted ? { ...details, acted: true } : opts?.intent ? { ...details, intent: true } : details, opts?.acted === true || opts?.intent === true),
  });
  const outcome = work.then(
    (value): Settled => ({ ok: true, value }),
    (error: unknown): Settled => ({ ok: false, error }),
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
      o.log.warn('remediation still running after its deadline; worker slot freed, target lock kept until it ends', { deadline: abortMessage(run.signal.reason) });
      o.onAbandoned(outcome);
      void outcome.then((ended) => o.log.warn('abandoned remediation ended', ended.ok ? { outcome: ended.value.outcome, summary: ended.value.summary } : { error: (ended.error as Error)?.message }));
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
function truthful(result: RemediationResult, steps: EventRow[]): RemediationResult {
  if (result.outcome !== 'skipped' || steps.length === 0) return result;
  const acted = steps.filter((s) => s.details?.acted === true);
  const shown = acted.length ? acted : steps;
  const what = shown.map((a) => `${a.message}${a.attempt ? ` (attempt ${a.attempt})` : ''}`).join('; ');
  // Only an intent recorded: the call may or may not have reached the target before the attempt ended.
  const verb = acted.length ? 'acted' : 'may have acted (it stopped after recording)';
  return {
    outcome: 'succeeded',
    summary: `An earlier attempt of this run ${verb}: ${what}. Checked again now: ${result.summary}`,
    details: { ...result.details, earlier_actions: shown.map((a) => ({ attempt: a.attempt, message: a.message, acted: a.details?.acted === true })) },
  };
}

type Settled = { ok: true; value: RemediationResult } | { ok: false; error: unknown };
