import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { incidentKey, pageKey } from '../../src/core/run.js';
import { truncate } from '../../src/core/text.js';
import {
  DEFAULT_POLICY,
  linksFor,
  noteContent,
  pageEvent,
  planIncident,
  policyOf,
  retryAfterMs,
  type IncidentAction,
  type PagerDutyPolicy,
  type PageEvent,
} from '../../src/notifiers/pagerduty/events.js';
import type { IncidentRow, IncidentRun } from '../../src/store/notify-state.js';

/** The groupKey of the reference payloads, and its sha256 computed outside this code (`printf %s ... | sha256sum`). */
const GROUP_KEY = '{}:{alertname="HighErrorRate"}';
const GROUP_KEY_SHA256 = 'cbc7a356b874c7d0332c73753d5082204bea3c18a5cb2a9a50e75f6687ffb86b';

let n = 0;
function run(over: Partial<IncidentRun> = {}): IncidentRun {
  n++;
  return {
    job_id: `job${n}`, rule: 'checkout-breaker', action: 'breaker-reset', target: 'checkout', state: 'running', error_reason: null, error_message: null,
    summary: null, attempts: 1, started_at: new Date('2026-11-22T07:40:00Z'), queued_at: new Date('2026-11-22T07:39:58Z'), alert_resolved_at: null,
    group_key: GROUP_KEY, fingerprint: '0123456789abcdef', starts_at: new Date('2026-11-22T07:39:57Z'),
    labels: { alertname: 'HighErrorRate', instance: 'node-1' }, annotations: { summary: 'Errors on checkout' }, generator_url: null, ...over,
  };
}
const incident = (over: Partial<IncidentRow> = {}): IncidentRow => ({
  dedup_key: GROUP_KEY_SHA256, routing: 'PAGERDUTY_ROUTING_KEY', acked_at: null, resolved_at: null, opened_at: new Date(0), paged: [], notes_through: '0', ...over,
});
const policy = (p: Partial<PagerDutyPolicy> = {}): PagerDutyPolicy => ({ ...DEFAULT_POLICY, ...p });
const plan = (runs: IncidentRun[], o: { inc?: Partial<IncidentRow>; p?: Partial<PagerDutyPolicy>; pages?: PageEvent[] } = {}) =>
  planIncident({ dedupKey: GROUP_KEY_SHA256, incident: incident(o.inc), runs, pages: o.pages ?? [], policyOfRule: () => policy(o.p) });
const kinds = (a: IncidentAction[]) => a.map((x) => (x.kind === 'trigger' ? `trigger:${x.why}:${x.dedupKey === GROUP_KEY_SHA256 ? 'base' : 'page'}` : x.kind));

describe('incident keys', () => {
  test('group_key is sha256 hex of the groupKey, as Alertmanager sends it', () => {
    assert.equal(incidentKey('group_key', { groupKey: GROUP_KEY, alert: { fingerprint: 'x', startsAt: '' } }), GROUP_KEY_SHA256);
  });

  test('fingerprint: stable across startsAt spellings of one instant, different per firing and per alert', () => {
    const at = (startsAt: string, fingerprint = '0123456789abcdef') => incidentKey('fingerprint', { groupKey: GROUP_KEY, alert: { startsAt, fingerprint } });
    const k = at('2026-11-22T07:39:57Z');
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.notEqual(k, GROUP_KEY_SHA256);
    assert.equal(at('2026-11-22T07:39:57.000000000Z'), k);
    assert.equal(at('2026-11-22T08:39:57+01:00'), k);
    assert.notEqual(at('2026-11-22T07:39:58Z'), k, 'another firing of the same alert');
    assert.notEqual(at('2026-11-22T07:39:57Z', 'fedcba9876543210'), k, 'another alert');
  });

  test('policyOf: false is off, absent means the defaults', () => {
    assert.equal(policyOf({ pagerduty: false }), undefined);
    assert.deepEqual(policyOf({}), DEFAULT_POLICY);
    assert.equal(policyOf({ pagerduty: { ...DEFAULT_POLICY, resolve: 'never' } })?.resolve, 'never');
  });
});

describe('what an incident needs: one acknowledge, each page once, one resolve', () => {
  test('a fix that starts acknowledges once, whatever the number of runs; notify-only rules and acknowledge: false never do', () => {
    assert.deepEqual(kinds(plan([run(), run(), run({ state: 'queued' })])), ['acknowledge']);
    assert.deepEqual(kinds(plan([run()], { inc: { acked_at: new Date() } })), [], 'already acknowledged');
    assert.deepEqual(kinds(plan([run({ state: 'queued' })])), [], 'not started yet');
    assert.deepEqual(kinds(plan([run({ action: 'notify' })])), []);
    assert.deepEqual(kinds(plan([run()], { p: { acknowledge: false } })), []);
  });

  test('failures page once on the page key (the incident was acknowledged), all new ones in one trigger', () => {
    const a = plan([run({ state: 'failed' }), run({ state: 'failed' }), run({ state: 'succeeded' })], { inc: { acked_at: new Date() } });
    assert.deepEqual(kinds(a), ['trigger:failed:page']);
    const t = a[0] as Extract<IncidentAction, { kind: 'trigger' }>;
    assert.equal(t.dedupKey, pageKey(GROUP_KEY_SHA256));
    assert.equal(t.runs.length, 2);
    assert.deepEqual(kinds(plan([run({ state: 'failed', job_id: 'p1' })], { inc: { acked_at: new Date(), paged: ['run:p1'] } })), [], 'paged already');
    assert.deepEqual(kinds(plan([run({ state: 'failed' })], { p: { escalate: false } })), ['acknowledge'], 'escalate: false: acknowledged, no page');
    assert.deepEqual(kinds(plan([run({ state: 'failed' })], { p: { acknowledge: false } })), ['trigger:failed:base'], 'nothing acknowledged: the base key pages');
  });

  test('a notify-only run pages on the incident key once; it resolves when every alert of the incident resolved', () => {
    const notified = (over: Partial<IncidentRun> = {}) => run({ action: 'notify', target: null, state: 'notified', ...over });
    assert.deepEqual(kinds(plan([notified(), notified()])), ['trigger:notified:base']);
    const a = notified({ job_id: 'n1', alert_resolved_at: new Date() });
    const b = notified({ job_id: 'n2', alert_resolved_at: null });
    assert.deepEqual(kinds(plan([a, b], { inc: { paged: ['run:n1', 'run:n2'] } })), [], 'one alert still firing');
    b.alert_resolved_at = new Date();
    assert.deepEqual(kinds(plan([a, b], { inc: { paged: ['run:n1', 'run:n2'] } })), ['resolve']);
    assert.deepEqual(kinds(plan([a, b], { inc: { paged: ['run:n1', 'run:n2'] }, p: { resolve: 'never' } })), [], 'resolve: never leaves it to Alertmanager');
  });

  test('resolve once the alerts resolved and the runs fixed them; never over a failure or a person', () => {
    const done = (over: Partial<IncidentRun> = {}) => run({ state: 'succeeded', alert_resolved_at: new Date(), ...over });
    const acked = { acked_at: new Date() };
    assert.deepEqual(kinds(plan([done(), done()], { inc: acked })), ['resolve']);
    assert.deepEqual(kinds(plan([done(), run({ state: 'succeeded' })], { inc: acked })), [], 'one alert still firing');
    assert.deepEqual(kinds(plan([done(), run({ state: 'running' })], { inc: acked })), [], 'a run still going');
    assert.deepEqual(kinds(plan([done(), done({ state: 'skipped', error_reason: 'cooldown' })], { inc: acked })), ['resolve'], 'a cooldown skip does not hold it');
    assert.deepEqual(kinds(plan([done(), done({ state: 'skipped', error_reason: 'human_ack' })], { inc: acked })), [], 'a person has it');
    assert.deepEqual(kinds(plan([done(), done({ state: 'failed', job_id: 'f1' })], { inc: { ...acked, paged: ['run:f1'] } })), [], 'a failure belongs to the person it woke');
    assert.deepEqual(kinds(plan([run({ state: 'succeeded' })], { inc: acked, p: { resolve: 'immediately' } })), ['resolve']);
    assert.deepEqual(kinds(plan([done()], { inc: { ...acked, resolved_at: new Date() } })), [], 'resolved already');
    assert.deepEqual(kinds(plan([done({ state: 'skipped', error_reason: 'cooldown' })])), [], 'nothing of ours in it');
  });

  test('a safety decision that needs a person pages once', () => {
    const r = run({ state: 'skipped', error_reason: 'budget', job_id: 'b1' });
    const page: PageEvent = { id: '42', job_id: 'b1', page: 'budget spent (rule x)', message: 'Budget spent', reason: 'budget' };
    assert.deepEqual(kinds(plan([r], { pages: [page] })), ['trigger:held:base']);
    assert.deepEqual(kinds(plan([r], { pages: [page], inc: { paged: ['page:42'] } })), []);
  });
});

describe('page bodies', () => {
  test('failed: the rule\'s severity, summary with rule, target and reason, details and links', () => {
    const r = run({ state: 'failed', summary: 'Failed after 3 attempts: breaker still open', error_reason: 'verification_failed', error_message: 'breaker still open', attempts: 3,
      generator_url: 'http://prom:9090/graph?g0.expr=up', annotations: { summary: 'Errors on checkout', runbook_url: 'https://runbooks/checkout' } });
    const a = plan([r], { inc: { acked_at: new Date() } })[0] as Extract<IncidentAction, { kind: 'trigger' }>;
    const body = pageEvent(a, { baseKey: GROUP_KEY_SHA256, linkBase: 'https://remediator.example/', now: new Date('2026-11-22T07:41:00Z'), words: { severity: 'error' } });
    assert.equal(body.event_action, 'trigger');
    assert.equal(body.dedup_key, pageKey(GROUP_KEY_SHA256));
    assert.equal(body.payload?.severity, 'error');
    assert.equal(body.payload?.source, 'checkout');
    assert.equal(body.payload?.summary, 'Auto-remediation failed: checkout-breaker on checkout: Failed after 3 attempts: breaker still open [verification_failed]');
    const d = body.payload!.custom_details!;
    assert.equal(d.rule, 'checkout-breaker');
    assert.equal(d.attempts, 3);
    assert.equal(d.error_reason, 'verification_failed');
    assert.equal(d.acknowledged_incident_dedup_key, GROUP_KEY_SHA256);
    assert.deepEqual((d.alert as { labels: unknown }).labels, { alertname: 'HighErrorRate', instance: 'node-1' });
    assert.deepEqual(body.links, [
      { href: 'http://prom:9090/graph?g0.expr=up', text: 'Alert source (Prometheus)' },
      { href: 'https://runbooks/checkout', text: 'Runbook' },
      { href: `https://remediator.example/ui/runs/${r.job_id}`, text: 'Remediation run (remediator)' },
    ]);
    assert.equal(JSON.stringify(body).includes('routing_key'), false, 'the builder never holds the routing key');
  });

  test('notified: says no automatic remediation exists, names the service and gives the instructions; the rule\'s runbook wins', () => {
    const r = run({ action: 'notify', target: null, state: 'notified', labels: { alertname: 'VoiceCallInitiateFailing', service: 'voice', instance: 'node-1' } });
    const a = plan([r])[0] as Extract<IncidentAction, { kind: 'trigger' }>;
    const body = pageEvent(a, { baseKey: GROUP_KEY_SHA256, now: new Date(), words: { instructions: 'Check the voice provider status page.', runbook: 'https://runbooks/voice', severity: 'critical' } });
    assert.equal(body.dedup_key, GROUP_KEY_SHA256);
    assert.equal(body.payload?.source, 'voice', 'no target: the alert service');
    assert.equal(body.payload?.summary, 'No automatic remediation for VoiceCallInitiateFailing on voice: Check the voice provider status page.');
    assert.deepEqual(body.links, [{ href: 'https://runbooks/voice', text: 'Runbook' }]);
  });

  test("notified with the rule's impact and links: the impact opens the summary, the links follow the runbook, details carry both", () => {
    const r = run({ action: 'notify', target: null, state: 'notified', labels: { alertname: 'SamiaTarotDatabaseUnreachable', service: 'samia-tarot-api' } });
    const a = plan([r])[0] as Extract<IncidentAction, { kind: 'trigger' }>;
    const words = {
      instructions: 'Check the Session Pooler status and network connectivity.', runbook: 'https://runbooks/samia#database-connectivity', severity: 'critical' as const,
      impact: 'Complete API outage', links: [{ text: 'Twilio status', url: 'https://status.twilio.com' }, { text: 'not a link', url: 'javascript:x' }],
    };
    const body = pageEvent(a, { baseKey: GROUP_KEY_SHA256, linkBase: 'https://remediator.example', now: new Date(), words });
    assert.equal(body.payload?.summary, 'No automatic remediation for SamiaTarotDatabaseUnreachable on samia-tarot-api: Complete API outage. Check the Session Pooler status and network connectivity.');
    assert.equal(body.payload?.source, 'samia-tarot-api');
    assert.deepEqual(body.links, [
      { href: 'https://runbooks/samia#database-connectivity', text: 'Runbook' },
      { href: 'https://status.twilio.com', text: 'Twilio status' },
      { href: `https://remediator.example/ui/runs/${r.job_id}`, text: 'Remediation run (remediator)' },
    ]);
    assert.equal(body.payload?.custom_details?.impact, 'Complete API outage');
    // A failed fix keeps its summary (the failure first) and carries the impact in the details.
    const failed = plan([run({ state: 'failed', summary: 'breaker still open' })]).find((x) => x.kind === 'trigger') as Extract<IncidentAction, { kind: 'trigger' }>;
    const fb = pageEvent(failed, { baseKey: GROUP_KEY_SHA256, now: new Date(), words: { impact: 'No new images' } });
    assert.match(fb.payload!.summary, /^Auto-remediation failed: .*breaker still open/);
    assert.equal(fb.payload?.custom_details?.impact, 'No new images');
  });

  test('the summary is cut to 1024 characters; links keep only http(s) URLs', () => {
    const a = plan([run({ state: 'failed', summary: 'x'.repeat(5000) })]).find((x) => x.kind === 'trigger') as Extract<IncidentAction, { kind: 'trigger' }>;
    const s = pageEvent(a, { baseKey: GROUP_KEY_SHA256, now: new Date() }).payload!.summary;
    assert.equal(Array.from(s).length, 1024);
    assert.ok(s.endsWith('…'));
    assert.equal(truncate('😀😀😀', 3), '😀…', 'never splits a surrogate pair');
    assert.deepEqual(linksFor(run({ generator_url: '', annotations: { runbook_url: 'javascript:alert(1)' } }), { linkBase: 'not a url' }), []);
  });
});

test('notes name the rule, target, attempt and message, several events in one note', () => {
  assert.equal(noteContent([
    { rule: 'checkout-breaker', target: 'checkout', state: 'step', attempt: 2, message: 'Reset sent' },
    { rule: 'checkout-breaker', target: 'checkout', state: 'retrying', attempt: 1, message: 'Attempt 1 of 3 failed' },
  ]), '[remediator]\ncheckout-breaker on checkout (attempt 2): Reset sent\ncheckout-breaker on checkout (attempt 1): retrying: Attempt 1 of 3 failed');
});

test('Retry-After: seconds, HTTP dates, garbage and bounds', () => {
  const now = Date.parse('2026-11-22T07:40:00Z');
  assert.equal(retryAfterMs('7', 30_000, now), 7000);
  assert.equal(retryAfterMs(null, 30_000, now), 30_000);
  assert.equal(retryAfterMs('soon', 30_000, now), 30_000);
  assert.equal(retryAfterMs('Sun, 22 Nov 2026 07:40:12 GMT', 30_000, now), 12_000);
  assert.equal(retryAfterMs('0', 30_000, now), 1000);
  assert.equal(retryAfterMs('999999', 30_000, now), 3_600_000);
});
