import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeSlack } from '../fakes/slack.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

const root = join(import.meta.dirname, '../..');

/** Scrapes /metrics; `value('name{labels}')` reads one sample (undefined when absent). */
async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return {
    text,
    value(series: string): number | undefined {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    },
  };
}

const RULES = `
rules:
  - name: page-notify
    match: ['alertname="MetricsPage"']
    action: notify
    params: { instructions: "look at {{ labels.instance }}" }
    notify: { slack: { channel: '#ops' } }
`;

describe('/metrics of a process with the receiver and the workers', () => {
  let svc: TestService;
  let slack: FakeSlack;
  before(async () => {
    slack = await new FakeSlack().start();
    svc = await startTestService({
      rules: { 'rules.yml': RULES },
      env: { SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url, SLACK_CHANNEL: '#ops' },
    });
  });
  after(async () => {
    await svc?.close();
    await slack?.stop();
  });

  test('webhooks, decisions, jobs, runs, notifications, queues, rules and build info, with conventional names', async () => {
    slack.fail({ count: 1, kind: 'http500' });
    // An alert label that must never become a metric label.
    const body = firingWebhook('MetricsPage', 'f000000000000001', { labels: { instance: 'secret-host-4711' } });
    assert.equal((await postWebhook(svc.url, body)).status, 200);
    assert.equal((await postWebhook(svc.url, body)).status, 200); // the same firing again: deduplicated
    assert.equal((await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST' })).status, 401);

    const m = await eventually(async () => {
      const s = await scrape(svc.url);
      return (s.value('remediator_notifications_sent_total{notifier="slack"}') ?? 0) >= 1 &&
        s.value('remediator_runs_total{action="notify",rule="page-notify",outcome="notified"}') === 1 ? s : undefined;
    }, 'the run and a Slack delivery in /metrics', 30_000);

    assert.equal(m.value('remediator_webhook_requests_total{code="200"}'), 2);
    assert.equal(m.value('remediator_webhook_requests_total{code="401"}'), 1);
    assert.equal(m.value('remediator_webhook_duration_seconds_count{code="200"}'), 2);
    assert.ok(m.value('remediator_webhook_duration_seconds_sum{code="200"}')! > 0);
    assert.equal(m.value('remediator_webhook_duration_seconds_bucket{le="+Inf",code="200"}'), 2);
    assert.equal(m.value('remediator_alerts_received_total{status="firing"}'), 2);
    assert.equal(m.value('remediator_decisions_total{decision="enqueued"}'), 1);
    assert.equal(m.value('remediator_decisions_total{decision="duplicate"}'), 1);
    assert.equal(m.value('remediator_jobs_enqueued_total{queue="remediations"}'), 1);
    assert.equal(m.value('remediator_jobs_deduplicated_total{queue="remediations"}'), 1);
    assert.equal(m.value('remediator_run_duration_seconds_count{action="notify",outcome="notified"}'), 1);
    assert.equal(m.value('remediator_notifications_failed_total{notifier="slack",final="false"}'), 1);
    assert.equal(m.value('remediator_queue_jobs{queue="remediations",state="failed"}'), 0);
    assert.equal(m.value('remediator_queue_oldest_waiting_job_age_seconds{queue="remediations"}'), 0);
    assert.ok(m.value('remediator_queue_workers{queue="remediations"}')! >= 1, 'this process works the queue');
    assert.equal(m.value('remediator_runs_last_24h{action="notify",state="notified",reason=""}'), 1);
    assert.equal(m.value('remediator_rules_last_reload_successful'), 1);
    assert.ok(Math.abs(m.value('remediator_rules_last_reload_success_timestamp_seconds')! - Date.now() / 1000) < 120);
    assert.equal(m.value('remediator_dependencies_up'), 1);
    const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    assert.equal(m.value(`remediator_build_info{version="${version}",node_version="${process.version}"}`), 1);
    // prom-client's default process metrics.
    assert.match(m.text, /^process_cpu_seconds_total \d/m);
    assert.match(m.text, /^process_resident_memory_bytes \d/m);
    assert.match(m.text, /^nodejs_eventloop_lag_seconds \d/m);
    assert.match(m.text, /# TYPE remediator_redis_persistence gauge/);
    assert.doesNotMatch(m.text, /secret-host-4711|test-webhook-token|xoxb-/);
    // Conventions: counters end in _total, durations are histograms in seconds.
    for (const [, name, type] of m.text.matchAll(/^# TYPE (remediator_\w+) (\w+)$/gm)) {
      if (type === 'counter') assert.match(name!, /_total$/, name);
      if (type === 'histogram') assert.match(name!, /_seconds$/, name);
    }
  });

  test('a refused reload: counted, and last_reload_successful goes to 0 while the old rules run', async () => {
    await svc.writeRules({ 'rules.yml': RULES.replace('action: notify', 'action: no-such-action') });
    assert.equal(await svc.service.reload('test'), false);
    let m = await scrape(svc.url);
    assert.equal(m.value('remediator_rules_reloads_total{result="failure"}'), 1);
    assert.equal(m.value('remediator_rules_last_reload_successful'), 0);
    await svc.writeRules({ 'rules.yml': RULES });
    assert.equal(await svc.service.reload('test'), true);
    m = await scrape(svc.url);
    assert.ok(m.value('remediator_rules_reloads_total{result="success"}')! >= 1);
    assert.equal(m.value('remediator_rules_last_reload_successful'), 1);
  });
});

describe('/metrics when no worker takes the jobs', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ rules: { 'rules.yml': RULES }, env: { REMEDIATOR_ROLE: 'receiver' } });
  });
  after(async () => svc?.close());

  test('the oldest accepted delivery ages and the queues have no workers', async () => {
    // A receiver only appends the delivery to the stream; with no worker nothing fans it out.
    assert.equal((await postWebhook(svc.url, firingWebhook('MetricsPage', 'f000000000000002'))).status, 200);
    const m = await eventually(async () => {
      const s = await scrape(svc.url);
      return s.value('remediator_queue_oldest_waiting_job_age_seconds{queue="deliveries"}')! >= 1 ? s : undefined;
    }, 'the waiting delivery to be a second old', 10_000, 200);
    assert.equal(m.value('remediator_queue_jobs{queue="deliveries",state="waiting"}'), 1);
    assert.equal(m.value('remediator_queue_jobs{queue="remediations",state="waiting"}'), 0);
    assert.equal(m.value('remediator_queue_workers{queue="remediations"}'), 0);
  });
});

describe('a worker-only process', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ rules: { 'rules.yml': RULES }, env: { REMEDIATOR_ROLE: 'worker' } });
  });
  after(async () => svc?.close());

  test('serves its own /metrics, /healthz and /readyz on METRICS_PORT, and no webhooks', async () => {
    assert.equal(svc.service.url, undefined);
    const url = svc.service.metricsUrl!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const m = await scrape(url);
    assert.match(m.text, /^remediator_build_info\{/m);
    assert.match(m.text, /# TYPE remediator_runs_total counter/);
    assert.doesNotMatch(m.text, /remediator_queue_jobs/, 'queue depths come from the receivers only');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    assert.equal((await fetch(`${url}/webhooks/alertmanager`, { method: 'POST' })).status, 404);
  });
});
