import express, { type Request, type Response, type Router } from 'express';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { IngestRecord } from '../audit/store.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RuleTable } from '../rules/load.js';
import { decide, type JobSpec } from '../rules/table.js';
import type { AlertInfo } from '../remediations/types.js';
import { KEEP_FINISHED_SECONDS } from '../queue/queues.js';
import { checkAuthorization } from './auth.js';
import { answerAndClose, bodyErrors, bodyLimit } from './http-edge.js';
import { webhookSchema, type Webhook } from './payload.js';
import { webhookLogFields } from './webhook-log.js';

export interface AlertmanagerReceiverDeps {
  table: () => RuleTable | undefined;
  remediations: Queue;
  ingest: Queue;
  /** A fail-fast connection without BullMQ's scripts, for the duplicate check. */
  redis: Redis;
  prefix: string;
  auth: { token?: string; basic?: string };
  dryRun: boolean;
  maxBytes: number;
  /** Longest a request may wait on Redis before answering 503. */
  redisDeadlineMs?: number;
  log: Logger;
  /** Counts requests, alerts, decisions and jobs, and times the answers, for /metrics. */
  metrics?: Metrics;
}

/**
 * POST /webhooks/alertmanager: authenticate, parse, match, enqueue, answer. Nothing slow runs
 * here: the audit is written by the ingest worker from one job this handler enqueues. A 2xx goes
 * out only after every job is in Redis; Redis trouble is a fast 503 so Alertmanager retries.
 */
export function alertmanagerRouter(deps: AlertmanagerReceiverDeps): Router {
  const router = express.Router();
  router.post(
    '/webhooks/alertmanager',
    (req, res, next) => {
      const metrics = deps.metrics;
      if (metrics) {
        const end = metrics.webhookDuration.startTimer();
        res.once('finish', () => {
          const code = String(res.statusCode);
          metrics.webhookRequests.inc({ code });
          end({ code });
        });
      }
      if (!checkAuthorization(req.headers.authorization, deps.auth)) {
        deps.log.warn('webhook refused: missing or wrong credentials', { ip: req.ip });
        res.set('WWW-Authenticate', deps.auth.token ? 'Bearer' : 'Basic realm="remediator"');
        answerAndClose(res, 401, { error: 'missing or wrong credentials' });
        return;
      }
      next();
    },
    // Size before type: a declared oversized body is refused before anything waits on it.
    bodyLimit(deps.maxBytes),
    (req, res, next) => {
      if (!req.is('application/json') && !req.is('+json')) {
        res.status(415).json({ error: `unsupported content type ${JSON.stringify(req.headers['content-type'] ?? '')}: send application/json` });
        return;
      }
      next();
    },
    express.json({ limit: deps.maxBytes, strict: true }),
    async (req: Request, res: Response) => {
      // A chunked body that passed the limit on the wire but not once decoded: already answered 413.
      if (res.headersSent) return;
      const parsed = webhookSchema.safeParse(req.body);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
        deps.log.warn('webhook refused: invalid payload', { issues: issues.slice(0, 5) });
        res.status(400).json({ error: `invalid payload: ${issues[0]!.path}: ${issues[0]!.message}`, issues });
        return;
      }
      await acceptWebhook(deps, parsed.data, res);
    },
  );
  router.use(bodyErrors(deps.maxBytes));
  return router;
}

/** Where acceptWebhook answers: the HTTP response, or a collector (the reconciler). */
export interface Answer {
  status(code: number): Answer;
  set(field: string, value: string): Answer;
  json(body: unknown): unknown;
}

/**
 * The receiver path after parsing: match, dedup, enqueue, hand the audit record to the ingest
 * worker, answer. The webhook route and the reconciliation with Alertmanager's API (which builds
 * the same v4 payload from the alerts it fetched) both come through here.
 */
export async function acceptWebhook(deps: AlertmanagerReceiverDeps, hook: Webhook, res: Answer): Promise<void> {
  const deadline = deps.redisDeadlineMs ?? 2000;
  const table = deps.table();
  if (!table) {
    res.status(503).json({ error: 'rules not loaded yet' });
    return;
  }
  if (hook.truncatedAlerts > 0) {
    // max_alerts in Alertmanager's webhook_config cut this group: those alerts never reach us.
    deps.log.warn('Alertmanager truncated this delivery: raise max_alerts (0 = no limit)', { groupKey: hook.groupKey, truncatedAlerts: hook.truncatedAlerts });
  }
  const receivedAt = new Date().toISOString();
  const ctx = { groupKey: hook.groupKey, receiver: hook.receiver, externalURL: hook.externalURL, receivedAt, dryRun: deps.dryRun };
  const record: IngestRecord = { receivedAt, receiver: hook.receiver, groupKey: hook.groupKey, externalURL: hook.externalURL, alerts: [] };
  const jobs: JobSpec[] = [];
  for (const a of hook.alerts) {
    const alert: AlertInfo = {
      fingerprint: a.fingerprint, status: a.status, startsAt: a.startsAt, endsAt: a.endsAt,
      labels: a.labels, annotations: a.annotations, generatorURL: a.generatorURL,
    };
    const { decisions } = decide(table, alert, ctx);
    record.alerts.push({
      alert,
      decisions: decisions.map((d) => ({ decision: d.kind === 'enqueue' ? 'enqueued' : d.kind, rule: d.rule, jobId: d.jobId, reason: d.reason, job: d.job && withoutAlert(d.job) })),
    });
    for (const d of decisions) if (d.job) jobs.push(d.job);
  }
  // One deadline for all of this request's Redis work: past it, 503 and Alertmanager retries.
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${deadline} ms`)), deadline);
  });
  try {
    const existing = await Promise.race([jobsThatExist(deps, jobs.map((j) => j.jobId)), expired]);
    let duplicates = 0;
    for (const entry of record.alerts) {
      for (const d of entry.decisions) {
        if (d.job && existing.has(d.job.jobId)) {
          d.decision = 'duplicate';
          d.reason = 'this firing already has a job';
          duplicates++;
        }
      }
    }
    const fresh = jobs.filter((j) => !existing.has(j.jobId));
    // Each job is its own EVALSHA: cheaper than addBulk's pipeline, and sent together with the
    // audit record. BullMQ ignores an add whose id exists, so racing receivers still make one job.
    await Promise.race([
      Promise.all([
        ...fresh.map((j) => {
          const spec = table.rules.find((r) => r.spec.name === j.rule)!.spec;
          return deps.remediations.add(j.action, j, {
            jobId: j.jobId,
            attempts: spec.attempts,
            backoff: spec.backoff,
            removeOnComplete: { age: KEEP_FINISHED_SECONDS },
            removeOnFail: { age: KEEP_FINISHED_SECONDS },
          });
        }),
        deps.ingest.add('delivery', record, INGEST_JOB_OPTIONS),
      ]),
      expired,
    ]);
    if (deps.metrics) {
      const m = deps.metrics;
      for (const a of record.alerts) {
        m.alertsReceived.inc({ status: a.alert.status });
        for (const d of a.decisions) m.decisions.inc({ decision: d.decision });
      }
      m.jobsEnqueued.inc({ queue: deps.remediations.name }, fresh.length);
      m.jobsEnqueued.inc({ queue: deps.ingest.name });
      m.jobsDeduplicated.inc({ queue: deps.remediations.name }, duplicates);
    }
    deps.log.info('webhook accepted', webhookLogFields(record, fresh.length, duplicates));
    // Rules that matched but cannot act are said in the answer too (their jobs fail at once, escalating).
    const refused = record.alerts.flatMap((a) =>
      a.decisions
        .filter((d) => d.decision === 'refused' || d.decision === 'invalid')
        .map((d) => ({ fingerprint: a.alert.fingerprint, rule: d.rule, decision: d.decision, reason: d.reason })),
    );
    res.status(200).json({ status: 'accepted', alerts: hook.alerts.length, jobs: { enqueued: fresh.length, duplicates }, ...(refused.length ? { refused } : {}) });
  } catch (err) {
    deps.log.warn('webhook not accepted: redis unavailable', { error: (err as Error).message });
    res.status(503).set('Retry-After', '1').json({ error: 'queue unavailable, retry later' });
  } finally {
    clearTimeout(timer);
  }
}

const INGEST_JOB_OPTIONS = { attempts: 20, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: KEEP_FINISHED_SECONDS } };

/**
 * One round trip (the connection auto-pipelines): which of these job ids already exist in the
 * remediation queue. Runs on a plain connection: ioredis copies every custom command (BullMQ's Lua
 * scripts) into each explicit pipeline it builds, which cost more than the EXISTS themselves.
 */
async function jobsThatExist(deps: AlertmanagerReceiverDeps, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const base = `${deps.prefix}:${deps.remediations.name}:`;
  const found = new Set<string>();
  const counts = await Promise.all(ids.map((id) => deps.redis.exists(base + id)));
  counts.forEach((n, i) => {
    if (n === 1) found.add(ids[i]!);
  });
  return found;
}

/** The audit record already holds the alert once; the job copy of it would only double the JSON. */
function withoutAlert(job: JobSpec): Omit<JobSpec, 'alert'> {
  const { alert: _alert, ...rest } = job;
  return rest;
}

function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(body)';
}
