import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RuleTable } from '../rules/load.js';
import type { NotifyState } from '../store/notify-state.js';
import type { RunReader } from '../store/runs.js';
import { createPagerDutyNotifier } from './pagerduty/index.js';
import { createSlackClient } from './slack/client.js';
import { createSlackNotifier } from './slack/index.js';
import type { Notifier } from './types.js';

/** What every notifier may use: the configuration, the journal's reads, its own state, Redis. */
export interface NotifierDeps {
  config: Config;
  env: NodeJS.ProcessEnv;
  runs: RunReader;
  state: NotifyState;
  redis: Redis;
  table: () => RuleTable | undefined;
  log: Logger;
}

/** A notifier is built from the deps when the configuration enables it. */
export interface NotifierFactory {
  name: string;
  /** Undefined when this notifier is not configured (nothing of it runs, no queue state is kept). */
  build(d: NotifierDeps): Notifier | undefined;
}

/**
 * Every notifier remediator can run, listed explicitly (no auto-discovery), like the
 * remediations. Adding one: write src/notifiers/<name>/index.ts with its `route` and `sync`, and
 * add one line here.
 */
export const NOTIFIERS: readonly NotifierFactory[] = [
  {
    name: 'slack',
    build: ({ config, runs, state, redis, table, log }) =>
      config.SLACK_BOT_TOKEN
        ? createSlackNotifier({
            client: createSlackClient({ token: config.SLACK_BOT_TOKEN, apiUrl: config.SLACK_API_URL, log }),
            defaultChannel: config.SLACK_CHANNEL, runs, state, redis, table, prefix: config.QUEUE_PREFIX, log,
            interactive: Boolean(config.SLACK_SIGNING_SECRET), linkBase: config.PUBLIC_URL,
            digest: { after: config.SLACK_DIGEST_AFTER === 0 ? Number.POSITIVE_INFINITY : config.SLACK_DIGEST_AFTER },
          })
        : undefined,
  },
  {
    // Always built: a rule may name its own routing key env var; the notifier skips rules whose key is unset.
    name: 'pagerduty',
    build: ({ config, env, state, table, log }) =>
      createPagerDutyNotifier({
        env, state, table, log, defaultRoutingKeyEnv: 'PAGERDUTY_ROUTING_KEY', eventsUrl: config.PAGERDUTY_EVENTS_URL,
        apiToken: config.PAGERDUTY_API_TOKEN, apiUrl: config.PAGERDUTY_API_URL, from: config.PAGERDUTY_FROM, linkBase: config.PUBLIC_URL,
      }),
  },
];

/** The notifiers this configuration enables. */
export function buildNotifiers(d: NotifierDeps, list: readonly NotifierFactory[] = NOTIFIERS): Notifier[] {
  return list.flatMap((f) => f.build(d) ?? []);
}
