import type { Pool } from 'pg';
import { ident } from './migrate.js';
import type { RunState } from '../core/run.js';

/** Read-only queries behind the status page (/ui). */

export interface RuleStats {
  rule: string;
  total: number;
  succeeded: number;
  failed: number;
  /** succeeded / (succeeded + failed) over the window; null when neither happened. */
  successRate: number | null;
  recent: { job_id: string; state: RunState; queued_at: Date; duration_ms: number | null }[];
}

/** Per rule: counts over the last `windowMs` and its last `recent` runs (any age). */
export async function ruleStats(pool: Pool, schema: string, windowMs: number, recent = 5): Promise<Map<string, RuleStats>> {
  const s = ident(schema);
  const [counts, last] = await Promise.all([
    pool.query<{ rule: string; total: string; succeeded: string; failed: string }>(
      `SELECT rule, count(*) AS total, count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
              count(*) FILTER (WHERE state = 'failed') AS failed
         FROM ${s}.runs WHERE queued_at > now() - $1 * interval '1 millisecond' GROUP BY rule`,
      [windowMs],
    ),
    pool.query<{ rule: string; job_id: string; state: RunState; queued_at: Date; duration_ms: number | null }>(
      `SELECT rule, job_id, state, queued_at, duration_ms FROM (
         SELECT rule, job_id, state, queued_at, duration_ms,
                row_number() OVER (PARTITION BY rule ORDER BY queued_at DESC, job_id DESC) AS n
           FROM ${s}.runs) r
        WHERE n <= $1 ORDER BY rule, queued_at DESC, job_id DESC`,
      [recent],
    ),
  ]);
  const out = new Map<string, RuleStats>();
  const entry = (rule: string) => {
    let e = out.get(rule);
    if (!e) out.set(rule, (e = { rule, total: 0, succeeded: 0, failed: 0, successRate: null, recent: [] }));
    return e;
  };
  for (const c of counts.rows) {
    const e = entry(c.rule);
    e.total = Number(c.total);
    e.succeeded = Number(c.succeeded);
    e.failed = Number(c.failed);
    e.successRate = e.succeeded + e.failed > 0 ? e.succeeded / (e.succeeded + e.failed) : null;
  }
  for (const { rule, ...run } of last.rows) entry(rule).recent.push(run);
  return out;
}

export interface RunAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generator_url: string | null;
  external_url: string | null;
  receiver: string;
}

/** The alert as last received for a run's fingerprint. */
export async function alertOfRun(pool: Pool, schema: string, fingerprint: string): Promise<RunAlert | undefined> {
  const { rows } = await pool.query<RunAlert>(
    `SELECT labels, annotations, generator_url, external_url, receiver FROM ${ident(schema)}.alerts
      WHERE fingerprint = $1 ORDER BY received_at DESC, id DESC LIMIT 1`,
    [fingerprint],
  );
  return rows[0];
}

/** The decisions that led to a run (one per delivery that named its job id). */
export async function decisionsOfRun(pool: Pool, schema: string, jobId: string): Promise<{ decided_at: Date; decision: string; reason: string | null }[]> {
  const { rows } = await pool.query(
    `SELECT decided_at, decision, reason FROM ${ident(schema)}.decisions WHERE job_id = $1 ORDER BY decided_at, id LIMIT 100`,
    [jobId],
  );
  return rows;
}
