import type { Pool, PoolClient } from 'pg';
import type { AlertInfo } from '../core/alert.js';
import { isFinal, type JobSpec, type Reason, type RunEventType } from '../core/run.js';
import { storable, storableDeep } from '../core/text.js';
import { ident } from './migrate.js';
import { inTransaction } from './tx.js';

/**
 * All SQL of the run journal (src/run/journal.ts is its one writer API). A run is one `runs` row,
 * the projection of its events in `run_events`; every write here keeps the two together.
 */

export type DecisionKind = 'enqueued' | 'duplicate' | 'no_match' | 'not_applicable' | 'invalid' | 'refused';

/** One decision on one alert of a delivery; `job` for those that become runs (enqueued, invalid, refused). */
export interface IntakeDecision {
  decision: DecisionKind;
  rule?: string;
  jobId?: string;
  reason?: string;
  job?: JobSpec;
  /** The incident (PagerDuty dedup key) the run belongs to. */
  incidentKey?: string;
  /** A resolved alert whose firing this rule acts on: the run of `jobId` sees its alert resolve. */
  resolves?: boolean;
}

export interface IntakeDelivery {
  /** The delivery stream entry id. */
  id: string;
  receivedAt: string;
  receiver: string;
  groupKey: string;
  externalURL: string;
  alerts: { alert: AlertInfo; decisions: IntakeDecision[] }[];
}

/** An event the store wrote, with its id (followers are handed these). */
export interface StoredEvent {
  id: string;
  jobId: string;
  rule: string;
  type: RunEventType;
  at: string;
  message: string;
  attempt?: number;
  details?: Record<string, unknown>;
  reason?: Reason;
  incident?: string;
  dryRun?: boolean;
}

export interface IntakeResult {
  /** Jobs to put on the queue: the new runs, and runs of a delivery read again that have not started. */
  jobs: JobSpec[];
  /** `queued` and `alert_resolved` events, in order. */
  events: StoredEvent[];
}

/** How an event changes its run's row (see RunPatch in fold()). */
export interface PendingEvent {
  jobId: string;
  rule: string;
  type: RunEventType;
  at: string;
  attempt?: number;
  message: string;
  details?: Record<string, unknown>;
  reason?: Reason;
  error?: string;
  acted?: boolean;
}

const parseTime = (s: string) => (s.startsWith('0001-') || Number.isNaN(Date.parse(s)) ? null : new Date(s).toISOString());

/** PostgreSQL refused the values themselves (SQLSTATE class 22, data exception; 54, too large). */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'));
}

export class JournalStore {
  private readonly s: string;
  constructor(readonly pool: Pool, readonly schema: string) {
    this.s = ident(schema);
  }

  /**
   * Takes in a batch of deliveries in one transaction: the deliveries (once each), their alerts
   * and decisions, a run with its `queued` event for each new firing, and every resolution, kept
   * until its run exists (a firing and its resolution in one batch, in either order, give one run
   * that already knows its alert resolved). Per-job advisory locks serialise two workers taking in
   * a firing and its resolution at the same time. A firing already handled (the same job id, or
   * an earlier run of the same rule on the same alert queued since it started) is a duplicate.
   * Mutates the decisions' `decision` and `reason` to what was done.
   */
  async intake(batch: IntakeDelivery[]): Promise<IntakeResult> {
    try {
      return await inTransaction(this.pool, (c) => this.intakeIn(c, batch));
    } catch (err) {
      if (!isDataError(err)) throw err;
    }
    // PostgreSQL refused some value (the boundary makes text storable, but a time may still be
    // out of its range): each alert on its own, and one it still refuses without its labels,
    // annotations and times, with the reason. Every alert of the delivery keeps its rows.
    const out: IntakeResult = { jobs: [], events: [] };
    for (const d of batch) {
      for (const [i, entry] of d.alerts.entries()) {
        const one: IntakeDelivery = { ...d, id: `${d.id}#${i}`, alerts: [entry] };
        let r: IntakeResult;
        try {
          r = await inTransaction(this.pool, (c) => this.intakeIn(c, [one]));
        } catch (err) {
          if (!isDataError(err)) throw err;
          const why = `labels, annotations and times not stored: ${(err as Error).message}`;
          const alert = { ...entry.alert, labels: { alertname: String(entry.alert.labels.alertname ?? '') }, annotations: {}, generatorURL: '', startsAt: '', endsAt: '' };
          const decisions = entry.decisions.map((x) => ({ ...x, reason: x.reason ? `${x.reason}; ${why}` : why, job: x.job && { ...x.job, alert: { ...x.job.alert, startsAt: '' } } }));
          r = await inTransaction(this.pool, (c) => this.intakeIn(c, [{ ...one, alerts: [{ alert, decisions }] }]));
          entry.decisions.forEach((x, k) => Object.assign(x, { decision: decisions[k]!.decision, reason: decisions[k]!.reason }));
          // The queue gets the jobs as they were: only what PostgreSQL keeps was cut.
          r.jobs = r.jobs.map((j) => entry.decisions.find((x) => x.job?.jobId === j.jobId)?.job ?? j);
        }
        out.jobs.push(...r.jobs);
        out.events.push(...r.events);
      }
    }
    return out;
  }

  private async intakeIn(c: PoolClient, batch: IntakeDelivery[]): Promise<IntakeResult> {
    const s = this.s;
    type Candidate = { d: IntakeDecision; job: JobSpec; delivery: IntakeDelivery };
    const candidates = new Map<string, Candidate>();
    const sameBatch: IntakeDecision[] = [];
    const resolutions = new Map<string, string>();
    for (const delivery of batch) {
      for (const { decisions } of delivery.alerts) {
        for (const d of decisions) {
          if (d.job) {
            if (candidates.has(d.job.jobId)) sameBatch.push(d);
            else candidates.set(d.job.jobId, { d, job: d.job, delivery });
          }
          if (d.resolves && d.jobId && !resolutions.has(d.jobId)) resolutions.set(d.jobId, delivery.receivedAt);
        }
      }
    }
    const lockIds = [...new Set([...candidates.keys(), ...resolutions.keys()])];
    if (lockIds.length) {
      await c.query(
        `SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended($2 || j, 0) AS k FROM unnest($1::text[]) AS j ORDER BY 1) AS l`,
        [lockIds, `journal:${this.schema}:`],
      );
    }
    const fresh = new Set(
      (await c.query<{ id: string }>(
        `INSERT INTO ${s}.deliveries (id, received_at) SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT DO NOTHING RETURNING id`,
        [batch.map((d) => d.id), batch.map((d) => d.receivedAt)],
      )).rows.map((r) => r.id),
    );
    if (resolutions.size) {
      await c.query(
        `INSERT INTO ${s}.alert_resolutions (job_id, resolved_at) SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT DO NOTHING`,
        [[...resolutions.keys()], [...resolutions.values()]],
      );
    }
    const created = new Map<string, string | null>();
    if (candidates.size) {
      const rows = [...candidates.values()].map(({ job, d, delivery }) => ({
        job_id: job.jobId, rule: job.rule, action: job.action, target: job.target === undefined ? null : storable(job.target), fingerprint: job.alert.fingerprint,
        alertname: job.alert.labels.alertname === undefined ? null : storable(job.alert.labels.alertname), starts_at: parseTime(job.alert.startsAt), group_key: storable(job.groupKey),
        incident_key: d.incidentKey ?? null, dry_run: job.dryRun, queued_at: delivery.receivedAt,
      }));
      const inserted = await c.query<{ job_id: string; alert_resolved_at: Date | null }>(
        `INSERT INTO ${s}.runs (job_id, rule, action, target, fingerprint, alertname, starts_at, group_key, incident_key, dry_run, state, queued_at, alert_resolved_at)
         SELECT x.job_id, x.rule, x.action, x.target, x.fingerprint, x.alertname, x.starts_at, x.group_key, x.incident_key, x.dry_run, 'queued', x.queued_at,
                (SELECT ar.resolved_at FROM ${s}.alert_resolutions ar WHERE ar.job_id = x.job_id)
         FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, rule text, action text, target text, fingerprint text, alertname text,
           starts_at timestamptz, group_key text, incident_key text, dry_run boolean, queued_at timestamptz)
         WHERE NOT EXISTS (
           SELECT 1 FROM ${s}.runs r WHERE r.fingerprint = x.fingerprint AND r.rule = x.rule AND r.job_id <> x.job_id
             AND x.starts_at IS NOT NULL AND r.queued_at >= x.starts_at AND NOT (r.state = 'skipped' AND r.error_reason = 'duplicate'))
         ON CONFLICT (job_id) DO NOTHING
         RETURNING job_id, alert_resolved_at`,
        [JSON.stringify(rows)],
      );
      for (const r of inserted.rows) created.set(r.job_id, r.alert_resolved_at ? r.alert_resolved_at.toISOString() : null);
    }
    // Candidates not created: the same firing has a run already, or an earlier run handled it.
    const others = [...candidates.keys()].filter((id) => !created.has(id));
    const existing = new Map<string, string>();
    if (others.length) {
      const { rows } = await c.query<{ job_id: string; state: string }>(`SELECT job_id, state FROM ${s}.runs WHERE job_id = ANY($1::text[])`, [others]);
      for (const r of rows) existing.set(r.job_id, r.state);
    }
    const jobs: JobSpec[] = [];
    for (const [id, { d, job, delivery }] of candidates) {
      if (created.has(id)) {
        jobs.push(job);
        continue;
      }
      const state = existing.get(id);
      d.decision = 'duplicate';
      d.reason = state ? `this firing already has a run (${state})` : 'an earlier run of this rule handled this alert since it started';
      // A delivery read again after its worker died: its job may never have reached the queue.
      if (!fresh.has(delivery.id) && state === 'queued') jobs.push(job);
    }
    for (const d of sameBatch) {
      d.decision = 'duplicate';
      d.reason = 'this firing already has a run';
    }

    const updated = resolutions.size
      ? (await c.query<{ job_id: string; rule: string; alert_resolved_at: Date; incident_key: string | null; dry_run: boolean }>(
          `UPDATE ${s}.runs r SET alert_resolved_at = u.t, updated_at = now()
             FROM unnest($1::text[], $2::timestamptz[]) AS u(j, t)
            WHERE r.job_id = u.j AND r.alert_resolved_at IS NULL
            RETURNING r.job_id, r.rule, r.alert_resolved_at, r.incident_key, r.dry_run`,
          [[...resolutions.keys()], [...resolutions.values()]],
        )).rows
      : [];

    const pending: Omit<StoredEvent, 'id'>[] = [];
    for (const [id, resolvedAt] of created) {
      const { job, delivery, d } = candidates.get(id)!;
      const who = { jobId: id, rule: job.rule, incident: d.incidentKey, dryRun: job.dryRun };
      pending.push({ ...who, type: 'queued', at: delivery.receivedAt, message: `Queued by rule ${job.rule}` });
      if (resolvedAt) pending.push({ ...who, type: 'alert_resolved', at: resolvedAt, message: 'Alert resolved in Alertmanager.' });
    }
    for (const u of updated) {
      pending.push({ jobId: u.job_id, rule: u.rule, incident: u.incident_key ?? undefined, dryRun: u.dry_run, type: 'alert_resolved', at: u.alert_resolved_at.toISOString(), message: 'Alert resolved in Alertmanager.' });
    }
    const events = await this.insertEvents(c, pending);

    const freshDeliveries = batch.filter((d) => fresh.has(d.id));
    if (freshDeliveries.length) await this.insertAlerts(c, freshDeliveries);
    return { jobs, events };
  }

  private async insertAlerts(c: PoolClient, deliveries: IntakeDelivery[]): Promise<void> {
    const alerts: Record<string, unknown>[] = [];
    const decisions: Record<string, unknown>[] = [];
    for (const d of deliveries) {
      for (const { alert, decisions: ds } of d.alerts) {
        const ord = alerts.length;
        alerts.push({
          ord, delivery_id: d.id, received_at: d.receivedAt, fingerprint: alert.fingerprint, alertname: alert.labels.alertname ?? null, status: alert.status,
          starts_at: parseTime(alert.startsAt), ends_at: parseTime(alert.endsAt), labels: storableDeep(alert.labels), annotations: storableDeep(alert.annotations),
          generator_url: storable(alert.generatorURL), receiver: storable(d.receiver), group_key: storable(d.groupKey), external_url: storable(d.externalURL),
        });
        for (const x of ds) decisions.push({ ord, decided_at: d.receivedAt, fingerprint: alert.fingerprint, rule: x.rule ?? null, decision: x.decision, job_id: x.jobId ?? null, reason: x.reason ?? null });
      }
    }
    if (alerts.length === 0) return;
    const s = this.s;
    await c.query(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, delivery_id text, received_at timestamptz, fingerprint text, alertname text,
                    status text, starts_at timestamptz, ends_at timestamptz, labels jsonb, annotations jsonb, generator_url text, receiver text,
                    group_key text, external_url text)),
            ids AS (SELECT nextval(pg_get_serial_sequence('${s}.alerts', 'id')) AS id, ord FROM (SELECT ord FROM x ORDER BY ord) o),
            a AS (INSERT INTO ${s}.alerts (id, delivery_id, received_at, fingerprint, alertname, status, starts_at, ends_at, labels, annotations, generator_url, receiver, group_key, external_url)
                  SELECT ids.id, x.delivery_id, x.received_at, x.fingerprint, x.alertname, x.status, x.starts_at, x.ends_at, x.labels, x.annotations,
                         x.generator_url, x.receiver, x.group_key, x.external_url FROM x JOIN ids USING (ord)),
            d AS (INSERT INTO ${s}.decisions (alert_id, decided_at, fingerprint, rule, decision, job_id, reason)
                  SELECT ids.id, y.decided_at, y.fingerprint, y.rule, y.decision, y.job_id, y.reason
                    FROM jsonb_to_recordset($2::jsonb) AS y(ord int, decided_at timestamptz, fingerprint text, rule text, decision text, job_id text, reason text)
                    JOIN ids USING (ord))
       SELECT count(*) FROM ids`,
      [JSON.stringify(alerts), JSON.stringify(decisions)],
    );
  }

  /** Inserts events in order and returns them with their ids (ids drawn first, so the mapping is exact). */
  private async insertEvents(c: Pick<PoolClient, 'query'>, events: Omit<StoredEvent, 'id'>[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const s = this.s;
    const rows = events.map((e, ord) => ({
      ord, job_id: e.jobId, at: e.at, state: e.type, attempt: e.attempt ?? null, message: storable(e.message), details: storableDeep(e.details) ?? null,
    }));
    const { rows: ids } = await c.query<{ id: string; ord: number }>(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, job_id text, at timestamptz, state text, attempt int, message text, details jsonb)),
            ids AS (SELECT nextval(pg_get_serial_sequence('${s}.run_events', 'id')) AS id, ord FROM (SELECT ord FROM x ORDER BY ord) o),
            ins AS (INSERT INTO ${s}.run_events (id, job_id, at, state, attempt, message, details)
                    SELECT ids.id, x.job_id, x.at, x.state, x.attempt, x.message, x.details FROM x JOIN ids USING (ord))
       SELECT id::text, ord FROM ids`,
      [JSON.stringify(rows)],
    );
    const byOrd = new Map(ids.map((r) => [Number(r.ord), r.id]));
    return events.map((e, ord) => ({ ...e, id: byOrd.get(ord)! }));
  }


  /**
   * Appends events of several runs in one statement, and moves each run's row with them: the
   * events of one run are folded in order into one change of its row (state, attempts, times,
   * summary, error), so a batch holding `running`, steps and the outcome of one run makes the
   * same row as writing them one by one.
   */
  async append(events: PendingEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const patches = fold(events);
    const s = this.s;
    const rows = events.map((e, ord) => ({
      ord, job_id: e.jobId, at: e.at, state: e.type, attempt: e.attempt ?? null, message: storable(e.message), details: storableDeep(e.details) ?? null, reason: e.reason ?? null,
    }));
    const { rows: ids } = await this.pool.query<{ id: string; ord: number }>(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, job_id text, at timestamptz, state text, attempt int, message text, details jsonb, reason text)),
            ids AS (SELECT nextval(pg_get_serial_sequence('${s}.run_events', 'id')) AS id, ord FROM (SELECT ord FROM x ORDER BY ord) o),
            ins AS (INSERT INTO ${s}.run_events (id, job_id, at, state, attempt, message, details, reason)
                    SELECT ids.id, x.job_id, x.at, x.state, x.attempt, x.message, x.details, x.reason FROM x JOIN ids USING (ord)),
            p AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS p(job_id text, state text, attempts int, started_at timestamptz,
                    set_finished boolean, finished_at timestamptz, set_result boolean, summary text, details jsonb,
                    set_error boolean, error_reason text, error_message text, acted_at timestamptz)),
            up AS (UPDATE ${s}.runs r SET
                     state = COALESCE(p.state, r.state),
                     attempts = GREATEST(r.attempts, COALESCE(p.attempts, 0)),
                     started_at = COALESCE(r.started_at, p.started_at),
                     finished_at = CASE WHEN p.set_finished THEN p.finished_at ELSE r.finished_at END,
                     duration_ms = CASE WHEN NOT p.set_finished THEN r.duration_ms WHEN p.finished_at IS NULL THEN NULL
                       ELSE (EXTRACT(EPOCH FROM (p.finished_at - COALESCE(r.started_at, p.started_at, p.finished_at))) * 1000)::int END,
                     summary = CASE WHEN p.set_result THEN p.summary ELSE r.summary END,
                     details = CASE WHEN p.set_result THEN p.details ELSE r.details END,
                     error_reason = CASE WHEN p.set_error THEN p.error_reason ELSE r.error_reason END,
                     error_message = CASE WHEN p.set_error THEN p.error_message ELSE r.error_message END,
                     acted_at = COALESCE(r.acted_at, p.acted_at),
                     updated_at = now()
                   FROM p WHERE r.job_id = p.job_id)
       SELECT id::text, ord FROM ids`,
      [JSON.stringify(rows), JSON.stringify(patches)],
    );
    const byOrd = new Map(ids.map((r) => [Number(r.ord), r.id]));
    return events.map((e, ord) => ({
      id: byOrd.get(ord)!, jobId: e.jobId, rule: e.rule, type: e.type, at: e.at, message: e.message,
      ...(e.attempt !== undefined ? { attempt: e.attempt } : {}), ...(e.details ? { details: e.details } : {}), ...(e.reason ? { reason: e.reason } : {}),
    }));
  }

  /**
   * Creates the run of a job that has none (a job queued before this version, or added by hand),
   * with its `queued` event. No-op when the run exists.
   */
  async ensureRun(job: JobSpec, queuedAt: string, incidentKey?: string): Promise<StoredEvent | undefined> {
    return inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query(
        `INSERT INTO ${this.s}.runs (job_id, rule, action, target, fingerprint, alertname, starts_at, group_key, incident_key, dry_run, state, queued_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'queued',$11) ON CONFLICT (job_id) DO NOTHING`,
        [job.jobId, job.rule, job.action, job.target ?? null, job.alert.fingerprint, job.alert.labels.alertname ?? null,
          parseTime(job.alert.startsAt), job.groupKey, incidentKey ?? null, job.dryRun, queuedAt],
      );
      if (!rowCount) return undefined;
      const [e] = await this.insertEvents(c, [{ jobId: job.jobId, rule: job.rule, type: 'queued', at: queuedAt, message: `Queued by rule ${job.rule}` }]);
      return e;
    });
  }

  /**
   * Records a verdict on a successful fix once (whichever process judges first): sets
   * `fix_verdict` and appends the event in one statement. Undefined when it was judged already.
   */
  async judge(jobId: string, verdict: 'effective' | 'ineffective', message: string, details?: Record<string, unknown>): Promise<StoredEvent | undefined> {
    const s = this.s;
    const { rows } = await this.pool.query<{ id: string; rule: string; at: Date; incident_key: string | null; dry_run: boolean }>(
      `WITH u AS (UPDATE ${s}.runs SET fix_verdict = $2, updated_at = now() WHERE job_id = $1 AND fix_verdict IS NULL RETURNING job_id, rule, incident_key, dry_run)
       INSERT INTO ${s}.run_events (job_id, state, message, details) SELECT job_id, $2, $3, $4 FROM u
       RETURNING id::text, (SELECT rule FROM u) AS rule, at, (SELECT incident_key FROM u) AS incident_key, (SELECT dry_run FROM u) AS dry_run`,
      [jobId, verdict, storable(message), storableDeep(details) ?? null],
    );
    const r = rows[0];
    return r && { id: r.id, jobId, rule: r.rule, type: verdict, at: r.at.toISOString(), message, incident: r.incident_key ?? undefined, dryRun: r.dry_run, ...(details ? { details } : {}) };
  }
}

/** The change one batch of events makes to each run's row. */
interface RunPatch {
  job_id: string;
  state: string | null;
  attempts: number | null;
  started_at: string | null;
  set_finished: boolean;
  finished_at: string | null;
  set_result: boolean;
  summary: string | null;
  details: Record<string, unknown> | null;
  set_error: boolean;
  error_reason: string | null;
  error_message: string | null;
  acted_at: string | null;
}

/** Folds each run's events, in order, into the one change of its row (the projection). */
function fold(events: PendingEvent[]): RunPatch[] {
  const out = new Map<string, RunPatch>();
  for (const e of events) {
    let p = out.get(e.jobId);
    if (!p) {
      p = { job_id: e.jobId, state: null, attempts: null, started_at: null, set_finished: false, finished_at: null, set_result: false, summary: null, details: null, set_error: false, error_reason: null, error_message: null, acted_at: null };
      out.set(e.jobId, p);
    }
    if (e.attempt !== undefined && (e.type === 'running' || e.type === 'retrying' || isFinal(e.type))) p.attempts = Math.max(p.attempts ?? 0, e.attempt);
    if (e.type === 'step' && e.acted) p.acted_at ??= e.at;
    if (e.type === 'running') {
      p.state = 'running';
      p.started_at ??= e.at;
      p.set_finished = true;
      p.finished_at = null;
      p.set_error = true;
      p.error_reason = null;
      p.error_message = null;
    } else if (e.type === 'retrying' || isFinal(e.type)) {
      p.state = e.type;
      p.set_finished = true;
      p.finished_at = e.type === 'retrying' ? null : e.at;
      p.set_result = true;
      p.summary = storable(e.message);
      p.details = storableDeep(e.details) ?? null;
      p.set_error = true;
      p.error_reason = e.reason ?? null;
      p.error_message = e.error === undefined ? null : storable(e.error);
    }
  }
  return [...out.values()].filter((p) => p.state !== null || p.acted_at !== null);
}
