import type { z } from 'zod';
import type { Pool } from 'pg';
import type { KubeConfig } from '@kubernetes/client-node';
import type { AlertInfo } from '../core/alert.js';
import type { Logger } from '../log.js';

/** Clients a remediation may use; built once in src/service.ts, passed in (never imported singletons). */
export interface RemediationDeps {
  /** remediator's own PostgreSQL pool (audit schema, number pools). */
  pool: Pool;
  /** remediator's schema name, already validated as an identifier. */
  schema: string;
  /** Kubernetes config (in-cluster or KUBECONFIG), loaded lazily by whoever needs it. */
  kubeConfig?: () => KubeConfig;
  /** Environment used to resolve secrets named by targets (`*_env` fields). */
  env: NodeJS.ProcessEnv;
  /** HTTP client; global fetch by default. */
  fetch: typeof fetch;
  /** Clock, so tests can move time. */
  now: () => Date;
}

/** What a remediation gets for one run. */
export interface RemediationContext<P, T> {
  /** Params after templating and validation by the remediation's schema. */
  params: P;
  /** The declared target, validated by the remediation's target schema. */
  target: T;
  targetName: string;
  alert: AlertInfo;
  ruleName: string;
  /** True: read and check, report what would be done, mutate nothing. */
  dryRun: boolean;
  /** BullMQ job id; stable across retries and stalled re-runs of the same job. */
  runId: string;
  /** 1 on the first attempt. */
  attempt: number;
  /** Aborted on shutdown or when the run's deadline passes. */
  signal: AbortSignal;
  log: Logger;
  deps: RemediationDeps;
  /**
   * Reports a step (goes to the audit and, with notifiers, to the Slack thread). `intent: true`
   * marks a step recorded just before a call that changes the target (it is durable before the
   * call goes out); `acted: true` a step that changed it (reset sent, backends terminated,
   * rollout patched). A later attempt of the same run that finds nothing left to do then reports
   * that an earlier attempt acted (or may have), not "nothing needed doing"; either starts the
   * rule's cooldown.
   */
  step(message: string, details?: Record<string, unknown>, opts?: { acted?: boolean; intent?: boolean }): Promise<void>;
}

/**
 * How a run ended when it did not throw. `succeeded`: the effect was verified (or was already
 * there: say so in the summary); `skipped`: nothing needed doing; `dry_run`: what would be done;
 * `notified`: a notify-only rule, people must act.
 */
export interface RemediationResult {
  outcome: 'succeeded' | 'skipped' | 'dry_run' | 'notified';
  summary: string;
  details?: Record<string, unknown>;
}

/** A remediation describes itself; the registry lists them explicitly by name. */
export interface Remediation<P = unknown, T = unknown> {
  name: string;
  description: string;
  /** The `kind` of target it acts on, or null for actions that need no target (notify). */
  targetKind: string | null;
  /** Strict zod schema of `params` in a rule. */
  paramsSchema: z.ZodType<P, z.ZodTypeDef, unknown>;
  /** Strict zod schema of a target of `targetKind` (without `kind`). */
  targetSchema?: z.ZodType<T, z.ZodTypeDef, unknown>;
  /** Privileges it needs, for operators (RBAC verbs, database roles, API scopes). */
  permissions: string[];
  /** A complete rules file (targets + one rule) that `rules check` accepts; a test loads it. */
  exampleRules: string;
  run(ctx: RemediationContext<P, T>): Promise<RemediationResult>;
}

/** Identity helper that keeps the generic types of a remediation definition. */
export function defineRemediation<P, T>(r: Remediation<P, T>): Remediation<P, T> {
  return r;
}
