import type pg from 'pg';
import { silentLogger } from '../../src/log.js';
import type { AlertInfo } from '../../src/core/alert.js';
import type { Remediation, RemediationContext, RemediationDeps } from '../../src/remediations/types.js';

/** A firing alert with the given labels. */
export function alert(labels: Record<string, string>, extra: Partial<AlertInfo> = {}): AlertInfo {
  return {
    fingerprint: '0123456789abcdef',
    status: 'firing',
    startsAt: '2026-11-22T07:39:57Z',
    endsAt: '0001-01-01T00:00:00Z',
    labels,
    annotations: {},
    generatorURL: '',
    ...extra,
  };
}

/**
 * Builds the context the worker would build: params and target go through the remediation's
 * own schemas (so defaults apply exactly as in production). Steps are collected in `steps`.
 */
export function makeContext<P, T>(
  r: Remediation<P, T>,
  opts: {
    params?: unknown;
    target?: unknown;
    targetName?: string;
    alert?: AlertInfo;
    dryRun?: boolean;
    deps?: Partial<RemediationDeps> & { pool?: pg.Pool };
    signal?: AbortSignal;
    runId?: string;
    attempt?: number;
  },
): RemediationContext<P, T> & { steps: { message: string; details?: Record<string, unknown> }[] } {
  const steps: { message: string; details?: Record<string, unknown> }[] = [];
  return {
    params: r.paramsSchema.parse(opts.params ?? {}),
    target: (r.targetSchema ? r.targetSchema.parse(opts.target ?? {}) : undefined) as T,
    targetName: opts.targetName ?? 'test-target',
    alert: opts.alert ?? alert({ alertname: 'Test' }),
    ruleName: 'test-rule',
    dryRun: opts.dryRun ?? false,
    runId: opts.runId ?? 'run-1',
    attempt: opts.attempt ?? 1,
    signal: opts.signal ?? new AbortController().signal,
    log: silentLogger,
    deps: {
      pool: undefined as unknown as pg.Pool,
      schema: 'remediator',
      env: process.env,
      fetch: globalThis.fetch,
      now: () => new Date(),
      ...opts.deps,
    } as RemediationDeps,
    step: async (message, details) => {
      steps.push({ message, details });
    },
    steps,
  };
}
