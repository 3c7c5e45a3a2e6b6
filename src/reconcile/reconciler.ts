import { deadline } from '../core/deadline.js';
import { isRedirect, MANUAL_REDIRECT, redirectLocation, redirectMessage } from '../core/redirect.js';
import type { Logger } from '../log.js';
import { QUEUES } from '../redis/connection.js';
import { jobShard } from '../run/placement.js';
import { acceptDelivery, type AcceptDeps } from '../receivers/webhook-accept.js';
import { webhookSchema } from '../core/alert.js';
import { decide } from '../rules/table.js';
import { apiAlertSchema, toWebhooks, type ApiAlert } from './convert.js';

export interface ReconcilerOptions {
  /** One Alertmanager, or every member of an HA cluster (each is asked; alerts are merged). */
  urls: string[];
  /** The receiver remediator is in Alertmanager's config: only alerts routed to it are taken. */
  receiver: string;
  intervalMs: number;
  /** The receiver path's dependencies: the reconciled alerts are accepted as a webhook delivery is. */
  deps: AcceptDeps;
  log: Logger;
  fetch?: typeof globalThis.fetch;
  requestTimeoutMs?: number;
}

export interface ReconcileResult {
  /** Active alerts routed to our receiver, merged over every Alertmanager that answered. */
  active: number;
  /** Of those, alerts with a rule to run and no job in Redis: fed to the receiver path. */
  missing: number;
  /** Deliveries built from them and accepted (the ingest stage makes their jobs, deduplicated). */
  accepted: number;
  /** Alertmanagers that did not answer. */
  failed: number;
}

/**
 * Asks Alertmanager for its active alerts at start and every interval, and feeds the ones that
 * have a rule to run but no job yet (they fired while remediator was down, or their webhook was
 * lost) through the receiver path. Dedup is the receiver's own (deterministic job ids, and the
 * worker's check of the audit), so an alert the webhook delivers as well still runs once; alerts
 * that already have their job are skipped before the receiver, so the audit gets no entry per
 * cycle for them.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private closed = false;
  private readonly fetch: typeof globalThis.fetch;

  constructor(private readonly o: ReconcilerOptions) {
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  start(): this {
    this.schedule(0);
    return this;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((err: Error) => this.o.log.error('reconciliation with Alertmanager failed', { error: err }))
        .finally(() => this.schedule(this.o.intervalMs));
    }, ms);
    this.timer.unref();
  }

  async runOnce(): Promise<ReconcileResult> {
    const fetched = await Promise.all(this.o.urls.map((u) => this.activeAlerts(u)));
    const failed = fetched.filter((f) => f === undefined).length;
    // Members of an HA pair return the same alerts: one per fingerprint and startsAt.
    const byKey = new Map<string, ApiAlert>();
    for (const list of fetched) for (const a of list ?? []) byKey.set(`${a.fingerprint}\n${a.startsAt}`, a);
    const active = [...byKey.values()].filter((a) => a.status.state === 'active');
    const missing = await this.withoutJobs(active);
    let accepted = 0;
    const externalURL = publicUrl(this.o.urls[0]!);
    for (const hook of toWebhooks(missing, this.o.receiver, externalURL)) {
      const parsed = webhookSchema.safeParse(hook);
      if (!parsed.success) {
        const i = parsed.error.issues[0]!;
        this.o.log.warn('alerts from Alertmanager API skipped: not a valid webhook payload', { groupKey: hook.groupKey, path: i.path.join('.'), issue: i.message });
        continue;
      }
      // The same acceptance as a webhook: one durable write; the ingest stage matches and dedups.
      const answer = await acceptDelivery(this.o.deps, JSON.stringify(hook), hook);
      if (answer.status === 200) accepted++;
      else this.o.log.warn('reconciled alerts not accepted; next cycle retries', { status: answer.status, answer: answer.body, groupKey: hook.groupKey });
    }
    const result = { active: active.length, missing: missing.length, accepted, failed };
    (missing.length ? this.o.log.info : this.o.log.debug)('reconciled with Alertmanager', { ...result });
    return result;
  }

  /** Active alerts routed to our receiver, or undefined when this Alertmanager did not answer. */
  private async activeAlerts(base: string): Promise<ApiAlert[] | undefined> {
    const { url, headers } = splitCredentials(base);
    // The receiver filter is a regular expression, anchored by Alertmanager: escape the name.
    const query = new URLSearchParams({ active: 'true', silenced: 'false', inhibited: 'false', unprocessed: 'false', receiver: escapeRegex(this.o.receiver) });
    const d = deadline('Alertmanager API request', this.o.requestTimeoutMs ?? 10_000);
    try {
      const endpoint = `${url.replace(/\/$/, '')}/api/v2/alerts?${query}`;
      // Never followed: the basic credentials would go wherever the answer points (src/core/redirect.ts).
      const res = await d.race(this.fetch(endpoint, { headers, signal: d.signal, ...MANUAL_REDIRECT }));
      if (isRedirect(res)) throw new Error(redirectMessage('GET /api/v2/alerts', res.status, redirectLocation(res.headers.get('location'), endpoint)));
      const text = await d.race(res.text());
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      const list = JSON.parse(text) as unknown;
      if (!Array.isArray(list)) throw new Error('not a list of alerts');
      const out: ApiAlert[] = [];
      for (const item of list) {
        const a = apiAlertSchema.safeParse(item);
        if (a.success) out.push(a.data);
        else this.o.log.warn('alert from Alertmanager API skipped: unexpected shape', { alertmanager: publicUrl(base), issue: a.error.issues[0]?.message });
      }
      return out;
    } catch (err) {
      this.o.log.warn('Alertmanager API not reachable for reconciliation', { alertmanager: publicUrl(base), error: (err as Error).message });
      return undefined;
    } finally {
      d.dispose();
    }
  }

  /** Alerts with at least one rule to run whose job is not in the remediation queue. */
  private async withoutJobs(alerts: ApiAlert[]): Promise<ApiAlert[]> {
    const table = this.o.deps.table();
    if (!table || alerts.length === 0) return [];
    const ctx = { groupKey: '', receiver: this.o.receiver, externalURL: '', receivedAt: new Date().toISOString(), dryRun: this.o.deps.dryRun };
    const prefixes = this.o.deps.shardPrefixes ?? [this.o.deps.prefix];
    const out: ApiAlert[] = [];
    for (const a of alerts) {
      const info = { ...a, status: 'firing' as const };
      const jobs = decide(table, info, ctx).decisions.flatMap((d) => (d.job ? [d.job] : []));
      if (jobs.length === 0) continue;
      const keys = jobs.map((j) => `${prefixes[jobShard(j, table.rules.find((r) => r.spec.name === j.rule)?.spec, prefixes.length)]}:${QUEUES.remediations}:${j.jobId}`);
      const exists = await Promise.all(keys.map((k) => this.o.deps.redis.exists(k)));
      if (exists.some((n) => n === 0)) out.push(a);
    }
    return out;
  }
}

/** fetch refuses URLs with credentials: move `user:password@` into a basic Authorization header. */
function splitCredentials(u: string): { url: string; headers: Record<string, string> } {
  const url = new URL(u);
  if (!url.username && !url.password) return { url: url.toString(), headers: {} };
  const basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  url.username = '';
  url.password = '';
  return { url: url.toString(), headers: { authorization: `Basic ${basic}` } };
}

/** The URL without credentials, for logs and the payload's externalURL. */
function publicUrl(u: string): string {
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
