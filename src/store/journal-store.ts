import type { Pool, PoolClient } from 'pg';
import { ident } from './migrate.js';
import { storable, storableDeep } from '../core/text.js';
import { inTransaction } from './tx.js';
import type { AlertInfo } from '../core/alert.js';
import type { JobSpec } from '../core/run.js';

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
      job?: Omit<JobSpec, 'alert'>;
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

  /**
   * Writes alerts, decisions and queued runs of one delivery in one transaction, a statement per
   * table whatever the number of alerts; returns the job ids whose `queued` event this call wrote
   * (so the caller announces each new run once). Every alert of the delivery gets its rows: when
   * PostgreSQL refuses the batch for its data, each alert is written on its own, and an alert that
   * still cannot be stored is recorded without its labels and annotations, with the reason.
   */
  async recordIngest(input: IngestRecord): Promise<string[]> {
    if (input.alerts.length === 0) return [];
    const rec = storableDeep(input);
    try {
      return await this.tx((c) => this.writeIngest(c, rec));
    } catch (err) {
      if (!isDataError(err) || rec.alerts.length === 0) throw err;
    }
    const queued: string[] = [];
    for (const entry of rec.alerts) {
      const one = { ...rec, alerts: [entry] };
      try {
        queued.push(...(await this.tx((c) => this.writeIngest(c, one))));
      } catch (err) {
        if (!isDataError(err)) throw err;
        const why = `labels, annotations and times not stored: ${(err as Error).message}`;
        const stripped = {
          alert: { ...entry.alert, labels: { alertname: String(entry.alert.labels.alertname ?? '') }, annotations: {}, generatorURL: '', startsAt: '', endsAt: '' },
          decisions: entry.decisions.map((d) => ({ ...d, reason: d.reason ? `${d.reason}; ${why}` : why })),
        };
        queued.push(...(await this.tx((c) => this.writeIngest(c, { ...rec, alerts: [stripped] }))));
      }
    }
    return queued;
  }

  private async writeIngest(c: PoolClient, rec: IngestRecord): Promise<string[]> {
    const n = rec.alerts.length;
    const ids = (await c.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('${this.s}.alerts', 'id'))::text AS id FROM generate_series(1, $1)`, [n])).rows.map((r) => r.id);
    const alerts = rec.alerts.map(({ alert }, i) => ({
      id: ids[i], fingerprint: alert.fingerprint, alertname: alert.labels.alertname ?? null, status: alert.status,
      starts_at: parseTime(alert.startsAt), ends_at: parseTime(alert.endsAt), labels: alert.labels, annotations: alert.annotations,
      generator_url: alert.generatorURL,
    }));
    await c.query(
      `INSERT INTO ${this.s}.alerts (id, received_at, fingerprint, alertname, status, starts_at, ends_at, labels, annotations, generator_url, receiver, group_key, external_url)
       SELECT x.id, $2, x.fingerprint, x.alertname, x.status, x.starts_at, x.ends_at, x.labels, x.annotations, x.generator_url, $3, $4, $5
       FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, fingerprint text, alertname text, status text, starts_at timestamptz, ends_at timestamptz,
         labels jsonb, annotations jsonb, generator_url text)`,
      [JSON.stringify(alerts), rec.receivedAt, rec.receiver, rec.groupKey, rec.externalURL],
    );
    const decisions = rec.alerts.flatMap(({ alert, decisions: ds }, i) =>
      ds.map((d) => ({ alert_id: ids[i], fingerprint: alert.fingerprint, rule: d.rule ?? null, decision: d.decision, job_id: d.jobId ?? null, reason: d.reason ?? null })),
    );
    await c.query(
      `INSERT INTO ${this.s}.decisions (alert_id, decided_at, fingerprint, rule, decision, job_id, reason)
       SELECT x.alert_id, $2, x.fingerprint, x.rule, x.decision, x.job_id, x.reason
       FROM jsonb_to_recordset($1::jsonb) AS x(alert_id bigint, fingerprint text, rule text, decision text, job_id text, reason text)`,
      [JSON.stringify(decisions), rec.receivedAt],
    );
    const runs = rec.alerts.flatMap(({ alert, decisions: ds }) =>
      ds.flatMap((d) =>
        d.job && d.decision === 'enqueued'
          ? [{ job_id: d.job.jobId, rule: d.job.rule, action: d.job.action, target: d.job.target ?? null, fingerprint: alert.fingerprint,
              alertname: alert.labels.alertname ?? null, starts_at: parseTime(alert.startsAt), dry_run: d.job.dryRun }]
          : [],
      ),
    );
    if (runs.length === 0) return [];
    // The worker may have started the run already (it creates the row when it comes first): the
    // row is then kept as it is, but its `queued` event is still written, dated when the delivery
    // was received so that the run's history reads in order. The row lock serialises deliveries
    // of one job racing from several receivers, so the event is written once.
    await c.query(
      `INSERT INTO ${this.s}.runs (job_id, rule, action, target, fingerprint, alertname, starts_at, group_key, dry_run, state, queued_at)
       SELECT x.job_id, x.rule, x.action, x.target, x.fingerprint, x.alertname, x.starts_at, $2, x.dry_run, 'queued', $3
       FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, rule text, action text, target text, fingerprint text, alertname text,
         starts_at timestamptz, dry_run boolean)
       ON CONFLICT (job_id) DO NOTHING`,
      [JSON.stringify(runs), rec.groupKey, rec.receivedAt],
    );
    const jobIds = runs.map((r) => r.job_id);
    await c.query(`SELECT 1 FROM ${this.s}.runs WHERE job_id = ANY($1::text[]) ORDER BY job_id FOR UPDATE`, [jobIds]);
    const queued = (
      await c.query<{ job_id: string }>(
        `INSERT INTO ${this.s}.run_events (job_id, at, state, message)
         SELECT u.j, $3, 'queued', 'Queued by rule ' || u.r FROM unnest($1::text[], $2::text[]) AS u(j, r)
         WHERE NOT EXISTS (SELECT 1 FROM ${this.s}.run_events e WHERE e.job_id = u.j AND e.state = 'queued')
         RETURNING job_id`,
        [jobIds, runs.map((r) => r.rule), rec.receivedAt],
      )
    ).rows;
    return queued.map((q) => q.job_id);
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
        storable(r.summary), storableDeep(r.details) ?? null, r.reason ?? null, r.error === undefined ? null : storable(r.error)],
    );
    await this.addEvent(job.jobId, r.state, r.attempt, r.summary, r.details);
  }

  async addEvent(jobId: string, state: string, attempt: number | null, message: string, details?: Record<string, unknown>, c?: PoolClient): Promise<void> {
    await (c ?? this.pool).query(
      `INSERT INTO ${this.s}.run_events (job_id, state, attempt, message, details) VALUES ($1,$2,$3,$4,$5)`,
      // Messages and details carry what targets answered: keep them storable (core/text.ts).
      [jobId, state, attempt, storable(message), storableDeep(details) ?? null],
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

  /**
   * Runs newest first. Paging uses a cursor on (queued_at, job_id), unique per run: runs of one
   * delivery share their queued_at, so a bare time would skip or repeat them. `next` is the cursor
   * of the page after this one, when there may be one.
   */
  async listRuns(f: { rule?: string; state?: string; fingerprint?: string; limit: number; before?: Date; cursor?: RunCursor }): Promise<{ runs: RunRow[]; next?: string }> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, ...v: unknown[]) => {
      let i = 0;
      where.push(sql.replace(/\?/g, () => {
        args.push(v[i++]);
        return `$${args.length}`;
      }));
    };
    if (f.rule) add('rule = ?', f.rule);
    if (f.state) add('state = ?', f.state);
    if (f.fingerprint) add('fingerprint = ?', f.fingerprint);
    if (f.before) add('queued_at < ?', f.before);
    // Microseconds as an integer: a JavaScript Date would round PostgreSQL's timestamps to ms.
    if (f.cursor) add(`(queued_at, job_id) < (timestamptz 'epoch' + ? * interval '1 microsecond', ?)`, f.cursor.us, f.cursor.jobId);
    args.push(f.limit);
    const { rows } = await this.pool.query<RunRow & { cursor_us: string }>(
      `SELECT *, (EXTRACT(EPOCH FROM queued_at) * 1000000)::bigint::text AS cursor_us FROM ${this.s}.runs
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY queued_at DESC, job_id DESC LIMIT $${args.length}`,
      args,
    );
    const last = rows.at(-1);
    const runs = rows.map(({ cursor_us: _, ...r }) => r as RunRow);
    return { runs, next: rows.length === f.limit && last ? encodeCursor({ us: last.cursor_us, jobId: last.job_id }) : undefined };
  }

  async runEvents(jobId: string): Promise<{ at: Date; state: string; attempt: number | null; message: string; details: unknown }[]> {
    const { rows } = await this.pool.query(`SELECT at, state, attempt, message, details FROM ${this.s}.run_events WHERE job_id = $1 ORDER BY at, id`, [jobId]);
    return rows;
  }

  async recordNotification(n: { jobId: string; notifier: string; eventType: string; seq?: number; state: 'sent' | 'retrying' | 'failed' | 'ignored'; attempt: number; detail?: Record<string, unknown>; error?: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.s}.notifications (job_id, notifier, event_type, seq, state, attempt, detail, error) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
      [n.jobId, n.notifier, n.eventType, n.seq ?? null, n.state, n.attempt, n.detail ?? null, n.error ?? null],
    );
  }

  private tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }
}

/** PostgreSQL refused the values themselves (SQLSTATE class 22, data exception; 54, too large). */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'));
}

/** Where a page of runs ends: queued_at in microseconds since the epoch, and the job id. */
export interface RunCursor {
  us: string;
  jobId: string;
}

export function encodeCursor(c: RunCursor): string {
  return Buffer.from(`${c.us}|${c.jobId}`).toString('base64url');
}

/** The cursor, or undefined when it is not one of ours. */
export function decodeCursor(s: string): RunCursor | undefined {
  const m = /^(-?\d{1,20})\|(.{1,200})$/s.exec(Buffer.from(s, 'base64url').toString());
  return m ? { us: m[1]!, jobId: m[2]! } : undefined;
}
