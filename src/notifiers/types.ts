import type { Logger } from '../log.js';
import type { RunEvent } from './events.js';

/** A destination for run events (Slack, PagerDuty). Each has its own BullMQ queue and retries alone. */
export interface Notifier {
  readonly name: 'slack' | 'pagerduty';
  /** Cheap filter (no I/O) deciding whether an event becomes a job on this notifier's queue. */
  accepts(event: RunEvent): boolean;
  /**
   * Delivers one event. Throw NotifyPermanentError for failures retrying cannot fix
   * (invalid_auth, channel_not_found, HTTP 400), NotifyRetryAfterError for rate limits;
   * anything else is retried with backoff for hours.
   * The returned detail (channel, ts, dedup_key, HTTP status...) goes to the audit; no secrets.
   */
  deliver(event: RunEvent, ctx: DeliveryContext): Promise<Record<string, unknown> | void>;
  /** Closes clients on shutdown. */
  close?(): Promise<void>;
}

export interface DeliveryContext {
  /** 1 on the first attempt. */
  attempt: number;
  log: Logger;
  signal: AbortSignal;
}

export class NotifyPermanentError extends Error {
  override readonly name = 'NotifyPermanentError';
  constructor(message: string, readonly detail: Record<string, unknown> = {}) {
    super(message);
  }
}

/** Rate limited: try again after `retryAfterMs`, without using up an attempt. */
export class NotifyRetryAfterError extends Error {
  override readonly name = 'NotifyRetryAfterError';
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
  }
}

/** Wait for an earlier event of the same run to be delivered first (ordering), without using up an attempt. */
export class NotifyNotYetError extends Error {
  override readonly name = 'NotifyNotYetError';
  constructor(message: string, readonly retryAfterMs = 200) {
    super(message);
  }
}
