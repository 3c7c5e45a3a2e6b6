import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { pageKey, type JobSpec } from '../../src/core/run.js';
import { FakePagerDuty } from '../fakes/pagerduty.js';
import { notifyHarness, type NotifyHarness } from '../helpers/notify-harness.js';
import { eventually } from '../helpers/service.js';

const key32 = () => randomBytes(16).toString('hex');
const DEFAULT_KEY = key32();
const TEAM_KEY = key32();
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const RULES = `
rules:
  - name: fix
    match: ['alertname="Fix"']
    action: notify
    notify: { slack: false }
  - name: fix-now
    match: ['alertname="FixNow"']
    action: notify
    notify: { slack: false, pagerduty: { resolve: immediately } }
  - name: page-only
    match: ['alertname="PageOnly"']
    action: notify
    params: { instructions: 'Check the voice provider status page.' }
    runbook_url: https://runbooks.example/voice
    notify: { slack: false, pagerduty: { routing_key_env: PD_TEAM_KEY, severity: error } }
  - name: off
    match: ['alertname="Off"']
    action: notify
    notify: { slack: false, pagerduty: false }
  - name: unset
    match: ['alertname="Unset"']
    action: notify
    notify: { slack: false, pagerduty: { routing_key_env: PD_NOT_SET } }
`;

/**
 * The PagerDuty notifier through the journal, the outbox and the notification worker, against a
 * fake PagerDuty (Events API v2 and REST). Runs of rules whose action is `notify` are given
 * breaker-style events by hand: the notifier plans from the journal, not from the action.
 */
describe('PagerDuty notifier', () => {
  let fake: FakePagerDuty;
  let h: NotifyHarness;
  const env = { PAGERDUTY_ROUTING_KEY: DEFAULT_KEY, PD_TEAM_KEY: TEAM_KEY };
  before(async () => {
    fake = await new FakePagerDuty().start();
    h = await notifyHarness({ rules: RULES, pagerduty: { env, eventsUrl: fake.url, timeoutMs: 500 } });
  });
  after(async () => {
    await h.close();
    await fake.stop();
  });
  const enqueued = (dedupKey: string, action?: string) => fake.enqueued(dedupKey).filter((r) => r.status === 202 && (!action || r.body.event_action === action));
  /** A fix's events, as the worker records them. */
  const act = async (job: JobSpec, outcome: 'succeeded' | 'failed' = 'succeeded') => {
    await h.record(job, { type: 'running', attempt: 1, message: 'Attempt 1 started' });
    await h.record(job, { type: 'step', attempt: 1, message: 'Reset sent', acted: true });
    await h.record(job, outcome === 'failed' ? { type: 'failed', attempt: 1, message: 'Failed after 1 attempt: breaker still open', reason: 'verification_failed' } : { type: 'succeeded', attempt: 1, message: 'closed' });
  };

  test('several runs of one alert group: one acknowledge, then one resolve once every alert resolved', async () => {
    const group = `{}:{alertname="Fix",g="${key32()}"}`;
    const jobs = [await h.fire('fix', { labels: { alertname: 'Fix', i: '1' }, groupKey: group }), await h.fire('fix', { labels: { alertname: 'Fix', i: '2' }, groupKey: group })];
    // The fix's action is breaker-like: pretend the runs acted (the notifier reads the journal).
    await h.pool.query(`UPDATE "${h.schema}".runs SET action = 'breaker-reset' WHERE job_id = ANY($1)`, [jobs.map((j) => j.jobId)]);
    for (const j of jobs) await act(j);
    const base = sha256(group);
    await eventually(async () => enqueued(base, 'acknowledge').length === 1, 'acknowledged');
    await h.resolve(jobs[0]!);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(enqueued(base, 'resolve').length, 0, 'one alert still firing');
    await h.resolve(jobs[1]!);
    await eventually(async () => enqueued(base, 'resolve').length === 1, 'resolved');
    assert.deepEqual(fake.enqueued(base).map((r) => [r.body.event_action, r.body.routing_key]), [['acknowledge', DEFAULT_KEY], ['resolve', DEFAULT_KEY]]);
  });

  test('resolve: immediately resolves when the fix succeeded, without waiting for the alert', async () => {
    const job = await h.fire('fix-now', { labels: { alertname: 'FixNow' } });
    await h.pool.query(`UPDATE "${h.schema}".runs SET action = 'breaker-reset' WHERE job_id = $1`, [job.jobId]);
    await act(job);
    const base = sha256(job.groupKey);
    await eventually(async () => enqueued(base, 'resolve').length === 1, 'resolved');
  });

  test('a failed fix pages once, critical, on its own key (the acknowledged incident would stay silent); its incident is never resolved by us', async () => {
    const job = await h.fire('fix', { labels: { alertname: 'Fix', instance: 'node-9' } });
    await h.pool.query(`UPDATE "${h.schema}".runs SET action = 'breaker-reset', target = 'checkout' WHERE job_id = $1`, [job.jobId]);
    await act(job, 'failed');
    const base = sha256(job.groupKey);
    const trigger = await eventually(async () => enqueued(pageKey(base), 'trigger')[0], 'page');
    assert.equal(trigger.body.payload.severity, 'critical');
    assert.match(trigger.body.payload.summary, /^Auto-remediation failed: fix on checkout: Failed after 1 attempt: breaker still open \[verification_failed\]/);
    assert.equal(trigger.body.payload.custom_details.acknowledged_incident_dedup_key, base);
    await h.resolve(job);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(enqueued(base, 'resolve').length, 0, 'a failure belongs to the person it woke');
    assert.equal(enqueued(pageKey(base), 'trigger').length, 1, 'paged once');
  });

  test('notify-only pages the group key once with the rule\'s routing key, severity, runbook and instructions; never acknowledges; resolves with its alert', async () => {
    const job = await h.fire('page-only', { labels: { alertname: 'PageOnly', service: 'voice' } });
    await h.record(job, { type: 'running', attempt: 1, message: 'Attempt 1 started' });
    await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix for this alert. Check the voice provider status page.', details: { instructions: 'Check the voice provider status page.' } });
    const base = sha256(job.groupKey);
    const trigger = await eventually(async () => enqueued(base, 'trigger')[0], 'page');
    assert.equal(trigger.body.routing_key, TEAM_KEY);
    assert.equal(trigger.body.payload.severity, 'error');
    assert.equal(trigger.body.payload.summary, 'No automatic remediation for PageOnly on voice: Check the voice provider status page.');
    assert.ok(trigger.body.links.some((l: { href: string }) => l.href === 'https://runbooks.example/voice'));
    assert.equal(enqueued(base, 'acknowledge').length, 0);
    await h.resolve(job);
    await eventually(async () => enqueued(base, 'resolve').length === 1, 'a notify-only page resolves when its alert group resolves');
  });

  test('a burst of 500s, then a hung request, are retried until PagerDuty answers 202', async () => {
    fake.failNext(500, 2);
    fake.hangNext(1);
    const job = await h.fire('page-only', { labels: { alertname: 'PageOnly', service: 'retry' } });
    await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix' });
    const base = sha256(job.groupKey);
    await eventually(async () => enqueued(base, 'trigger').length === 1, 'delivered after the failures', 15_000);
    assert.ok(h.logLines.some((l) => /notification will be retried/.test(l) && /request timeout|500/.test(l)));
  });

  test('a 400 is final: recorded as failed with PagerDuty\'s message, sent once, never with the routing key in the audit', async () => {
    fake.failNext(400, 1);
    const job = await h.fire('page-only', { labels: { alertname: 'PageOnly', service: 'bad' } });
    await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix' });
    const row = await eventually(async () => (await h.pool.query(`SELECT * FROM "${h.schema}".notifications WHERE job_id = $1 AND state = 'failed'`, [job.jobId])).rows[0], 'failure recorded');
    assert.match(row.error, /answered 400: Event object is invalid; injected failure/);
    assert.equal(fake.enqueued(sha256(job.groupKey)).length, 1, 'not retried');
    assert.ok(!JSON.stringify(row).includes(TEAM_KEY));
  });

  test('a 429 pauses the routing key for its Retry-After; the event is delivered after it, not counted as a failure', async () => {
    fake.failNext(429, 1, { retryAfter: '2' });
    const job = await h.fire('page-only', { labels: { alertname: 'PageOnly', service: 'limited' } });
    const t0 = Date.now();
    await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix' });
    await eventually(async () => enqueued(sha256(job.groupKey), 'trigger').length === 1, 'delivered after Retry-After', 10_000);
    assert.ok(Date.now() - t0 >= 1800, 'waited for Retry-After');
    assert.equal((await h.pool.query(`SELECT count(*)::int AS n FROM "${h.schema}".notifications WHERE job_id = $1 AND state = 'failed'`, [job.jobId])).rows[0].n, 0);
  });

  test('not sent: notify.pagerduty false, or the rule\'s routing key env var unset (logged once, by name, no fallback to the default key)', async () => {
    const before = fake.requests.length;
    for (const alertname of ['Off', 'Unset', 'Unset']) {
      const job = await h.fire(alertname === 'Off' ? 'off' : 'unset', { labels: { alertname } });
      await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix' });
    }
    const probe = await h.fire('page-only', { labels: { alertname: 'PageOnly', service: 'probe' } });
    await h.record(probe, { type: 'notified', attempt: 1, message: 'No automatic fix' });
    await eventually(async () => enqueued(sha256(probe.groupKey), 'trigger').length === 1, 'the probe went out');
    assert.equal(fake.requests.slice(before).length, 1, 'only the probe');
    assert.equal(h.logLines.filter((l) => l.includes('PD_NOT_SET')).length, 1);
  });

  test('secrets never reach the notifications audit nor the logs', async () => {
    const rows = (await h.pool.query(`SELECT * FROM "${h.schema}".notifications`)).rows;
    assert.ok(rows.length >= 5, `audit rows: ${rows.length}`);
    const audited = JSON.stringify(rows);
    const logged = h.logLines.join('\n');
    for (const secret of [DEFAULT_KEY, TEAM_KEY]) {
      assert.equal(audited.includes(secret), false, 'secret in the notifications audit');
      assert.equal(logged.includes(secret), false, 'secret in the logs');
    }
    assert.ok(fake.enqueued().some((q) => q.body.routing_key === TEAM_KEY), 'PagerDuty did receive them');
  });
});

describe('PagerDuty notifier: notes and limits', () => {
  let fake: FakePagerDuty;
  let h: NotifyHarness;
  before(async () => {
    fake = await new FakePagerDuty().start();
    fake.limit = { perMinute: 120 };
    h = await notifyHarness({
      rules: RULES,
      pagerduty: { env: { PAGERDUTY_ROUTING_KEY: DEFAULT_KEY, PD_TEAM_KEY: TEAM_KEY }, eventsUrl: fake.url, apiToken: fake.apiToken, apiUrl: fake.url, from: 'remediator-bot@example.com' },
    });
  });
  after(async () => {
    await h.close();
    await fake.stop();
  });

  test('with a REST token, steps become notes (From header, Token auth) on the open incident, several per note', async () => {
    const job = await h.fire('page-only', { labels: { alertname: 'PageOnly', service: 'noted' } });
    await h.record(job, { type: 'notified', attempt: 1, message: 'No automatic fix' });
    const base = sha256(job.groupKey);
    await eventually(async () => fake.incident(base), 'incident open');
    await h.record(job, { type: 'note', message: 'A person looked at it' });
    await h.record(job, { type: 'note', message: 'And left a comment' });
    await eventually(async () => fake.incident(base)!.notes.map((n) => n.content).join('\n').includes('And left a comment'), 'notes added');
    const post = fake.requests.find((q) => q.method === 'POST' && q.path === `/incidents/${fake.incident(base)!.id}/notes`)!;
    assert.equal(post.headers.from, 'remediator-bot@example.com');
    assert.equal(post.headers.authorization, `Token token=${fake.apiToken}`);
    assert.ok(fake.incident(base)!.notes.length <= 2, 'coalesced');
  });

  test('a storm of 60 runs in 3 alert groups: at most 2 events per group, no 429', async () => {
    const groups = [1, 2, 3].map((g) => `{}:{alertname="Fix",storm="${g}-${key32()}"}`);
    const jobs: JobSpec[] = [];
    for (let i = 0; i < 60; i++) jobs.push(await h.fire('fix', { labels: { alertname: 'Fix', i: String(i) }, groupKey: groups[i % 3] }));
    await h.pool.query(`UPDATE "${h.schema}".runs SET action = 'breaker-reset' WHERE job_id = ANY($1)`, [jobs.map((j) => j.jobId)]);
    await Promise.all(jobs.map(async (j) => {
      await h.record(j, { type: 'running', attempt: 1, message: 'Attempt 1 started' });
      await h.record(j, { type: 'succeeded', attempt: 1, message: 'closed' });
    }));
    for (const j of jobs) await h.resolve(j);
    for (const g of groups) await eventually(async () => fake.enqueued(sha256(g)).some((r) => r.body.event_action === 'resolve'), `group ${g} resolved`, 20_000);
    for (const g of groups) assert.deepEqual(fake.enqueued(sha256(g)).map((r) => r.body.event_action), ['acknowledge', 'resolve']);
    assert.equal(fake.limited().length, 0);
  });
});
