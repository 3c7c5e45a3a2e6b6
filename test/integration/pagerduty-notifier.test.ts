import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { AuditStore } from '../../src/store/journal-store.js';
import { createLogger } from '../../src/log.js';
import type { RunEvent } from '../../src/notifiers/events.js';
import { createPagerDutyNotifier, type PagerDutyNotifierOptions } from '../../src/notifiers/pagerduty.js';
import { queueSink } from '../../src/notifiers/sink.js';
import type { EventSink } from '../../src/notifiers/events.js';
import type { Notifier } from '../../src/notifiers/types.js';
import { startNotificationWorker } from '../../src/workers/notification.js';
import { QUEUES } from '../../src/redis/connection.js';
import type { NotifySpec } from '../../src/rules/schema.js';
import type { JobSpec } from '../../src/core/run.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { alert } from '../helpers/context.js';
import { testSchema } from '../helpers/pg.js';
import { dropPrefix, eventually, REDIS_URL } from '../helpers/service.js';

const key32 = () => randomBytes(16).toString('hex');
const DEFAULT_KEY = key32();
const TEAM_KEY = key32();
const env = { PAGERDUTY_ROUTING_KEY: DEFAULT_KEY, PD_TEAM_KEY: TEAM_KEY, PD_SHORT_KEY: 'tooshort0123' };
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const pd = (p: Partial<Exclude<NotifySpec['pagerduty'], false | undefined>> = {}): NotifySpec => ({
  pagerduty: { dedup: 'group_key', acknowledge: true, resolve: 'on_alert_resolved', escalate: true, ...p },
});

interface Harness {
  notifier: Notifier;
  sink: EventSink;
  queue: Queue;
  worker: Worker;
}

describe('PagerDuty notifier: queueSink + notification worker + real pdjs/fetch against a fake PagerDuty', () => {
  let db: Awaited<ReturnType<typeof testSchema>>;
  let audit: AuditStore;
  let fake: FakePagerDuty;
  let conn: Redis;
  let h: Harness;
  const prefixes: string[] = [];
  const harnesses: Harness[] = [];
  const logLines: string[] = [];
  const log = createLogger('debug', {}, (l) => logLines.push(l));

  async function harness(o: Partial<PagerDutyNotifierOptions> = {}): Promise<Harness> {
    const prefix = `pd-it-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const notifier = createPagerDutyNotifier({ env, eventsUrl: fake.url, audit, log, linkBase: 'https://remediator.example', runPollMs: 100, ...o });
    const queue = new Queue(QUEUES.notify('pagerduty'), { connection: conn, prefix });
    const sink = queueSink({ connection: conn, prefix, targets: [{ notifier, queue }] });
    const worker = startNotificationWorker({ notifier, connection: conn, prefix, audit, log, backoff: () => 100 });
    const out = { notifier, sink, queue, worker };
    harnesses.push(out);
    return out;
  }

  /** A run of rule checkout-breaker with its own group key (so the fake's records do not mix between tests). */
  function newRun(notify: NotifySpec, o: { action?: string; target?: string | null; ruleName?: string } = {}) {
    const id = randomBytes(6).toString('hex');
    const spec: JobSpec = {
      jobId: `job${id}`,
      rule: o.ruleName ?? 'checkout-breaker',
      action: o.action ?? 'breaker-reset',
      target: o.target === null ? undefined : (o.target ?? 'checkout'),
      params: {},
      dryRun: false,
      alert: alert(
        { alertname: 'HighErrorRate', instance: 'node-1', run: id },
        {
          fingerprint: id.padEnd(16, '0'),
          generatorURL: 'http://prometheus:9090/graph?g0.expr=rate',
          annotations: { summary: 'Errors on checkout', runbook_url: 'https://runbooks.example/checkout' },
        },
      ),
      groupKey: `{}:{alertname="HighErrorRate",run="${id}"}`,
      receiver: 'remediate',
      externalURL: 'http://alertmanager:9093',
      receivedAt: new Date().toISOString(),
    };
    const event = (type: RunEvent['type'], extra: Partial<RunEvent> = {}): RunEvent => ({
      type, jobId: spec.jobId, rule: spec.rule, action: spec.action, target: spec.target, alert: spec.alert, groupKey: spec.groupKey,
      receiver: spec.receiver, externalURL: spec.externalURL, dryRun: false, attempt: 1, message: `${type} happened`, notify,
      at: new Date().toISOString(), ...extra,
    });
    const started = () => audit.runStarted(spec, 1, new Date(), new Date());
    const ended = (state: 'succeeded' | 'failed', extra: { reason?: string; error?: string; attempt?: number } = {}) =>
      audit.runEnded(spec, { state, attempt: extra.attempt ?? 1, summary: `${state}`, at: new Date(), ...extra });
    return { spec, event, started, ended, base: sha256(spec.groupKey) };
  }

  /** What Alertmanager's own PagerDuty integration does when the group fires: a trigger on sha256(groupKey). */
  async function alertmanagerTrigger(routingKey: string, dedupKey: string) {
    const res = await fetch(`${fake.url}/v2/enqueue`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ routing_key: routingKey, event_action: 'trigger', dedup_key: dedupKey, payload: { summary: '[FIRING:1] HighErrorRate', source: 'alertmanager', severity: 'critical' } }),
    });
    assert.equal(res.status, 202);
  }

  const notifications = async (jobId: string) =>
    (await db.pool.query(`SELECT * FROM "${db.schema}".notifications WHERE job_id = $1 ORDER BY id`, [jobId])).rows;
  const jobsOf = async (q: Queue, jobId: string) => (await q.getJobs()).filter((j) => j.data.jobId === jobId);
  const enqueued = (dedupKey: string, action?: string) => fake.enqueued(dedupKey).filter((r) => !action || r.body.event_action === action);

  before(async () => {
    db = await testSchema('pd');
    audit = new AuditStore(db.pool, db.schema);
    fake = await new FakePagerDuty().start();
    conn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    h = await harness();
  });

  after(async () => {
    for (const x of harnesses) {
      await x.worker.close();
      await x.queue.close();
    }
    await conn.quit();
    for (const p of prefixes) await dropPrefix(REDIS_URL, p);
    await db.drop();
    await fake.stop();
  });

  test('running acknowledges sha256(groupKey) with the rule\'s routing key; succeeded with resolve: immediately resolves', async () => {
    const r = newRun(pd({ routing_key_env: 'PD_TEAM_KEY', resolve: 'immediately' }));
    await alertmanagerTrigger(TEAM_KEY, r.base);
    await r.started();
    await h.sink.publish(r.event('running', { message: 'Attempt 1 of 3 started.' }));
    const [ack] = await eventually(async () => enqueued(r.base, 'acknowledge').length === 1 && enqueued(r.base, 'acknowledge'), 'acknowledge');
    assert.equal(ack!.body.dedup_key, sha256(r.spec.groupKey));
    assert.equal(ack!.body.routing_key, TEAM_KEY);
    assert.equal(ack!.body.payload, undefined);
    await eventually(async () => fake.incident(r.base)?.status === 'acknowledged', 'incident acknowledged');

    await r.ended('succeeded');
    await h.sink.publish(r.event('succeeded', { message: 'Breaker closed.' }));
    await eventually(async () => enqueued(r.base, 'resolve').length === 1, 'resolve');
    await eventually(async () => fake.incident(r.base)?.status === 'resolved', 'incident resolved');
    const rows = await eventually(async () => {
      const n = await notifications(r.spec.jobId);
      return n.length === 2 && n;
    }, 'two audit rows');
    assert.deepEqual(rows.map((n) => [n.event_type, n.state, n.detail.status, n.detail.dedup_key]), [
      ['running', 'sent', 202, r.base],
      ['succeeded', 'sent', 202, r.base],
    ]);
    assert.equal(fake.incident(r.base)!.pages, 1, 'only Alertmanager paged');
  });

  test('resolve: on_alert_resolved: success does not resolve, the alert resolving does', async () => {
    const r = newRun(pd());
    await alertmanagerTrigger(DEFAULT_KEY, r.base);
    await r.started();
    await h.sink.publish(r.event('running'));
    await eventually(async () => fake.incident(r.base)?.status === 'acknowledged', 'acknowledged with the default routing key');
    assert.equal(enqueued(r.base, 'acknowledge')[0]!.body.routing_key, DEFAULT_KEY);

    await r.ended('succeeded');
    await h.sink.publish(r.event('succeeded'));
    // Not accepted: publish adds no job at all, so nothing can reach PagerDuty for it later.
    assert.deepEqual((await jobsOf(h.queue, r.spec.jobId)).map((j) => j.name), ['running']);

    assert.ok(await audit.markAlertResolved(r.spec.jobId, new Date().toISOString()));
    await h.sink.publish(r.event('alert_resolved', { alert: { ...r.spec.alert, status: 'resolved', endsAt: new Date().toISOString() } }));
    await eventually(async () => enqueued(r.base, 'resolve').length === 1, 'resolve after alert_resolved');
    assert.equal(fake.incident(r.base)!.status, 'resolved');
    assert.deepEqual((await notifications(r.spec.jobId)).map((n) => [n.event_type, n.state]), [
      ['running', 'sent'],
      ['alert_resolved', 'sent'],
    ]);
  });

  test('alert_resolved waits for a run still running, and never resolves a failed run', async () => {
    const r = newRun(pd());
    await r.started();
    await h.sink.publish(r.event('alert_resolved'));
    const [job] = await jobsOf(h.queue, r.spec.jobId);
    await eventually(async () => (await job!.getState()) === 'delayed', 'alert_resolved put back to wait for the run');
    assert.equal(enqueued(r.base, 'resolve').length, 0, 'not resolved while the run runs');
    await r.ended('succeeded');
    await eventually(async () => enqueued(r.base, 'resolve').length === 1, 'resolved once the run succeeded');

    const f = newRun(pd());
    await f.started();
    await f.ended('failed', { reason: 'verification_failed', error: 'breaker still open' });
    await h.sink.publish(f.event('alert_resolved'));
    const [row] = await eventually(async () => {
      const n = await notifications(f.spec.jobId);
      return n.length === 1 && n;
    }, 'alert_resolved recorded');
    assert.equal(row.state, 'sent');
    assert.match(row.detail.skipped, /run failed \(verification_failed\): not resolving/);
    assert.equal(enqueued(f.base).length, 0);
  });

  test('failed pages: trigger critical on its own key (the acknowledged incident would stay silent), reason in summary and details', async () => {
    const r = newRun(pd());
    await alertmanagerTrigger(DEFAULT_KEY, r.base);
    await r.started();
    await h.sink.publish(r.event('running'));
    await eventually(async () => fake.incident(r.base)?.status === 'acknowledged', 'acknowledged');
    await r.ended('failed', { reason: 'verification_failed', error: 'breaker still open after reset', attempt: 3 });
    await h.sink.publish(r.event('failed', { attempt: 3, reason: 'verification_failed', message: 'Failed after 3 attempts: breaker still open after reset', details: { state: 'open' } }));

    const [trigger] = await eventually(async () => {
      const t = fake.enqueued().filter((q) => q.body.event_action === 'trigger' && q.body.payload?.custom_details?.run_id === r.spec.jobId);
      return t.length === 1 && t;
    }, 'trigger');
    const b = trigger!.body;
    assert.equal(b.routing_key, DEFAULT_KEY);
    assert.notEqual(b.dedup_key, r.base);
    assert.equal(b.payload.severity, 'critical');
    assert.equal(b.payload.source, 'checkout');
    assert.equal(b.payload.summary, 'Auto-remediation failed: checkout-breaker on checkout: Failed after 3 attempts: breaker still open after reset [verification_failed]');
    const d = b.payload.custom_details;
    assert.equal(d.rule, 'checkout-breaker');
    assert.equal(d.action, 'breaker-reset');
    assert.equal(d.target, 'checkout');
    assert.equal(d.attempts, 3);
    assert.equal(d.error_reason, 'verification_failed');
    assert.equal(d.error_message, 'breaker still open after reset');
    assert.equal(d.alert.summary, 'Errors on checkout');
    assert.equal(d.alert.labels.instance, 'node-1');
    assert.equal(d.acknowledged_incident_dedup_key, r.base);
    assert.deepEqual(b.links.map((l: { href: string }) => l.href), [
      'http://prometheus:9090/graph?g0.expr=rate',
      'https://runbooks.example/checkout',
      `https://remediator.example/api/runs/${r.spec.jobId}`,
    ]);
    // Someone is woken: a new triggered incident; Alertmanager's stays acknowledged.
    assert.equal(fake.incident(b.dedup_key)?.status, 'triggered');
    assert.equal(fake.incident(b.dedup_key)?.pages, 1);
    assert.equal(fake.incident(r.base)?.status, 'acknowledged');
  });

  test('notified (notify-only rule) pages on the group key with the instructions, never acknowledging', async () => {
    const r = newRun(pd(), { action: 'notify', target: null, ruleName: 'voice-calls-down' });
    await r.started();
    await h.sink.publish(r.event('running'));
    await h.sink.publish(r.event('notified', { message: 'No automatic fix for this alert.', details: { instructions: 'Check the voice provider status page.' } }));
    assert.deepEqual((await jobsOf(h.queue, r.spec.jobId)).map((j) => j.name), ['notified']);
    const [t] = await eventually(async () => enqueued(r.base).length === 1 && enqueued(r.base), 'trigger');
    assert.equal(t!.body.event_action, 'trigger');
    assert.equal(t!.body.payload.severity, 'critical');
    assert.equal(t!.body.payload.source, 'node-1');
    assert.equal(t!.body.payload.summary, 'No automatic remediation for HighErrorRate on node-1: Check the voice provider status page.');
    assert.equal(t!.body.payload.custom_details.instructions, 'Check the voice provider status page.');
  });

  test('a burst of 500s is retried with backoff until PagerDuty answers 202', async () => {
    const r = newRun(pd());
    fake.failNext(500, 3);
    await h.sink.publish(r.event('running'));
    await eventually(async () => enqueued(r.base).some((q) => q.status === 202), '202 after retries');
    assert.deepEqual(enqueued(r.base).map((q) => q.status), [500, 500, 500, 202]);
    const rows = await eventually(async () => {
      const n = await notifications(r.spec.jobId);
      return n.length === 4 && n;
    }, 'four audit rows');
    assert.deepEqual(rows.map((n) => [n.state, n.attempt]), [['retrying', 1], ['retrying', 2], ['retrying', 3], ['sent', 4]]);
    assert.match(rows[0].error, /PagerDuty Events API \(acknowledge\) answered 500/);
  });

  test('a request that gets no answer ends at the per-request timeout, named as such, and is retried', async () => {
    const quick = await harness({ timeoutMs: 300 });
    const r = newRun(pd());
    fake.hangNext(1);
    await quick.sink.publish(r.event('running'));
    const rows = await eventually(async () => {
      const n = await notifications(r.spec.jobId);
      return n.some((x) => x.state === 'sent') && n;
    }, 'sent after the hung attempt');
    assert.deepEqual(rows.map((n) => [n.state, n.attempt]), [['retrying', 1], ['sent', 2]]);
    assert.equal(rows[0].error, 'PagerDuty Events API (acknowledge): request timeout of 300ms reached');
    assert.deepEqual(enqueued(r.base).map((q) => q.status), [0, 202], 'the first request hung, the retry was accepted');
  });

  test('a 400 is final: recorded as failed with PagerDuty\'s message, called once, never the routing key', async () => {
    // A real validation failure: the routing key has the wrong length.
    const r = newRun(pd({ routing_key_env: 'PD_SHORT_KEY' }));
    await h.sink.publish(r.event('running'));
    const [row] = await eventually(async () => {
      const n = await notifications(r.spec.jobId);
      return n.length === 1 && n;
    }, 'failed row');
    assert.equal(row.state, 'failed');
    assert.match(row.error, /answered 400: Event object is invalid; Length of 'routing_key' is incorrect/);
    assert.equal(row.detail.status, 400);
    const [job] = await jobsOf(h.queue, r.spec.jobId);
    await eventually(async () => (await job!.getState()) === 'failed', 'job failed for good');
    assert.equal(enqueued(r.base).length, 1);

    // Even if PagerDuty echoed the key, it would not reach the audit.
    const e = newRun(pd());
    fake.failNext(400, 1, { body: { status: 'invalid event', message: `Event object is invalid for ${DEFAULT_KEY}`, errors: [`unknown routing key ${DEFAULT_KEY}`] } });
    await h.sink.publish(e.event('running'));
    const [erow] = await eventually(async () => {
      const n = await notifications(e.spec.jobId);
      return n.length === 1 && n;
    }, 'failed row (echo)');
    assert.equal(erow.state, 'failed');
    assert.match(erow.error, /\[redacted\]/);
    assert.equal(JSON.stringify(erow).includes(DEFAULT_KEY), false);
    assert.equal(enqueued(e.base).length, 1);
  });

  test('a 429 with Retry-After is honoured, without using an attempt', async () => {
    const r = newRun(pd());
    fake.failNext(429, 1, { retryAfter: '1' });
    await h.sink.publish(r.event('running'));
    await eventually(async () => enqueued(r.base).some((q) => q.status === 202), '202 after the rate limit');
    const calls = enqueued(r.base);
    assert.deepEqual(calls.map((q) => q.status), [429, 202]);
    assert.ok(calls[1]!.at - calls[0]!.at >= 950, `waited ${calls[1]!.at - calls[0]!.at} ms, Retry-After said 1 s`);
    const rows = await eventually(async () => {
      const n = await notifications(r.spec.jobId);
      return n.length === 2 && n;
    }, 'two audit rows');
    assert.deepEqual(rows.map((n) => [n.state, n.attempt]), [['retrying', 1], ['sent', 1]]);
    assert.equal(rows[0].detail.retryAfterMs, 1000);
  });

  test('with a REST token, steps become notes (From header, Token auth) on the incident; without one they are not sent', async () => {
    const withApi = await harness({ apiToken: fake.apiToken, apiUrl: fake.url, from: 'remediator-bot@example.com' });
    const r = newRun(pd());
    await alertmanagerTrigger(DEFAULT_KEY, r.base);
    await withApi.sink.publish(r.event('step', { attempt: 1, message: 'Reset sent to checkout' }));
    await eventually(async () => fake.incident(r.base)!.notes.length === 1, 'note added');
    assert.equal(fake.incident(r.base)!.notes[0]!.content, '[remediator] checkout-breaker on checkout (attempt 1): Reset sent to checkout');
    const get = fake.requests.find((q) => q.method === 'GET' && q.query.get('incident_key') === r.base);
    assert.ok(get, 'looked the incident up by incident_key');
    const post = fake.requests.find((q) => q.method === 'POST' && q.path === `/incidents/${fake.incident(r.base)!.id}/notes`)!;
    assert.equal(post.headers.from, 'remediator-bot@example.com');
    assert.equal(post.headers.authorization, `Token token=${fake.apiToken}`);
    assert.equal(post.headers.accept, 'application/vnd.pagerduty+json;version=2');
    const [row] = await eventually(async () => {
      const n = await notifications(r.spec.jobId);
      return n.length === 1 && n;
    }, 'note audited');
    assert.deepEqual([row.state, row.detail.status, row.detail.incident_id], ['sent', 201, fake.incident(r.base)!.id]);

    // No incident with that key: nothing to annotate, said so.
    const lone = newRun(pd());
    await withApi.sink.publish(lone.event('retrying', { message: 'Attempt 1 of 3 failed' }));
    const [lrow] = await eventually(async () => {
      const n = await notifications(lone.spec.jobId);
      return n.length === 1 && n;
    }, 'lone note audited');
    assert.equal(lrow.detail.note, 'not added');

    // Without a token the notifier does not take steps at all.
    const s = newRun(pd());
    await h.sink.publish(s.event('step'));
    assert.equal(h.notifier.accepts(s.event('step')), false);
    assert.deepEqual(await jobsOf(h.queue, s.spec.jobId), []);
  });

  test('not accepted: notify.pagerduty false, or the rule\'s routing key env var unset (logged once, by name, no fallback)', async () => {
    const off = newRun({ pagerduty: false });
    assert.equal(h.notifier.accepts(off.event('failed')), false);
    const missing = newRun(pd({ routing_key_env: 'PD_NOT_SET' }));
    assert.equal(h.notifier.accepts(missing.event('failed')), false);
    assert.equal(h.notifier.accepts(missing.event('running')), false);
    assert.equal(logLines.filter((l) => l.includes('PD_NOT_SET')).length, 1);
    const noDefault = createPagerDutyNotifier({ env: {}, audit, log });
    assert.equal(noDefault.accepts(newRun(pd()).event('failed')), false);
    assert.equal(h.notifier.accepts(newRun(pd()).event('failed')), true, 'control: the default key works');
  });

  test('secrets never reach the notifications audit nor the logs', async () => {
    const rows = (await db.pool.query(`SELECT * FROM "${db.schema}".notifications`)).rows;
    assert.ok(rows.length >= 15, `audit rows: ${rows.length}`);
    assert.ok(logLines.length > 0);
    const audited = JSON.stringify(rows);
    const logged = logLines.join('\n');
    for (const secret of [DEFAULT_KEY, TEAM_KEY, env.PD_SHORT_KEY, fake.apiToken]) {
      assert.equal(audited.includes(secret), false, 'secret in the notifications audit');
      assert.equal(logged.includes(secret), false, 'secret in the logs');
    }
    // ... while PagerDuty did receive them.
    assert.ok(fake.enqueued().some((q) => q.body.routing_key === TEAM_KEY));
  });
});
