import type { Approvals } from '../redis/approvals.js';
import type { SafetyState } from '../redis/safety-state.js';

/** Seven days: a human-ack hold ends by itself then if PagerDuty never says resolved (src/redis/safety-state.ts). */
const HOLD_MAX_MS = 7 * 24 * 3600_000;

/** One thing holding automation back, as every page's banner shows it. */
export interface InForce {
  kind: 'pause' | 'quarantine' | 'hold' | 'approval';
  /** What is held, in words: "all", "rule:x", "rule x on target y", "run <id>". */
  scope: string;
  reason?: string;
  by?: string;
  since?: Date;
  /** When it ends by itself; `untilText` says how it ends otherwise. */
  until?: Date;
  untilText?: string;
  /** What an operator's button acts on: the pause scope, RULE@TARGET, or the run's job id. */
  key?: string;
  /** A link: the incident in PagerDuty, the waiting run. */
  href?: string;
}

/** Everything in force now. Without a source (an app built in a test) the banner says it cannot tell. */
export type InForceSource = () => Promise<InForce[]>;

/** Pauses, quarantines, human-ack holds and waiting approvals, read from the safety state in Redis. */
export function safetyInForce(d: { store: SafetyState; approvals: Approvals; now?: () => Date }): InForceSource {
  return async () => {
    const now = d.now?.() ?? new Date();
    const [pauses, quarantines, holds, approvals] = await Promise.all([d.store.pauses(now), d.store.quarantines(), d.store.holds(), d.approvals.waiting(now)]);
    return [
      ...pauses.map((p): InForce => ({
        kind: 'pause', scope: p.scope, reason: p.reason, by: p.by, since: new Date(p.at), key: p.scope,
        ...(p.until ? { until: new Date(p.until) } : { untilText: 'until resumed' }),
      })),
      ...quarantines.map((q): InForce => ({
        kind: 'quarantine', scope: `rule ${q.rule}${q.target ? ` on ${q.target}` : ''}`, reason: `${q.reason} (runs ${q.runs.join(', ')})`, by: 'loop detection',
        since: new Date(q.at), untilText: 'until an operator lifts it', key: `${q.rule}@${q.target}`,
      })),
      ...holds.map((h): InForce => ({
        kind: 'hold', scope: `alert group ${h.dedupKey}`, reason: `PagerDuty incident ${h.incident} acknowledged`, by: h.by, since: new Date(h.at),
        untilText: `until the incident resolves (at the latest ${new Date(Date.parse(h.at) + HOLD_MAX_MS).toISOString()})`, href: h.url,
      })),
      ...approvals.map((a): InForce => ({
        kind: 'approval', scope: `run ${a.jobId}`, reason: `${a.action}${a.target ? ` on ${a.target}` : ''} (rule ${a.rule}) waits for ${a.approvers.join(', ')}`,
        by: `rule ${a.rule}`, since: new Date(a.requestedAt), until: new Date(a.expiresAt), key: a.jobId, href: `/ui/runs/${encodeURIComponent(a.jobId)}`,
      })),
    ];
  };
}
