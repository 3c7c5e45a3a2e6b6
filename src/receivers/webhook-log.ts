import type { IngestRecord } from '../store/journal-store.js';

/** At most this many runs are named in one webhook's log line (a storm has thousands of alerts). */
const MAX_NAMED = 50;

/**
 * The fields of the one log line per accepted webhook: each run it created or found (job id,
 * rule, fingerprint, decision), and how many alerts matched no rule.
 */
export function webhookLogFields(record: IngestRecord, enqueued: number, duplicates: number): Record<string, unknown> {
  const runs: { job: string; rule?: string; fingerprint: string; decision: string }[] = [];
  let total = 0;
  let unmatched = 0;
  for (const { alert, decisions } of record.alerts) {
    if (!decisions.some((d) => d.jobId)) unmatched++;
    for (const d of decisions) {
      if (!d.jobId) continue;
      total++;
      if (runs.length < MAX_NAMED) runs.push({ job: d.jobId, rule: d.rule, fingerprint: alert.fingerprint, decision: d.decision });
    }
  }
  return {
    groupKey: record.groupKey, receiver: record.receiver, alerts: record.alerts.length, enqueued, duplicates, unmatched,
    runs, ...(total > runs.length ? { runsNotNamed: total - runs.length } : {}),
  };
}
