import { formatDuration } from '../../core/duration.js';
import { decideApproval } from '../operator.js';
import type { Gate, GateContext } from './types.js';

/**
 * A rule with `approval.required`: the run asks once (an `approval_requested` event: Slack shows
 * Approve and Reject with what it will do, why, and what the last runs did) and its job waits as a
 * delayed job until the request expires, holding no worker slot and no target, and costing
 * nothing while it waits. A decision releases it at once (src/run/operator.ts decideApproval
 * promotes the job); at the expiry it comes back, finds no decision, and is skipped and paged.
 */
export const approval: Gate = {
  name: 'approval',
  async check(c) {
    const a = c.rule.spec.approval;
    if (!a?.required) return undefined;
    const { spec } = c;
    let d = await c.approvals.decisionOf(spec.jobId);
    if (!d) {
      let req = await c.approvals.requestOf(spec.jobId);
      if (!req) {
        req = {
          jobId: spec.jobId, rule: spec.rule, action: spec.action, ...(spec.target ? { target: spec.target } : {}), approvers: a.approvers,
          requestedAt: c.now.toISOString(), expiresAt: new Date(c.now.getTime() + a.timeout).toISOString(),
        };
        if (await c.approvals.request(req)) await ask(c, req.expiresAt);
        else req = (await c.approvals.requestOf(spec.jobId)) ?? req;
      }
      const expiresAt = Date.parse(req.expiresAt);
      if (expiresAt > c.now.getTime()) return { until: expiresAt };
      const r = await decideApproval({ audit: c.safetyAudit, approvals: c.approvals, journal: c.journal, now: () => c.now }, { jobId: spec.jobId, decision: 'expired', by: 'remediator', reason: `no decision within ${formatDuration(a.timeout)}` });
      d = r.ok ? r.decision : await c.approvals.decisionOf(spec.jobId);
      if (r.ok) {
        return { skip: 'approval_expired', message: `Nobody approved within ${formatDuration(a.timeout)} (approvers: ${a.approvers.join(', ')}). Not run.`, page: 'approval request expired' };
      }
    }
    if (!d || d.decision === 'approved') return undefined;
    if (d.decision === 'rejected') return { skip: 'rejected', message: `Rejected by ${d.by} at ${d.at}. Not run.`, details: { decision: d } };
    return { skip: 'approval_expired', message: `The approval request expired at ${d.at}. Not run.` };
  },
};

async function ask(c: GateContext, expiresAt: string): Promise<void> {
  const { spec } = c;
  const a = c.rule.spec.approval!;
  const last = await c.safetyAudit.recentRuns(spec.rule, spec.target, spec.jobId, 3);
  const why = spec.alert.annotations.summary ?? spec.alert.labels.alertname ?? 'the alert';
  const history = last.length ? last.map((r) => `${r.state}${r.error_reason ? ` (${r.error_reason})` : ''} at ${(r.finished_at ?? r.queued_at).toISOString()}`).join('; ') : 'no earlier runs';
  await c.journal.record({ jobId: spec.jobId, rule: spec.rule }, {
    type: 'approval_requested',
    message: `Approval needed: ${spec.action}${spec.target ? ` on ${spec.target}` : ''} (rule ${spec.rule}${spec.dryRun ? ', dry run' : ''}) because: ${why}. ` +
      `Last runs: ${history}. Approvers: ${a.approvers.join(', ')}. Expires at ${expiresAt} (remediator approve|reject ${spec.jobId}).`,
    details: { approval_request: spec.jobId, approvers: a.approvers.join(', '), expires_at: expiresAt },
  });
}
