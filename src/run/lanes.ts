import type { Redis } from 'ioredis';
import type { JobSpec } from '../core/run.js';
import type { RuleSpec } from '../rules/schema.js';

/**
 * Fairness between rules. All runs share one queue; without this, a storm of one rule (10,000
 * alerts) would sit in front of a critical alert of another rule for as long as the storm takes.
 * The intake counts each rule's new runs in a short window shared by every process (Redis); past
 * `threshold` runs in `windowMs` the rule is storming, and its further jobs get a BullMQ priority,
 * which BullMQ takes only when no job without a priority waits. So another rule's run goes to the
 * front of the queue at once, and the storm still runs in its own order (FIFO within a priority).
 * https://docs.bullmq.io/guide/jobs/prioritized
 */
export interface Lanes {
  redis: Redis;
  prefix: string;
  /** Runs of one rule within `windowMs` before it counts as a storm (default 50). */
  threshold?: number;
  windowMs?: number;
}

/** The priority of a storming rule's jobs (any value >= 1 puts them behind jobs without one). */
export const STORM_PRIORITY = 100;

/** For each job, its BullMQ priority: 0 (none: the normal lane) or STORM_PRIORITY. */
export async function laneOf(l: Lanes, jobs: JobSpec[], specOf: (rule: string) => RuleSpec | undefined): Promise<number[]> {
  const threshold = l.threshold ?? 50;
  const windowMs = l.windowMs ?? 10_000;
  const perRule = new Map<string, number>();
  for (const j of jobs) perRule.set(j.rule, (perRule.get(j.rule) ?? 0) + 1);
  const rules = [...perRule.keys()];
  const pipe = l.redis.multi();
  for (const r of rules) {
    const key = `${l.prefix}:lane:${r}`;
    pipe.incrby(key, perRule.get(r)!).pexpire(key, windowMs, 'NX');
  }
  const res = (await pipe.exec()) ?? [];
  const before = new Map<string, number>();
  rules.forEach((r, i) => before.set(r, Number(res[i * 2]?.[1] ?? 0) - perRule.get(r)!));
  const seen = new Map<string, number>();
  return jobs.map((j) => {
    const n = (seen.get(j.rule) ?? 0) + 1;
    seen.set(j.rule, n);
    // A rule that asks for approval is never storming: its runs wait for people, not for the queue.
    if (specOf(j.rule)?.approval?.required) return 0;
    return before.get(j.rule)! + n > threshold ? STORM_PRIORITY : 0;
  });
}
