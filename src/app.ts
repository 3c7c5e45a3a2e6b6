import express, { type Express } from 'express';
import type { Logger } from './log.js';
import { adminRouter } from './receivers/admin.js';
import { alertmanagerRouter, type AlertmanagerReceiverDeps } from './receivers/alertmanager.js';
import { healthRouter } from './receivers/health.js';
import type { RunReader } from './store/runs.js';
import type { Pool } from 'pg';
import type { Queue } from 'bullmq';
import type { Metrics } from './metrics.js';
import { metricsRouter } from './receivers/metrics.js';
import type { Persistence } from './redis/persistence.js';
import { adminSafetyRouter } from './receivers/admin-safety.js';
import { pagerDutyWebhookRouter } from './receivers/pagerduty-webhook.js';
import type { Operator } from './run/operator.js';
import { slackInteractionsRouter, type SlackInteractionDeps } from './receivers/slack-interactions.js';
import { streamKey } from './redis/delivery-stream.js';
import { uiRouter } from './ui/router.js';
import { errorHandler, malformedUrl } from './receivers/error-handler.js';
import type { InForceSource } from './ui/in-force.js';
import type { ReloadStatus } from './rules/reload-status.js';

export interface AppDeps extends AlertmanagerReceiverDeps {
  runs: RunReader;
  pool: Pool;
  schema: string;
  /** Every queue, for their depths in /metrics. */
  queues: () => Queue[];
  metrics: Metrics;
  /** Redis persistence as last checked, for /metrics. */
  persistence?: () => Persistence | undefined;
  adminToken?: string;
  /** Read-only access to /ui and GET /api. */
  viewerToken?: string;
  /** The last rules reload: /readyz and the status page say when it was refused. */
  reloads?: ReloadStatus;
  log: Logger;
  /** Pauses, quarantines, approvals, human acknowledgments: what people do (src/run/operator.ts). */
  operator: Operator;
  pagerDutyWebhookSecret?: string;
  slackSigningSecret?: string;
  /** Slack Web API client: approval messages are updated after a decision; approver user groups are read. */
  slack?: SlackInteractionDeps['slack'];
  /** Status page: the cookie's Secure flag, and what its banners show (pauses, quarantines, holds, approvals). */
  ui?: { secureCookie?: boolean; inForce?: InForceSource };
}

/** Builds the HTTP app; never listens, so tests mount it on port 0. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // The webhook first: it is the hot path, and every router before it costs each request.
  app.use(alertmanagerRouter(deps));
  app.use(malformedUrl(deps.log)); // every other route: a URL that does not decode is the client's 400
  app.use(healthRouter(deps));
  app.use(metricsRouter({ metrics: deps.metrics, persistence: deps.persistence, shared: { queues: deps.queues, redis: deps.redis, pool: deps.pool, schema: deps.schema, safetyCounts: () => deps.operator.store.counts(), deliveries: (deps.shardPrefixes ?? [deps.prefix]).map(streamKey) } }));
  app.use(adminRouter(deps));
  app.use(adminSafetyRouter({ operator: deps.operator, adminToken: deps.adminToken, viewerToken: deps.viewerToken, table: deps.table, redis: deps.redis, prefix: deps.prefix, log: deps.log }));
  app.use(pagerDutyWebhookRouter(deps));
  app.use(slackInteractionsRouter(deps));
  app.use(uiRouter({ ...deps, ...deps.ui }));
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  app.use(errorHandler(deps.log)); // client errors keep their 4xx, quietly; 500 only for our faults
  return app;
}
