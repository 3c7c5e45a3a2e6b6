import type { Pool } from 'pg';
import { storable, storableDeep } from '../core/text.js';
import { ident } from './migrate.js';
import type { AlertInfo } from '../core/alert.js';
import type { RunRow } from './journal-store.js';

/** The last successful run of a rule on a target, for loop detection. */
export interface FixRow {
  job_id: string;
  finished_at: Date;
  alert_resolved_at: Date | null;
  fix_verdict: string | null;
}

/** Audit rows of the safety features (src/safety): fix verdicts and operator actions. */
export class SafetyAudit {
  private readonly s: string;
  constructor(readonly pool: Pool, schema: string) {
    this.s = ident(schema);
  }

  /** The latest successful, not dry-run run of `rule` on `target` other than `jobId` whose fix has no verdict yet. */
  async unjudgedFix(rule: string, target: string | undefined, jobId: string): Promise<FixRow | undefined> {
    const { rows } = await this.pool.query<FixRow>(
      `SELECT job_id, finished_at, alert_resolved_at, fix_verdict FROM ${this.s}.runs
       WHERE rule = $1 AND target IS NOT DISTINCT FROM $2 AND job_id <> $3 AND state = 'succeeded' AND NOT dry_run
         AND fix_verdict IS NULL AND finished_at IS NOT NULL
       ORDER BY finished_at DESC LIMIT 1`,
      [rule, target ?? null, jobId],
    );
    return rows[0];
  }

  /** The last runs of a rule on a target (what it did the last times), newest first. */
  async recentRuns(rule: string, target: string | undefined, excludeJob: string, limit: number): Promise<Pick<RunRow, 'job_id' | 'state' | 'error_reason' | 'finished_at' | 'queued_at' | 'summary'>[]> {
    const { rows } = await this.pool.query(
      `SELECT job_id, state, error_reason, finished_at, queued_at, summary FROM ${this.s}.runs
       WHERE rule = $1 AND target IS NOT DISTINCT FROM $2 AND job_id <> $3 ORDER BY queued_at DESC LIMIT $4`,
      [rule, target ?? null, excludeJob, limit],
    );
    return rows;
  }

  /** Records the verdict once; false when another process judged that run first. */
  async judge(jobId: string, verdict: 'effective' | 'ineffective', message: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(`UPDATE ${this.s}.runs SET fix_verdict = $2, updated_at = now() WHERE job_id = $1 AND fix_verdict IS NULL`, [jobId, verdict]);
    if (!rowCount) return false;
    await this.pool.query(`INSERT INTO ${this.s}.run_events (job_id, state, message) VALUES ($1, $2, $3)`, [jobId, verdict, storable(message)]);
    return true;
  }

  /**
   * The latest run (last 7 days) whose PagerDuty incident has this dedup key: sha256 hex of its
   * group key, or of "<fingerprint>\n<startsAt ISO ms>" (src/notifiers/pagerduty-events.ts
   * dedupKeyFor), or the page key derived from either. Undefined: not an incident of ours.
   */
  async runOfIncident(dedupKey: string): Promise<(RunRow & { alert: AlertInfo }) | undefined> {
    const { rows } = await this.pool.query<RunRow & { labels: Record<string, string> | null; annotations: Record<string, string> | null }>(
      `WITH k AS (
         SELECT r.*, encode(sha256(convert_to(coalesce(r.group_key, ''), 'UTF8')), 'hex') AS g,
                encode(sha256(convert_to(r.fingerprint || E'\n' || to_char(r.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'UTF8')), 'hex') AS f
         FROM ${this.s}.runs r WHERE r.queued_at > now() - interval '7 days')
       SELECT k.*, a.labels, a.annotations FROM k
       LEFT JOIN LATERAL (SELECT labels, annotations FROM ${this.s}.alerts WHERE fingerprint = k.fingerprint ORDER BY id DESC LIMIT 1) a ON true
       WHERE $1 IN (k.g, k.f, encode(sha256(convert_to(k.g || E'\nremediation-failed', 'UTF8')), 'hex'), encode(sha256(convert_to(k.f || E'\nremediation-failed', 'UTF8')), 'hex'))
       ORDER BY k.queued_at DESC LIMIT 1`,
      [dedupKey],
    );
    return rows[0] && withAlert(rows[0]);
  }

  /** A run with the alert it was about (labels and annotations from its latest alert row), for run events. */
  async runWithAlert(jobId: string): Promise<(RunRow & { alert: AlertInfo }) | undefined> {
    const { rows } = await this.pool.query<RunRow & { labels: Record<string, string> | null; annotations: Record<string, string> | null }>(
      `SELECT r.*, a.labels, a.annotations FROM ${this.s}.runs r
       LEFT JOIN LATERAL (SELECT labels, annotations FROM ${this.s}.alerts WHERE fingerprint = r.fingerprint ORDER BY id DESC LIMIT 1) a ON true
       WHERE r.job_id = $1`,
      [jobId],
    );
    return rows[0] && withAlert(rows[0]);
  }

  async addRunEvent(jobId: string, state: string, message: string, details?: Record<string, unknown>): Promise<void> {
    await this.pool.query(`INSERT INTO ${this.s}.run_events (job_id, state, message, details) VALUES ($1,$2,$3,$4)`, [jobId, state, storable(message), storableDeep(details) ?? null]);
  }

  async recordAction(a: { kind: string; scope: string; by: string; reason?: string; details?: Record<string, unknown> }): Promise<void> {
    await this.pool.query(`INSERT INTO ${this.s}.operator_actions (kind, scope, by_whom, reason, details) VALUES ($1,$2,$3,$4,$5)`, [
      a.kind, storable(a.scope), storable(a.by), a.reason === undefined ? null : storable(a.reason), storableDeep(a.details) ?? null,
    ]);
  }

  async actions(limit = 50): Promise<{ at: Date; kind: string; scope: string; by_whom: string; reason: string | null }[]> {
    const { rows } = await this.pool.query(`SELECT at, kind, scope, by_whom, reason, details FROM ${this.s}.operator_actions ORDER BY id DESC LIMIT $1`, [limit]);
    return rows;
  }
}

function withAlert(r: RunRow & { labels: Record<string, string> | null; annotations: Record<string, string> | null }): RunRow & { alert: AlertInfo } {
  const { labels, annotations, g: _g, f: _f, ...run } = r as typeof r & { g?: string; f?: string };
  return {
    ...run,
    alert: { fingerprint: r.fingerprint, status: 'firing', startsAt: r.starts_at?.toISOString() ?? '', endsAt: '', labels: labels ?? {}, annotations: annotations ?? {}, generatorURL: '' },
  };
}
