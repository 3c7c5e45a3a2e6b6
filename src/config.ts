import { z } from 'zod';
import { parseShardList } from './core/shards.js';
import { formatDuration, parseDuration } from './core/duration.js';

/** The usual spellings, in any case: true/false, yes/no, on/off, 1/0 (`DRY_RUN=TRUE` is true). */
const TRUE = ['true', 'yes', 'on', '1'];
const FALSE = ['false', 'no', 'off', '0', ''];
const bool = z.string().transform((v, ctx) => {
  const t = v.trim().toLowerCase();
  if (TRUE.includes(t)) return true;
  if (!FALSE.includes(t)) ctx.addIssue({ code: 'custom', message: 'must be true or false (also yes/no, on/off, 1/0, in any case)' });
  return false;
});

/**
 * Milliseconds: a plain number as before (`SHUTDOWN_GRACE=25000`) or a duration (`25s`, `1m30s`).
 * Whole milliseconds, at least `min`.
 */
const millis = (min: number) =>
  z.string().transform((v, ctx) => {
    const t = v.trim();
    const ms = /^\d+$/.test(t) ? Number(t) : parseDuration(t);
    if (ms === undefined || !Number.isSafeInteger(ms)) {
      ctx.addIssue({ code: 'custom', message: 'must be milliseconds (25000) or a duration such as 25s or 1m30s' });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${min} ms (${formatDuration(min)})` });
      return z.NEVER;
    }
    return ms;
  });

/**
 * The environment, parsed once at start. Every variable is documented in the README.
 * A bad value stops the process with a message naming the variable (never its value when secret).
 */
const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(9095),
  HOST: z.string().default('0.0.0.0'),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9096),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  /** Redis Cluster: comma-separated host:port of some nodes; REDIS_URL then gives only credentials and TLS. */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'must be host:port[,host:port...]')
    .transform((v) => v.split(','))
    .optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').default('postgres://postgres@127.0.0.1:5432/postgres'),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier').default('remediator'),
  RULES_DIR: z.string().min(1).default('./rules'),
  /** Shards of the delivery stream and the remediation queue (src/redis/shards.ts): 1 on a single Redis, e.g. 16 on a cluster. */
  SHARDS: z.coerce.number().int().min(1).max(256).default(1),
  /** The shards this process's intake and workers consume, e.g. "0-7"; unset: all. */
  SHARDS_CONSUMED: z.string().regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'must be shard numbers and ranges, e.g. 0-7,12').optional(),
  /** After writing a delivery, wait for this many replicas to have it before answering 2xx (Redis WAIT); 0: off. */
  REDIS_WAIT_REPLICAS: z.coerce.number().int().min(0).max(10).default(0),
  /** How long the receiver waits for the replicas; fewer in time is a 503 (Alertmanager sends again). */
  REDIS_WAIT_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(500),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_{}.-]+$/, 'letters, digits, "_", "-", "." and a {hash tag} only').default('remediator'),
  WEBHOOK_TOKEN: z.string().min(1).optional(),
  WEBHOOK_BASIC_AUTH: z.string().regex(/^[^:]+:.+$/, 'must be user:password').optional(),
  ADMIN_TOKEN: z.string().min(1).optional(),
  /** Read-only access: the status page and GET /api (ADMIN_TOKEN also pauses, resumes, lifts, approves). */
  VIEWER_TOKEN: z.string().min(1).optional(),
  DRY_RUN: bool.default('false'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  WEBHOOK_MAX_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  HTTP_HEADERS_TIMEOUT_MS: millis(100).default('10000'),
  HTTP_REQUEST_TIMEOUT_MS: millis(100).default('30000'),
  REMEDIATOR_ROLE: z.enum(['all', 'receiver', 'worker']).default('all'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  SHUTDOWN_GRACE: millis(0).default('25000'),
  WORKER_LOCK_MS: millis(1000).default('30000'),
  KUBECONFIG: z.string().optional(),
  SLACK_BOT_TOKEN: z.string().min(1).optional(),
  SLACK_API_URL: z.string().url().default('https://slack.com/api/'),
  SLACK_CHANNEL: z.string().min(1).optional(),
  /** A rule that queues more runs than this in one minute has its runs summarized in one message per channel (0: never). */
  SLACK_DIGEST_AFTER: z.coerce.number().int().min(0).default(5),
  PAGERDUTY_ROUTING_KEY: z.string().min(1).optional(),
  PAGERDUTY_EVENTS_URL: z.string().url().default('https://events.pagerduty.com'),
  PAGERDUTY_API_TOKEN: z.string().min(1).optional(),
  PAGERDUTY_API_URL: z.string().url().default('https://api.pagerduty.com'),
  PAGERDUTY_FROM: z.string().email().optional(),
  PUBLIC_URL: z.string().url().optional(),
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  PAGERDUTY_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** Alertmanager(s) to reconcile with, comma separated (an HA pair: every member). */
  ALERTMANAGER_URL: z
    .string()
    .transform((v) => v.split(',').map((u) => u.trim()).filter(Boolean))
    .refine((us) => us.length > 0 && us.every((u) => /^https?:\/\/[^\s]+$/.test(u) && URL.canParse(u)), 'must be http(s) URLs, comma separated')
    .optional(),
  ALERTMANAGER_RECEIVER: z.string().min(1).default('remediate'),
  RECONCILE_INTERVAL: z
    .string()
    .default('5m')
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms < 1000) ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s, such as 30s or 5m' });
      return ms ?? 0;
    }),
});

export type Config = z.output<typeof envSchema>;

const secret = new Set(['WEBHOOK_TOKEN', 'WEBHOOK_BASIC_AUTH', 'ADMIN_TOKEN', 'VIEWER_TOKEN', 'SLACK_BOT_TOKEN', 'PAGERDUTY_ROUTING_KEY', 'PAGERDUTY_API_TOKEN', 'SLACK_SIGNING_SECRET', 'PAGERDUTY_WEBHOOK_SECRET', 'DATABASE_URL', 'REDIS_URL', 'ALERTMANAGER_URL']);

export class ConfigError extends Error {}

/** Parses the environment; empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const res = envSchema.safeParse(input);
  if (!res.success) {
    const lines = res.error.issues.map((i) => {
      const name = String(i.path[0]);
      return `${name}: ${i.message}${secret.has(name) ? '' : ` (got ${JSON.stringify(input[name])})`}`;
    });
    throw new ConfigError(`invalid environment:\n  ${lines.join('\n  ')}`);
  }
  // Node refuses a headers timeout longer than the whole-request timeout.
  if (res.data.HTTP_HEADERS_TIMEOUT_MS > res.data.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(`invalid environment:\n  HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (got ${res.data.HTTP_HEADERS_TIMEOUT_MS} > ${res.data.HTTP_REQUEST_TIMEOUT_MS})`);
  }
  // One token for two roles would make every viewer an operator.
  if (res.data.VIEWER_TOKEN !== undefined && res.data.VIEWER_TOKEN === res.data.ADMIN_TOKEN) {
    throw new ConfigError('invalid environment:\n  VIEWER_TOKEN: must differ from ADMIN_TOKEN (a viewer would be an operator)');
  }
  // In a cluster, BullMQ's scripts need all keys of a queue in one slot: a {hash tag} in the prefix.
  if (res.data.REDIS_CLUSTER_NODES && !/\{[^{}]+\}/.test(res.data.QUEUE_PREFIX)) {
    throw new ConfigError(`invalid environment:\n  QUEUE_PREFIX: with REDIS_CLUSTER_NODES it must contain a {hash tag}, e.g. {remediator} (got ${JSON.stringify(res.data.QUEUE_PREFIX)})`);
  }
  if (res.data.SHARDS_CONSUMED && !parseShardList(res.data.SHARDS_CONSUMED, res.data.SHARDS)) {
    throw new ConfigError(`invalid environment:\n  SHARDS_CONSUMED: shards run from 0 to ${res.data.SHARDS - 1} (SHARDS=${res.data.SHARDS}) (got ${JSON.stringify(res.data.SHARDS_CONSUMED)})`);
  }
  return res.data;
}
