import type { Pool } from 'pg';
import type { AuditStore } from '../store/journal-store.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createPagerDutyNotifier } from './pagerduty.js';
import { createSlackClient, createSlackNotifier } from './slack.js';
import type { Notifier } from './types.js';

/**
 * The notifiers the configuration enables; each runs on its own queue. PagerDuty is always built:
 * a rule may name its own routing key env var, and the notifier skips events with no key.
 */
export function buildNotifiers(config: Config, deps: { audit: AuditStore; pool: Pool; schema: string; env: NodeJS.ProcessEnv; log: Logger }): Notifier[] {
  const out: Notifier[] = [];
  if (config.SLACK_BOT_TOKEN) {
    out.push(
      createSlackNotifier({
        client: createSlackClient({ token: config.SLACK_BOT_TOKEN, apiUrl: config.SLACK_API_URL, log: deps.log }),
        defaultChannel: config.SLACK_CHANNEL,
        audit: deps.audit,
        pool: deps.pool,
        schema: deps.schema,
        log: deps.log,
        interactive: Boolean(config.SLACK_SIGNING_SECRET),
      }),
    );
  }
  out.push(
    createPagerDutyNotifier({
      env: deps.env,
      audit: deps.audit,
      log: deps.log,
      defaultRoutingKeyEnv: 'PAGERDUTY_ROUTING_KEY',
      eventsUrl: config.PAGERDUTY_EVENTS_URL,
      apiToken: config.PAGERDUTY_API_TOKEN,
      apiUrl: config.PAGERDUTY_API_URL,
      from: config.PAGERDUTY_FROM,
      linkBase: config.PUBLIC_URL,
    }),
  );
  return out;
}
