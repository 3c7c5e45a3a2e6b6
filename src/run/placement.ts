import type { JobSpec } from '../core/run.js';
import { shardFor } from '../core/shards.js';
import type { RuleSpec } from '../rules/schema.js';

/**
 * The target lock a run takes: one run at a time per target. A rule without a target (notify)
 * touches nothing and takes the lock only when it has a cooldown, whose check must not race;
 * otherwise a storm of notify runs would go through one at a time.
 */
export function lockKeyOf(job: Pick<JobSpec, 'action' | 'target' | 'rule'>, rule: Pick<RuleSpec, 'cooldown'> | undefined): string | undefined {
  if (job.target === undefined && rule?.cooldown === undefined) return undefined;
  return `${job.action}:${job.target ?? job.rule}`;
}

/**
 * The shard of a job (src/core/shards.ts): its target's, so the runs of one target (which take
 * turns on its lock, and hand it on to each other) share a queue; its run id's when it takes no lock.
 */
export function jobShard(job: Pick<JobSpec, 'jobId' | 'action' | 'target' | 'rule'>, rule: Pick<RuleSpec, 'cooldown'> | undefined, shards: number): number {
  return shardFor(lockKeyOf(job, rule) ?? job.jobId, shards);
}
