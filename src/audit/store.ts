import type { Pool, PoolClient } from 'pg';
import { ident } from './migrate.js';
import type { AlertInfo } from '../remediations/types.js';
import type { JobSpec } from '../rules/table.js';

export type RunState = 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'skipped' | 'dry_run' | 'notified';
export const finalStates: readonly RunState[] = ['succeeded', 'failed', 'skipped', 'dry_run', 'notified'];

/** One webhook delivery as the receiver saw it; written by the ingest worker, off the request path. */
export interface IngestRecord {
  receivedAt: string;
  receiver: string;
  groupKey: string;
  externalURL: string;
  alerts: {
    alert: AlertInfo;
    decisions: {
      decision: 'enqueued' | 'duplicate' | 'no_match' | 'not_applicable' | 'invalid' | 'refused';
      rule?: string;
      jobId?: string;
      reason?: string;
      job?: JobSpec;
    }[];
  }[];
}

export interface RunRow {
  job_id: string;
  rule: string;
  action: string;
  target: string | null;
  fingerprint: string;
  alertname: string | null;
  starts_at: Date | null;
  group_key: string | null;
  dry_run: boolean;
  state: RunState;
  attempts: number;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
  summary: string | null;
  details: Record<string, unknown> | null;
  error_reason: string | null;
  error_message: string | null;
  alert_resolved_at: Date | null;
}

const parseTime = (s: string) => (s.startsWith('0001-') || Number.isNaN(Date.parse(s)) ? null : new Date(s));

/** Data access for the audit trail. Every statement is schema-qualified. */
export class AuditStore {
  private readonly s: string;
  constructor(readonly pool: Pool, schema: string) {
    this.s = ident(schema);
  }

  /** Writes alerts, decisions and queued runs of one delivery in one transaction; returns the job ids newly queued. */
  async recordIngest(rec: IngestRecord): Promise<string[]> {
    return this.tx(async (c) => {
      const queued: string[] = [];
      for (const { alert, decisions } of rec.alerts) {
        const { rows } = await c.query<{ id: string }>(
          `INSERT INTO ${this.s}.alerts (received_at, fingerprint, alertname, status, starts_at, ends_at, labels, annotations, generator_url, receiver, group_key, external_url)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id`,
          [rec.receivedAt, alert.fingerprint, alert.labels.alertname ?? null, alert.status, parseTime(alert.startsAt), parseTime(alert.endsAt),
            alert.labels, alert.annotations, alert.generatorURL, rec.receiver, rec.groupKey, rec.externalURL],
        );
        const alertId = rows[0]!.id;
        for (const d of decisions) {
          await c.query(
            `INSERT INTO ${this.s}.decisions (alert_id, decided_at, fingerprint, rule, decision, job_id, reason) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
            [alertId, rec.receivedAt, alert.fingerprint, d.rule ?? null, d.decision, d.jobId ?? null, d.reason ?? null],
          );
          if (d.job) {
            const r = await c.query(
              `INSERT INTO ${this.s}.runs (job_id, rule, action, target, fingerprint, alertname, starts_at, group_key, dry_run, state, queued_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'queued',$10) ON CONFLICT (job_id) DO NOTHING`,
              [d.job.jobId, d.job.rule, d.job.action, d.job.target ?? null, alert.fingerprint, alert.labels.alertname ?? null,
                parseTime(alert.startsAt), rec.groupKey, d.job.dryRun, rec.receivedAt],
            );
            if (r.rowCount === 1) {
              queued.push(d.job.jobId);
              await this.addEvent(d.job.jobId, 'queued', null, `Queued by rule ${d.job.rule}`, undefined, c);
            }
          }
        }
      }
      return queued;
    });
  }

  /** Marks the run of a firing as seeing its alert resolve; returns the run the first time only. */
  async markAlertResolved(jobId: string, at: string): Promise<RunRow | undefined> {
    const { rows } = await this.pool.query<RunRow>(
      `UPDATE ${this.s}.runs SET alert_resolved_at = $2, updated_at = now() WHERE job_id = $1 AND alert_resolved_at IS NULL RETURNING *`,
      [jobId, at],
    );
    if (rows[0]) await this.addEvent(jobId, 'alert_resolved', null, 'Alert resolved in Alertmanager');
    return rows[0];
  }

  async getRun(jobId: string): Promise<RunRow | undefined> {
    const { rows } = await this.pool.query<RunRow>(`SELECT * FROM ${this.s}.runs WHERE job_id = $1`, [jobId]);
    return rows[0];
  }

  /** The worker took the job: create or move the run to running. */
  async runStarted(job: JobSpec, attempt: number, queuedAt: Date, startedAt: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.s}.runs (job_id, rule, action, target, fingerprint, alertname, starts_at, group_key, dry_run, state, attempts, queued_at, started_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'running',$10,$11,$12)
       ON CONFLICT (job_id) DO UPDATE SET state = 'running', attempts = $10, started_at = COALESCE(${this.s}.runs.started_at, $12),
         error_reason = NULL, error_message = NULL, updated_at = now()`,
      [job.jobId, job.rule, job.action, job.target ?? null, job.alert.fingerprint, job.alert.labels.alertname ?? null,
        parseTime(job.alert.startsAt), job.groupKey, job.dryRun, attempt, queuedAt, startedAt],
    );
    await this.addEvent(job.jobId, 'running', attempt, `Attempt ${attempt} started`);
  }

  /** Records the end of an attempt: a final state, or `retrying` with the error. */
  async runEnded(
    job: JobSpec,
    r: { state: RunState; attempt: number; summary: string; details?: Record<string, unknown>; reason?: string; error?: string; at: Date },
  ): Promise<void> {
    const final = finalStates.includes(r.state);
    await this.pool.query(
      `INSERT INTO ${this.s}.runs (job_id, rule, action, target, fingerprint, alertname, starts_at, group_key, dry_run, state, attempts, queued_at, started_at,
         finished_at, duration_ms, summary, details, error_reason, error_message)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12,$13,0,$14,$15,$16,$17)
       ON CONFLICT (job_id) DO UPDATE SET state = $10, attempts = GREATEST(${this.s}.runs.attempts, $11),
         finished_at = $13, duration_ms = CASE WHEN $13::timestamptz IS NULL THEN NULL
           ELSE (EXTRACT(EPOCH FROM ($13::timestamptz - COALESCE(${this.s}.runs.started_at, $13::timestamptz))) * 1000)::int END,
         summary = $14, details = $15, error_reason = $16, error_message = $17, updated_at = now()`,
      [job.jobId, job.rule, job.action, job.target ?? null, job.alert.fingerprint, job.alert.labels.alertname ?? null,
        parseTime(job.alert.startsAt), job.groupKey, job.dryRun, r.state, r.attempt, r.at, final ? r.at : null,
        r.summary, r.details ?? null, r.reason ?? null, r.error ?? null],
    );
    await this.addEvent(job.jobId, r.state, r.attempt, r.summary, r.details);
  }

  async addEvent(jobId: string, state: string, attempt: number | null, message: string, details?: Record<string, unknown>, c?: PoolClient): Promise<void> {
    await (c ?? this.pool).query(
      `INSERT INTO ${this.s}.run_events (job_id, state, attempt, message, details) VALUES ($1,$2,$3,$4,$5)`,
      [jobId, state, attempt, message, details ?? null],
    );
  }

  /**
   * Another run of the same rule for the same alert, queued at or after this firing started:
   * this job is a repeat of a firing already handled (e.g. its id was freed after retention,
   * or Alertmanager moved startsAt earlier on a re-post).
   */
  async findEarlierRun(job: JobSpec): Promise<RunRow | undefined> {
    const { rows } = await this.pool.query<RunRow>(
      `SELECT * FROM ${this.s}.runs WHERE fingerprint = $1 AND rule = $2 AND job_id <> $3
         AND queued_at >= $4 AND NOT (state = 'skipped' AND error_reason = 'duplicate')
       ORDER BY queued_at LIMIT 1`,
      [job.alert.fingerprint, job.rule, job.jobId, parseTime(job.alert.startsAt) ?? new Date(0)],
    );
    return rows[0];
  }

  /** The latest run of this rule on this target that started within `sinceMs` (cooldown). */
  async recentRunOnTarget(job: JobSpec, sinceMs: number, now: Date): Promise<RunRow | undefined> {
    const { rows } = await this.pool.query<RunRow>(
      `SELECT * FROM ${this.s}.runs WHERE rule = $1 AND target IS NOT DISTINCT FROM $2 AND job_id <> $3
         AND started_at >= $4 AND state IN ('running', 'retrying', 'succeeded', 'failed')
       ORDER BY started_at DESC LIMIT 1`,
      [job.rule, job.target ?? null, job.jobId, new Date(now.getTime() - sinceMs)],
    );
    return rows[0];
  }

  async listRuns(f: { rule?: string; state?: string; fingerprint?: string; limit: number; before?: Date }): Promise<RunRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (f.rule) add('rule = ?', f.rule);
    if (f.state) add('state = ?', f.state);
    if (f.fingerprint) add('fingerprint = ?', f.fingerprint);
    if (f.before) add('queued_at < ?', f.before);
    args.push(f.limit);
    const { rows } = await this.pool.query<RunRow>(
      `SELECT * FROM ${this.s}.runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY queued_at DESC, job_id LIMIT $${args.length}`,
      args,
    );
    return rows;
  }

  async runEvents(jobId: string): Promise<{ at: Date; state: string; attempt: number | null; message: string; details: unknown }[]> {
    const { rows } = await this.pool.query(`SELECT at, state, attempt, message, details FROM ${this.s}.run_events WHERE job_id = $1 ORDER BY id`, [jobId]);
    return rows;
  }

  async recordNotification(n: { jobId: string; notifier: string; eventType: string; seq?: number; state: 'sent' | 'retrying' | 'failed' | 'ignored'; attempt: number; detail?: Record<string, unknown>; error?: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.s}.notifications (job_id, notifier, event_type, seq, state, attempt, detail, error) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
      [n.jobId, n.notifier, n.eventType, n.seq ?? null, n.state, n.attempt, n.detail ?? null, n.error ?? null],
    );
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }
}
