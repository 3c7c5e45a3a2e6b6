import type { JobSpec, SkipReason } from '../../core/run.js';
import type { CompiledRule, RuleTable } from '../../rules/load.js';
import type { Approvals } from '../../redis/approvals.js';
import type { SafetyState } from '../../redis/safety-state.js';
import type { SafetyAudit } from '../../store/safety-audit.js';
import type { RunRow } from '../../store/runs.js';
import type { Journal } from '../journal.js';

/** What a gate sees: the job, its rule, its run as the journal has it, and the shared state. */
export interface GateContext {
  spec: JobSpec;
  rule: CompiledRule;
  table: RuleTable;
  run: RunRow;
  /** 1-based attempt of this job; `firstTry` when the job has not failed an attempt before. */
  attempt: number;
  firstTry: boolean;
  now: Date;
  journal: Journal;
  safety: SafetyState;
  safetyAudit: SafetyAudit;
  approvals: Approvals;
  /** Says something in the run's story (journal, hence Slack) without ending it. */
  say(message: string, details?: Record<string, unknown>): Promise<void>;
}

/** Do not act: the run ends skipped with this reason (and pages a person when `page` says why). */
export interface Skip {
  skip: SkipReason;
  message: string;
  details?: Record<string, unknown>;
  page?: string;
}

/** Not yet: the job comes back at `until` (ms since the epoch), holding nothing meanwhile. */
export interface Wait {
  until: number;
}

/** Nothing left to do: the run was already handled (a job seen again after its outcome). */
export interface Done {
  done: string;
}

export type GateResult = Skip | Wait | Done | undefined;

/** One check before a run acts. Each lives in its own file; src/run/gates/index.ts orders them. */
export interface Gate {
  readonly name: string;
  check(c: GateContext): Promise<GateResult>;
}
