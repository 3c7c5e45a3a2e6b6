import express, { type Router } from 'express';
import type { Queue } from 'bullmq';
import type { Pool } from 'pg';
import { ident } from '../audit/migrate.js';
import { withDeadline } from '../queue/queues.js';
import type { Persistence } from '../queue/redis-persistence.js';

/** Counters of this process, in Prometheus' text format (no client library needed for a handful). */
export class Counters {
  private readonly values = new Map<string, Map<string, number>>();
  constructor(private readonly help: Record<string, string>) {}

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    let series = this.values.get(name);
    if (!series) this.values.set(name, (series = new Map()));
    const key = labelText(labels);
    series.set(key, (series.get(key) ?? 0) + by);
  }

  render(): string[] {
    const out: string[] = [];
    for (const [name, help] of Object.entries(this.help)) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of this.values.get(name) ?? []) out.push(`${name}${labels} ${v}`);
    }
    return out;
  }
}

export const receiverCounters = (): Counters =>
  new Counters({
    remediator_webhook_requests_total: 'Webhook requests answered, by HTTP status code.',
    remediator_alerts_received_total: 'Alerts received in accepted webhooks, by alert status.',
    remediator_decisions_total: 'Decisions taken on received alerts (enqueued, duplicate, no_match, not_applicable, invalid, refused).',
  });

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/**
 * GET /metrics: this process's receiver counters, the depth of every queue (shared, from Redis),
 * and the remediation runs of the last 24 hours by action, state and reason (shared, from the
 * audit). Labels hold names and states only, never alert labels or secrets.
 */
export function metricsRouter(deps: {
  counters: Counters; queues: () => Queue[]; pool: Pool; schema: string; persistence?: () => Persistence | undefined;
  /** Runs held back by a safety gate, by reason, counted in Redis by every worker process. */
  safetyCounts?: () => Promise<Record<string, number>>;
}): Router {
  const router = express.Router();
  router.get('/metrics', async (_req, res) => {
    const lines = deps.counters.render();
    lines.push(
      '# HELP remediator_redis_persistence Redis persistence as last checked at start or reconnect (CONFIG GET appendonly, save): 1 on, 0 off. No series when Redis refused CONFIG.',
      '# TYPE remediator_redis_persistence gauge',
    );
    const p = deps.persistence?.();
    if (p) lines.push(`remediator_redis_persistence{mode="aof"} ${Number(p.aof)}`, `remediator_redis_persistence{mode="rdb"} ${Number(p.rdb)}`);
    lines.push('# HELP remediator_queue_jobs Jobs in each queue by state.', '# TYPE remediator_queue_jobs gauge');
    let up = 1;
    try {
      for (const q of deps.queues()) {
        const counts = await withDeadline(q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'), 1000, 'queue counts');
        for (const [state, n] of Object.entries(counts)) lines.push(`remediator_queue_jobs${labelText({ queue: q.name, state })} ${n}`);
      }
    } catch {
      up = 0;
    }
    lines.push('# HELP remediator_runs_last_24h Remediation runs queued in the last 24 hours, by action, state and failure reason.', '# TYPE remediator_runs_last_24h gauge');
    try {
      const { rows } = await deps.pool.query<{ action: string; state: string; reason: string | null; n: string }>(
        `SELECT action, state, error_reason AS reason, count(*) AS n FROM ${ident(deps.schema)}.runs
         WHERE queued_at > now() - interval '24 hours' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      );
      for (const r of rows) lines.push(`remediator_runs_last_24h${labelText({ action: r.action, state: r.state, reason: r.reason ?? '' })} ${r.n}`);
    } catch {
      up = 0;
    }
    lines.push('# HELP remediator_safety_skips_total Runs not acted on by a safety gate (paused, quarantined, human_ack, resolved, budget), all processes.', '# TYPE remediator_safety_skips_total counter');
    try {
      for (const [reason, n] of Object.entries((await deps.safetyCounts?.()) ?? {}).sort()) lines.push(`remediator_safety_skips_total${labelText({ reason })} ${n}`);
    } catch {
      up = 0;
    }
    lines.push('# HELP remediator_dependencies_up 1 when Redis and PostgreSQL answered this scrape.', '# TYPE remediator_dependencies_up gauge', `remediator_dependencies_up ${up}`);
    res.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
  });
  return router;
}
