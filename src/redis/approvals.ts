import type { Redis } from 'ioredis';
import type { SafetyAudit } from '../store/safety-audit.js';

/** A run waiting for a person: what it will do, and until when it waits. */
export interface ApprovalRequest {
  jobId: string;
  rule: string;
  action: string;
  target?: string;
  approvers: string[];
  requestedAt: string;
  expiresAt: string;
}

export interface ApprovalDecision {
  decision: 'approved' | 'rejected' | 'expired';
  by: string;
  at: string;
}

const KEEP_S = 7 * 24 * 3600;

/**
 * Approval state in Redis: the request, and the decision, which is written once (SET NX): the first
 * of an approve, a reject or the expiry wins, whichever process or person makes it.
 */
export class Approvals {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly audit: SafetyAudit,
  ) {}

  private k(kind: 'request' | 'decision', jobId: string): string {
    return `${this.prefix}:safety:approval:${kind}:${jobId}`;
  }

  /** Creates the request; false when it already existed (another attempt or process asked first). */
  async request(r: ApprovalRequest): Promise<boolean> {
    return (await this.redis.set(this.k('request', r.jobId), JSON.stringify(r), 'EX', KEEP_S, 'NX')) === 'OK';
  }

  async requestOf(jobId: string): Promise<ApprovalRequest | undefined> {
    const v = await this.redis.get(this.k('request', jobId));
    return v ? (JSON.parse(v) as ApprovalRequest) : undefined;
  }

  async decisionOf(jobId: string): Promise<ApprovalDecision | undefined> {
    const v = await this.redis.get(this.k('decision', jobId));
    return v ? (JSON.parse(v) as ApprovalDecision) : undefined;
  }

  /** Records a decision once; returns the decision that holds (this one, or the earlier one). */
  async decide(jobId: string, d: ApprovalDecision, reason?: string): Promise<{ won: boolean; decision: ApprovalDecision }> {
    const won = (await this.redis.set(this.k('decision', jobId), JSON.stringify(d), 'EX', KEEP_S, 'NX')) === 'OK';
    if (!won) return { won, decision: (await this.decisionOf(jobId))! };
    await this.audit.recordAction({ kind: `approval_${d.decision}`, scope: `run:${jobId}`, by: d.by, reason });
    await this.audit.addRunEvent(jobId, d.decision === 'approved' ? 'approved' : d.decision, `${d.decision === 'expired' ? 'Approval request expired' : `${d.decision === 'approved' ? 'Approved' : 'Rejected'} by ${d.by}`} at ${d.at}.`);
    return { won, decision: d };
  }
}

/** Approves or rejects a waiting run (admin API, CLI, Slack): a clear error when there is nothing to decide. */
export async function decideApproval(a: Approvals, i: { jobId: string; approve: boolean; by: string; now: Date }): Promise<{ ok: true; decision: ApprovalDecision } | { ok: false; error: string }> {
  const req = await a.requestOf(i.jobId);
  if (!req) return { ok: false, error: `run ${i.jobId} is not waiting for an approval` };
  const { won, decision } = await a.decide(i.jobId, { decision: i.approve ? 'approved' : 'rejected', by: i.by, at: i.now.toISOString() });
  if (!won) return { ok: false, error: `run ${i.jobId} was already ${decision.decision}${decision.decision === 'expired' ? '' : ` by ${decision.by}`} at ${decision.at}` };
  return { ok: true, decision };
}
