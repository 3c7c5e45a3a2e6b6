import type { Pool } from 'pg';
import type { AlertInfo } from '../core/alert.js';
import type { RunState } from '../core/run.js';
import { ident } from './migrate.js';

/** A row of `runs`: the projection of a run's journal (src/store/journal-store.ts writes it). */
export interface RunRow {
  job_id: string;
  rule: string;
  action: string;
  target: string | null;
  fingerprint: string;
  alertname: string | null;
  starts_at: Date | null;
  group_key: string | null;
  incident_key: string | null;
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
  acted_at: Date | null;
  fix_verdict: string | null;
}

/** The alert a run is about, as last received, and where its Alertmanager is. */
export interface RunAlert extends AlertInfo {
  externalURL: string;
}

/** One event of a run's journal, as read back. */
export interface EventRow {
  id: string;
  at: Date;
  state: string;
  attempt: number | null;
  message: string;
  details: Record<string, unknown> | null;
  reason: string | null;
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

/** Reads of the runs and their events (the API, the status page, the CLI, the notifiers). */
export class RunReader {
  private readonly s: string;
  constructor(readonly pool: Pool, schema: string) {
    this.s = ident(schema);
  }

  async getRun(jobId: string): Promise<RunRow | undefined> {
    const { rows } = await this.pool.query<RunRow>(`SELECT * FROM ${this.s}.runs WHERE job_id = $1`, [jobId]);
    return rows[0];
  }

  /** Several runs in one statement (the journal's batched loader). */
  async getRuns(jobIds: string[]): Promise<RunRow[]> {
    const { rows } = await this.pool.query<RunRow>(`SELECT * FROM ${this.s}.runs WHERE job_id = ANY($1::text[])`, [jobIds]);
    return rows;
  }

  /** A run's events in order; `afterId` reads only those after an event already seen. */
  async runEvents(jobId: string, afterId?: string): Promise<EventRow[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT id::text, at, state, attempt, message, details, reason FROM ${this.s}.run_events
        WHERE job_id = $1 AND id > $2::bigint ORDER BY at, id`,
      [jobId, afterId ?? '0'],
    );
    return rows;
  }

  /**
   * The latest run (last 7 days) of the PagerDuty incident with this dedup key: the run's incident
   * key, or the page key derived from it (src/core/run.ts pageKey). Undefined: not an incident of ours.
   */
  async runOfIncident(dedupKey: string): Promise<RunRow | undefined> {
    const { rows } = await this.pool.query<RunRow>(
      `SELECT * FROM ${this.s}.runs WHERE incident_key = $1 AND queued_at > now() - interval '7 days' ORDER BY queued_at DESC LIMIT 1`,
      [dedupKey],
    );
    if (rows[0]) return rows[0];
    const paged = await this.pool.query<RunRow>(
      `SELECT * FROM ${this.s}.runs WHERE queued_at > now() - interval '7 days' AND incident_key IS NOT NULL
          AND encode(sha256(convert_to(incident_key || E'\nremediation-failed', 'UTF8')), 'hex') = $1
        ORDER BY queued_at DESC LIMIT 1`,
      [dedupKey],
    );
    return paged.rows[0];
  }

  /** How many runs of a rule were queued since `since` (storm detection). */
  async countQueuedSince(rule: string, since: Date): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.s}.runs WHERE rule = $1 AND queued_at > $2`, [rule, since]);
    return Number(rows[0]?.n ?? 0);
  }

  /** A run with the alert it is about (labels and annotations as last received for its fingerprint). */
  async runWithAlert(jobId: string): Promise<(RunRow & { alert: RunAlert }) | undefined> {
    const { rows } = await this.pool.query<RunRow & { a_labels: Record<string, string> | null; a_annotations: Record<string, string> | null; a_generator_url: string | null; a_external_url: string | null }>(
      `SELECT r.*, a.labels AS a_labels, a.annotations AS a_annotations, a.generator_url AS a_generator_url, a.external_url AS a_external_url
         FROM ${this.s}.runs r
         LEFT JOIN LATERAL (SELECT labels, annotations, generator_url, external_url FROM ${this.s}.alerts
                             WHERE fingerprint = r.fingerprint ORDER BY received_at DESC, id DESC LIMIT 1) a ON true
        WHERE r.job_id = $1`,
      [jobId],
    );
    const r = rows[0];
    if (!r) return undefined;
    const { a_labels, a_annotations, a_generator_url, a_external_url, ...run } = r;
    return {
      ...run,
      alert: {
        fingerprint: r.fingerprint, status: r.alert_resolved_at ? 'resolved' : 'firing', startsAt: r.starts_at?.toISOString() ?? '', endsAt: '',
        labels: a_labels ?? (r.alertname ? { alertname: r.alertname } : {}), annotations: a_annotations ?? {}, generatorURL: a_generator_url ?? '',
        externalURL: a_external_url ?? '',
      },
    };
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
}
