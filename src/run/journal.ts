import type { JobSpec, RecordedEvent, RunEvent } from '../core/run.js';
import { storable } from '../core/text.js';
import type { Logger } from '../log.js';
import { isDataError, type IntakeDelivery, type IntakeResult, type JournalStore, type PendingEvent, type StoredEvent } from '../store/journal-store.js';
import { untilStored } from '../store/retry.js';
import type { RunReader, RunRow } from '../store/runs.js';

/**
 * Someone who follows the journal: handed every event once it is durable (the notifiers). It
 * must return quickly and never throw into the writer: a follower's trouble is its own.
 */
export interface Follower {
  readonly name: string;
  follow(events: RecordedEvent[]): Promise<void>;
}

/** The run an event belongs to: its job id and rule (notifiers find the rule's notify section by it). */
export interface RunRef {
  jobId: string;
  rule: string;
  /** The run's incident key and whether it is a dry run, for the notifiers (from the run row). */
  incident?: string;
  dryRun?: boolean;
}

/** Most events written in one statement. */
const MAX_BATCH = 500;

/**
 * The run journal: the one way a run's story is written. Every event of a run (queued, running,
 * steps, outcomes, approvals, notes, verdicts, resolutions) goes through `intake`, `record` or
 * `judge`, which write it (the event and the run row it moves, together) and then hand it to the
 * followers. Nothing else writes run events.
 *
 * Writes are group-committed: the events recorded while one statement runs go together in the
 * next one, so many concurrent runs cost few statements. `record` resolves only once its event is
 * durable. A PostgreSQL outage is waited out (delay, never a lost event nor a used job attempt).
 */
export class Journal {
  private queue: { e: PendingEvent; extra: Partial<RecordedEvent>; resolve: (r: RecordedEvent) => void; reject: (err: Error) => void }[] = [];
  private flushing = false;
  private loads = new Map<string, { resolve: (r: RunRow | undefined) => void; reject: (err: Error) => void }[]>();
  private loadScheduled = false;

  constructor(
    private readonly store: JournalStore,
    private readonly reader: RunReader,
    private readonly o: { log: Logger; followers?: Follower[]; signal?: AbortSignal; now?: () => Date },
  ) {}

  private get followers(): Follower[] {
    return this.o.followers ?? [];
  }

  /** Adds a follower (the service adds the notifiers once they are built). */
  follow(f: Follower): void {
    (this.o.followers ??= []).push(f);
  }

  private now(): string {
    return (this.o.now?.() ?? new Date()).toISOString();
  }

  /** Takes in a batch of deliveries (see JournalStore.intake); the new events go to the followers. */
  async intake(batch: IntakeDelivery[]): Promise<IntakeResult> {
    const result = await untilStored('intake', () => this.store.intake(batch), { log: this.o.log, signal: this.o.signal });
    this.hand(result.events);
    return result;
  }

  /** Records one event of a run; resolves once it is durable, with its id. */
  record(run: RunRef, event: RunEvent): Promise<RecordedEvent> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        // The page travels in the details, so followers reading the journal back see it too.
        e: { jobId: run.jobId, rule: run.rule, type: event.type, at: event.at ?? this.now(), attempt: event.attempt, message: event.message,
          details: event.page ? { ...event.details, page: event.page } : event.details, reason: event.reason, error: event.error, acted: event.acted },
        extra: { ...pick(event), ...(run.incident ? { incident: run.incident } : {}), ...(run.dryRun !== undefined ? { dryRun: run.dryRun } : {}) },
        resolve,
        reject,
      });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /** The verdict on a successful fix, once (see JournalStore.judge); undefined when already judged. */
  async judge(run: RunRef, verdict: 'effective' | 'ineffective', message: string, details?: Record<string, unknown>): Promise<RecordedEvent | undefined> {
    const e = await untilStored('fix verdict', () => this.store.judge(run.jobId, verdict, message, details), { log: this.o.log, signal: this.o.signal });
    if (e) this.hand([e]);
    return e;
  }

  /** Creates the run of a job that has none (see JournalStore.ensureRun). */
  async ensureRun(job: JobSpec, queuedAt: string, incidentKey?: string): Promise<void> {
    const e = await untilStored('create run', () => this.store.ensureRun(job, queuedAt, incidentKey), { log: this.o.log, signal: this.o.signal });
    if (e) this.hand([e]);
  }

  /** A run's row; the loads asked for in the same turn of the event loop are one statement. */
  load(jobId: string): Promise<RunRow | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.loads.get(jobId);
      if (waiting) waiting.push({ resolve, reject });
      else this.loads.set(jobId, [{ resolve, reject }]);
      if (!this.loadScheduled) {
        this.loadScheduled = true;
        setImmediate(() => void this.runLoads());
      }
    });
  }

  private async runLoads(): Promise<void> {
    const loads = this.loads;
    this.loads = new Map();
    this.loadScheduled = false;
    try {
      const rows = await untilStored('read runs', () => this.reader.getRuns([...loads.keys()]), { log: this.o.log, signal: this.o.signal });
      const byId = new Map(rows.map((r) => [r.job_id, r]));
      for (const [id, ws] of loads) for (const w of ws) w.resolve(byId.get(id));
    } catch (err) {
      for (const ws of loads.values()) for (const w of ws) w.reject(err as Error);
    }
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const stored = await this.write(batch.map((b) => b.e));
        const recorded = stored.map((s, i): RecordedEvent => ({ ...s, ...batch[i]!.extra }));
        recorded.forEach((r, i) => batch[i]!.resolve(r));
        this.hand(recorded);
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    this.flushing = false;
  }

  /**
   * Writes a batch, waiting out PostgreSQL outages. Values PostgreSQL refuses (data exceptions)
   * are found by halving the batch; an event it still refuses alone is written without its details.
   */
  private async write(events: PendingEvent[]): Promise<StoredEvent[]> {
    try {
      return await untilStored('run events', () => this.store.append(events), { log: this.o.log, signal: this.o.signal });
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (events.length > 1) {
        const half = Math.ceil(events.length / 2);
        return [...(await this.write(events.slice(0, half))), ...(await this.write(events.slice(half)))];
      }
      const e = events[0]!;
      this.o.log.warn('run event refused by PostgreSQL: stored without its details', { job: e.jobId, event: e.type, error: (err as Error).message });
      return this.store.append([{ ...e, message: storable(e.message).slice(0, 10_000), details: { refused: (err as Error).message } }]);
    }
  }

  /** Hands durable events to the followers, without waiting for them. */
  private hand(events: (StoredEvent | RecordedEvent)[]): void {
    if (events.length === 0) return;
    for (const f of this.followers) {
      f.follow(events as RecordedEvent[]).catch((err: Error) => this.o.log.warn('a follower of the run journal failed', { follower: f.name, error: err.message }));
    }
  }
}

/** The writer's fields that are not stored as such but followers need (the page, the reason). */
function pick(e: RunEvent): Partial<RecordedEvent> {
  return { ...(e.page ? { page: e.page } : {}), ...(e.reason ? { reason: e.reason } : {}), ...(e.acted ? { acted: true } : {}), ...(e.error ? { error: e.error } : {}) };
}
