import type { Redis } from 'ioredis';
import type { ApprovalRequest } from '../safety/approvals.js';

/**
 * Runs waiting for a person now: approval requests (`<prefix>:safety:approval:request:<jobId>`, see
 * src/safety/approvals.ts) without a decision and not expired. Read straight from Redis, because
 * Approvals has no listing yet; when the approval state moves (or gets a `waiting(now)`), only this
 * function follows it.
 */
export async function waitingApprovals(redis: Redis, prefix: string, now: Date): Promise<ApprovalRequest[]> {
  const base = `${prefix}:safety:approval:`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${base}request:*`, 'COUNT', 500);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const jobIds = keys.map((k) => k.slice(`${base}request:`.length));
  const [requests, decisions] = await Promise.all([redis.mget(...keys), redis.mget(...jobIds.map((id) => `${base}decision:${id}`))]);
  return requests
    .map((r, i) => (r !== null && decisions[i] === null ? (JSON.parse(r) as ApprovalRequest) : undefined))
    .filter((r): r is ApprovalRequest => r !== undefined && Date.parse(r.expiresAt) > now.getTime())
    .sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
}
