import { randomBytes } from 'node:crypto';
import { Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobSpec, RunEvent } from '../../src/core/run.js';
import { incidentKey } from '../../src/core/run.js';
import { createLogger, type Logger } from '../../src/log.js';
import { notifierFollower, NOTIFY_QUEUE } from '../../src/notifiers/follower.js';
import { createPagerDutyNotifier, type PagerDutyNotifierOptions } from '../../src/notifiers/pagerduty/index.js';
import { createSlackClient } from '../../src/notifiers/slack/client.js';
import { createSlackNotifier, type SlackNotifierOptions } from '../../src/notifiers/slack/index.js';
import type { Notifier } from '../../src/notifiers/types.js';
import { Outbox } from '../../src/redis/outbox.js';
import { Pacer } from '../../src/redis/pacer.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { compileRules, type RuleTable } from '../../src/rules/load.js';
import { Journal } from '../../src/run/journal.js';
import { JournalStore, type IntakeDelivery } from '../../src/store/journal-store.js';
import { NotifyState } from '../../src/store/notify-state.js';
import { RunReader } from '../../src/store/runs.js';
import { startNotificationWorker } from '../../src/workers/notification.js';
import { alert } from './context.js';
import { testSchema } from './pg.js';
import { dropPrefix, REDIS_URL } from './service.js';

export interface NotifyHarness {
  schema: string;
  pool: Awaited<ReturnType<typeof testSchema>>['pool'];
  journal: Journal;
  runs: RunReader;
  outbox: Outbox;
  prefix: string;
  table: RuleTable;
  logLines: string[];
  /** Takes in one firing for `rule` (its run and `queued` event), like the intake does. */
  fire(rule: string, o?: { labels?: Record<string, string>; annotations?: Record<string, string>; groupKey?: string; dryRun?: boolean; fingerprint?: string }): Promise<JobSpec>;
  /** Takes in the resolution of a fired run's alert. */
  resolve(job: JobSpec): Promise<void>;
  /** Records an event of a run, as the worker does. */
  record(job: JobSpec, e: RunEvent): Promise<void>;
  close(): Promise<void>;
}

/**
 * The notifiers as the service runs them, against real PostgreSQL and Redis: the run journal,
 * the notifier follower marking the outbox, and the notification worker draining it through the
 * real SDK clients to local fakes.
 */
export async function notifyHarness(o: {
  rules: string;
  slack?: Partial<SlackNotifierOptions> & { url: string; token: string };
  pagerduty?: Partial<PagerDutyNotifierOptions> & { eventsUrl: string; env: NodeJS.ProcessEnv };
  /** Retry delay of an item after n failures (default 50 ms). */
  retryDelay?: (tries: number) => number;
  log?: Logger;
}): Promise<NotifyHarness> {
  const db = await testSchema('notify');
  const prefix = `notify-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  const blocking = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const logLines: string[] = [];
  const log = o.log ?? createLogger('debug', {}, (l) => logLines.push(l));
  const table = compileRules([{ file: 'rules.yml', text: o.rules }], buildRegistry());
  const runs = new RunReader(db.pool, db.schema);
  const state = new NotifyState(db.pool, db.schema);
  const journal = new Journal(new JournalStore(db.pool, db.schema), runs, { log });
  const outbox = new Outbox(redis, prefix);
  const queue = new Queue(NOTIFY_QUEUE, { connection: redis, prefix });
  const notifiers: Notifier[] = [];
  if (o.slack) {
    notifiers.push(createSlackNotifier({
      client: createSlackClient({ token: o.slack.token, apiUrl: o.slack.url, timeoutMs: 2000 }), runs, state, redis, prefix, log, defaultChannel: '#ops', ...o.slack,
    }));
  }
  if (o.pagerduty) notifiers.push(createPagerDutyNotifier({ state, table: () => table, log, linkBase: 'https://remediator.example', ...o.pagerduty }));
  journal.follow(notifierFollower({ notifiers, outbox, queue, table: () => table, log }));
  const worker: Worker = startNotificationWorker({
    notifiers, connection: blocking, redis, prefix, queue, outbox, pacer: new Pacer(redis, prefix), state, log, retryDelay: o.retryDelay ?? (() => 50),
  });
  let n = 0;
  const delivery = (job: JobSpec, status: 'firing' | 'resolved'): IntakeDelivery => {
    const rule = table.rules.find((r) => r.spec.name === job.rule)!.spec;
    const pd = rule.notify.pagerduty;
    return {
      id: `${Date.now()}-${++n}`, receivedAt: new Date().toISOString(), receiver: 'remediate', groupKey: job.groupKey, externalURL: job.externalURL,
      alerts: [{
        alert: { ...job.alert, status },
        decisions: [status === 'firing'
          ? { decision: 'enqueued', rule: job.rule, jobId: job.jobId, job, incidentKey: incidentKey(pd ? pd.dedup : 'group_key', job) }
          : { decision: 'not_applicable', rule: job.rule, jobId: job.jobId, resolves: true }],
      }],
    };
  };
  const incidents = new Map<string, string>();
  return {
    schema: db.schema, pool: db.pool, journal, runs, outbox, prefix, table, logLines,
    async fire(ruleName, f = {}) {
      const rule = table.rules.find((r) => r.spec.name === ruleName)!.spec;
      const fingerprint = f.fingerprint ?? randomBytes(8).toString('hex');
      const job: JobSpec = {
        jobId: `job-${randomBytes(6).toString('hex')}`, rule: ruleName, action: rule.action, target: rule.target, params: rule.params, dryRun: f.dryRun ?? false,
        alert: alert(f.labels ?? { alertname: 'HighErrorRate', instance: 'node-1' }, { fingerprint, annotations: f.annotations ?? { summary: 'Errors' } }),
        groupKey: f.groupKey ?? `{}:{alertname="HighErrorRate",id="${fingerprint}"}`, receiver: 'remediate', externalURL: 'http://am:9093', receivedAt: new Date().toISOString(),
      };
      const pd = rule.notify.pagerduty;
      incidents.set(job.jobId, incidentKey(pd ? pd.dedup : 'group_key', job));
      await journal.intake([delivery(job, 'firing')]);
      return job;
    },
    async resolve(job) {
      await journal.intake([delivery(job, 'resolved')]);
    },
    async record(job, e) {
      await journal.record({ jobId: job.jobId, rule: job.rule, incident: incidents.get(job.jobId), dryRun: job.dryRun }, e);
    },
    async close() {
      await worker.close();
      await queue.close();
      redis.disconnect();
      blocking.disconnect();
      await dropPrefix(REDIS_URL, prefix);
      await db.drop();
    },
  };
}
