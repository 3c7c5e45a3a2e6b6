import type { Pool } from 'pg';
import { storable, storableDeep } from '../core/text.js';
import { ident } from './migrate.js';
import type { RunRow } from './runs.js';

/** Audit rows of what people (and the safety features) decided about automation: operator actions. */
export class SafetyAudit {
  private readonly s: string;
  constructor(readonly pool: Pool, schema: string) {
    this.s = ident(schema);
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

