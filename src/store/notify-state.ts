import type { Pool } from 'pg';
import { storable, storableDeep } from '../core/text.js';
import { ident } from './migrate.js';

/** A run's Slack thread: where it is, and how far it has told the run's story. */
export interface ThreadRow {
  job_id: string;
  channel: string;
  channel_id: string | null;
  root_ts: string | null;
  root_hash: string | null;
  root_state: string | null;
  /** The last run event the thread has told (0: none). */
  posted_through: string;
  mode: 'thread' | 'digest';
}

/** What remediator has sent for one PagerDuty incident (dedup key) on one routing key. */
export interface IncidentRow {
  dedup_key: string;
  routing: string;
  acked_at: Date | null;
  resolved_at: Date | null;
  opened_at: Date;
  paged: string[];
  notes_through: string;
}

/** A run as the PagerDuty notifier plans from it. */
export interface IncidentRun {
  job_id: string;
  rule: string;
  action: string;
  target: string | null;
  state: string;
  error_reason: string | null;
  error_message: string | null;
  summary: string | null;
  attempts: number;
  started_at: Date | null;
  queued_at: Date;
  alert_resolved_at: Date | null;
  group_key: string | null;
  fingerprint: string;
  starts_at: Date | null;
  labels: Record<string, string> | null;
  annotations: Record<string, string> | null;
  generator_url: string | null;
}

/** The notifiers' own state in PostgreSQL: Slack threads, PagerDuty incidents, and what was sent. */
export class NotifyState {
  private readonly s: string;
  constructor(readonly pool: Pool, schema: string) {
    this.s = ident(schema);
  }

  async thread(jobId: string): Promise<ThreadRow | undefined> {
    const { rows } = await this.pool.query<ThreadRow>(
      `SELECT job_id, channel, channel_id, root_ts, root_hash, root_state, posted_through::text, mode FROM ${this.s}.slack_threads WHERE job_id = $1`,
      [jobId],
    );
    return rows[0];
  }

  /** Creates the thread row (its channel is fixed from then on) or changes its mode; returns it. */
  async openThread(jobId: string, channel: string, mode: 'thread' | 'digest'): Promise<ThreadRow> {
    const { rows } = await this.pool.query<ThreadRow>(
      `INSERT INTO ${this.s}.slack_threads (job_id, channel, mode) VALUES ($1, $2, $3)
       ON CONFLICT (job_id) DO UPDATE SET mode = EXCLUDED.mode, updated_at = now(),
         -- A digested run that now needs people gets its whole story told in its own thread.
         posted_through = CASE WHEN ${this.s}.slack_threads.mode = 'digest' AND EXCLUDED.mode = 'thread' THEN 0 ELSE ${this.s}.slack_threads.posted_through END
       RETURNING job_id, channel, channel_id, root_ts, root_hash, root_state, posted_through::text, mode`,
      [jobId, channel, mode],
    );
    return rows[0]!;
  }

  /** Saves what a Slack call changed, right after it (a retried sync never posts twice what this saved). */
  async saveThread(jobId: string, t: Partial<Pick<ThreadRow, 'channel_id' | 'root_ts' | 'root_hash' | 'root_state' | 'posted_through'>>): Promise<void> {
    const sets: string[] = [];
    const args: unknown[] = [jobId];
    for (const [k, v] of Object.entries(t)) {
      if (v === undefined) continue;
      args.push(v);
      sets.push(`${k} = $${args.length}${k === 'posted_through' ? '::bigint' : ''}`);
    }
    if (sets.length === 0) return;
    await this.pool.query(`UPDATE ${this.s}.slack_threads SET ${sets.join(', ')}, updated_at = now() WHERE job_id = $1`, args);
  }

  async incident(dedupKey: string, routing: string): Promise<IncidentRow> {
    const { rows } = await this.pool.query<IncidentRow>(
      `INSERT INTO ${this.s}.pagerduty_incidents (dedup_key, routing) VALUES ($1, $2)
       ON CONFLICT (dedup_key, routing) DO UPDATE SET updated_at = ${this.s}.pagerduty_incidents.updated_at
       RETURNING dedup_key, routing, acked_at, resolved_at, opened_at, paged, notes_through::text`,
      [dedupKey, routing],
    );
    return rows[0]!;
  }

  async saveIncident(dedupKey: string, routing: string, t: Partial<Pick<IncidentRow, 'acked_at' | 'resolved_at' | 'opened_at' | 'paged' | 'notes_through'>>): Promise<void> {
    const sets: string[] = [];
    const args: unknown[] = [dedupKey, routing];
    for (const [k, v] of Object.entries(t)) {
      if (v === undefined) continue;
      args.push(k === 'paged' ? JSON.stringify(v) : v);
      sets.push(`${k} = $${args.length}${k === 'notes_through' ? '::bigint' : k === 'paged' ? '::jsonb' : ''}`);
    }
    if (sets.length === 0) return;
    await this.pool.query(`UPDATE ${this.s}.pagerduty_incidents SET ${sets.join(', ')}, updated_at = now() WHERE dedup_key = $1 AND routing = $2`, args);
  }

  /** The runs of an incident (not dry runs; the last 7 days), oldest first, with their alert. */
  async incidentRuns(dedupKey: string, rules: string[]): Promise<IncidentRun[]> {
    const { rows } = await this.pool.query<IncidentRun>(
      `SELECT r.job_id, r.rule, r.action, r.target, r.state, r.error_reason, r.error_message, r.summary, r.attempts, r.started_at, r.queued_at,
              r.alert_resolved_at, r.group_key, r.fingerprint, r.starts_at, a.labels, a.annotations, a.generator_url
         FROM ${this.s}.runs r
         LEFT JOIN LATERAL (SELECT labels, annotations, generator_url FROM ${this.s}.alerts WHERE fingerprint = r.fingerprint ORDER BY received_at DESC, id DESC LIMIT 1) a ON true
        WHERE r.incident_key = $1 AND r.rule = ANY($2::text[]) AND NOT r.dry_run AND r.queued_at > now() - interval '7 days'
        ORDER BY r.queued_at, r.job_id`,
      [dedupKey, rules],
    );
    return rows;
  }

  /** Events of an incident's runs after `afterId` (incident notes), oldest first, at most `limit`. */
  async incidentEvents(dedupKey: string, rules: string[], afterId: string, limit: number): Promise<{ id: string; job_id: string; rule: string; target: string | null; state: string; attempt: number | null; message: string }[]> {
    const { rows } = await this.pool.query(
      `SELECT e.id::text, e.job_id, r.rule, r.target, e.state, e.attempt, e.message FROM ${this.s}.run_events e JOIN ${this.s}.runs r ON r.job_id = e.job_id
        WHERE r.incident_key = $1 AND r.rule = ANY($2::text[]) AND NOT r.dry_run AND e.id > $3::bigint ORDER BY e.id LIMIT $4`,
      [dedupKey, rules, afterId, limit],
    );
    return rows;
  }

  /** Events of an incident's runs that must wake a person (`details.page`), since `since`. */
  async incidentPages(dedupKey: string, rules: string[], since: Date): Promise<{ id: string; job_id: string; page: string; message: string; reason: string | null }[]> {
    const { rows } = await this.pool.query(
      `SELECT e.id::text, e.job_id, e.details->>'page' AS page, e.message, e.reason FROM ${this.s}.runs r JOIN ${this.s}.run_events e ON e.job_id = r.job_id
        WHERE r.incident_key = $1 AND r.rule = ANY($2::text[]) AND NOT r.dry_run AND r.queued_at > now() - interval '7 days'
          AND e.details ? 'page' AND e.at > $3 ORDER BY e.id`,
      [dedupKey, rules, since],
    );
    return rows;
  }

  /** Counts of a rule's runs since a time, by state and reason, and its failed ones (a storm summary). */
  async stormCounts(rule: string, since: Date): Promise<{ counts: Record<string, number>; failed: { job_id: string; target: string | null; summary: string | null }[]; total: number }> {
    const [c, f] = await Promise.all([
      this.pool.query<{ state: string; n: string }>(`SELECT state, count(*) AS n FROM ${this.s}.runs WHERE rule = $1 AND queued_at >= $2 GROUP BY state`, [rule, since]),
      this.pool.query<{ job_id: string; target: string | null; summary: string | null }>(
        `SELECT job_id, target, summary FROM ${this.s}.runs WHERE rule = $1 AND queued_at >= $2 AND state = 'failed' ORDER BY finished_at DESC LIMIT 10`,
        [rule, since],
      ),
    ]);
    const counts: Record<string, number> = {};
    let total = 0;
    for (const r of c.rows) {
      counts[r.state] = Number(r.n);
      total += Number(r.n);
    }
    return { counts, failed: f.rows, total };
  }

  /** One row per sync that sent something or failed for good (never one per retry). */
  async recorded(n: { jobId: string; notifier: string; eventType: string; state: 'sent' | 'failed'; attempt: number; detail?: Record<string, unknown>; error?: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.s}.notifications (job_id, notifier, event_type, state, attempt, detail, error) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
      [n.jobId, n.notifier, n.eventType, n.state, n.attempt, storableDeep(n.detail) ?? null, n.error === undefined ? null : storable(n.error)],
    );
  }
}
