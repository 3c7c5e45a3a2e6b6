import type { RecordedEvent } from '../core/run.js';
import type { Logger } from '../log.js';
import type { Pace } from '../redis/pacer.js';
import type { RuleSpec } from '../rules/schema.js';

/** Where an event must be told: an item (a run's thread, an incident, a summary) at a destination. */
export interface Route {
  /** `slack:<channel>`, `pagerduty:<routing key env var>`...: what is paced as one. */
  destination: string;
  item: string;
  /** Goes before the rest: a run's first message, a failure, an approval request, a page. */
  urgent: boolean;
}

export interface SyncContext {
  log: Logger;
  /** The item was taken as urgent: do the urgent part (a run's first message) and mark the rest for later. */
  urgent: boolean;
  /** Aborted when the drain must stop (shutdown, delivery timeout). */
  signal: AbortSignal;
  /** Waits until the destination may take one more call (the pacer's token); call it before every call out. */
  paced(): Promise<void>;
  /** Marks other items of this destination (a storm summary a digested run changes). */
  mark(item: string, urgent: boolean, dueMs?: number): Promise<void>;
}

/**
 * A notifier follows the run journal: `route` says (without I/O) which of its items an event
 * makes out of date; `sync` later brings one item up to date from the journal, however many events
 * came meanwhile. Notifiers are listed in src/notifiers/registry.ts: a new one is one file and one
 * line there. Errors follow src/core/errors.ts: PermanentError (give up on this item),
 * RateLimitedError (the whole destination waits), anything else is retried with backoff.
 */
export interface Notifier {
  readonly name: string;
  /** How fast one destination of this notifier takes calls. */
  readonly pace: Pace;
  route(event: RecordedEvent, rule: RuleSpec | undefined): Route[];
  /** Returns what it sent (for the audit); nothing when the item had nothing new. */
  sync(destination: string, item: string, ctx: SyncContext): Promise<Record<string, unknown> | void>;
  close?(): Promise<void>;
}
