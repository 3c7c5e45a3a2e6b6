import type { Redis } from 'ioredis';

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

  /** Sets the decision once; returns the decision that holds (this one, or the earlier one). */
  async decide(jobId: string, d: ApprovalDecision): Promise<{ won: boolean; decision: ApprovalDecision }> {
    const won = (await this.redis.set(this.k('decision', jobId), JSON.stringify(d), 'EX', KEEP_S, 'NX')) === 'OK';
    if (!won) return { won, decision: (await this.decisionOf(jobId))! };
    return { won, decision: d };
  }

  /** Runs waiting for a decision now (the status page's banner): requests without a decision, not expired. */
  async waiting(now: Date): Promise<ApprovalRequest[]> {
    const out: ApprovalRequest[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:safety:approval:request:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length === 0) continue;
      const reqs = (await this.redis.mget(...keys)).filter((v): v is string => v !== null).map((v) => JSON.parse(v) as ApprovalRequest);
      const decided = await this.redis.mget(...reqs.map((r) => this.k('decision', r.jobId)));
      reqs.forEach((r, i) => decided[i] === null && Date.parse(r.expiresAt) > now.getTime() && out.push(r));
    } while (cursor !== '0');
    return out.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }
}

