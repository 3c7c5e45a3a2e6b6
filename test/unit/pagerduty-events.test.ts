import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent } from '../../src/notifiers/events.js';
import {
  DEFAULT_POLICY,
  dedupKeyFor,
  linksFor,
  noteContent,
  pageDedupKey,
  pageEvent,
  planFor,
  policyOf,
  retryAfterMs,
  truncate,
  type PagerDutyPolicy,
} from '../../src/notifiers/pagerduty/events.js';
import { alert } from '../helpers/context.js';

/** The groupKey of the reference payloads, and its sha256 computed outside this code (`printf %s ... | sha256sum`). */
const GROUP_KEY = '{}:{alertname="HighErrorRate"}';
const GROUP_KEY_SHA256 = 'cbc7a356b874c7d0332c73753d5082204bea3c18a5cb2a9a50e75f6687ffb86b';

function ev(type: RunEvent['type'], extra: Partial<RunEvent> = {}): RunEvent {
  return {
    type,
    jobId: 'job1',
    rule: 'checkout-breaker',
    action: 'breaker-reset',
    target: 'checkout',
    alert: alert({ alertname: 'HighErrorRate', instance: 'node-1' }, { annotations: { summary: 'Errors on checkout' } }),
    groupKey: GROUP_KEY,
    receiver: 'remediate',
    externalURL: 'http://am:9093',
    dryRun: false,
    attempt: 1,
    message: 'something',
    notify: {},
    at: '2026-11-22T07:40:00.000Z',
    ...extra,
  };
}

const policy = (p: Partial<PagerDutyPolicy> = {}): PagerDutyPolicy => ({ ...DEFAULT_POLICY, ...p });

describe('dedup keys', () => {
  test('group_key is sha256 hex of the groupKey, as Alertmanager sends it', () => {
    assert.equal(dedupKeyFor(policy(), ev('running')), GROUP_KEY_SHA256);
  });

  test('fingerprint: stable across startsAt spellings of one instant, different per firing and per alert', () => {
    const p = policy({ dedup: 'fingerprint' });
    const at = (startsAt: string, fingerprint = '0123456789abcdef') => dedupKeyFor(p, ev('running', { alert: alert({}, { startsAt, fingerprint }) }));
    const k = at('2026-11-22T07:39:57Z');
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.notEqual(k, GROUP_KEY_SHA256);
    assert.equal(at('2026-11-22T07:39:57.000000000Z'), k);
    assert.equal(at('2026-11-22T08:39:57+01:00'), k);
    assert.notEqual(at('2026-11-22T07:39:58Z'), k, 'another firing of the same alert');
    assert.notEqual(at('2026-11-22T07:39:57Z', 'fedcba9876543210'), k, 'another alert');
  });

  test('a page uses its own key when the policy acknowledged the incident, the base key otherwise', () => {
    const withAck = pageDedupKey(policy(), ev('failed'));
    assert.match(withAck, /^[0-9a-f]{64}$/);
    assert.notEqual(withAck, GROUP_KEY_SHA256);
    assert.equal(pageDedupKey(policy(), ev('failed')), withAck, 'stable');
    assert.equal(pageDedupKey(policy({ acknowledge: false }), ev('failed')), GROUP_KEY_SHA256);
    assert.equal(pageDedupKey(policy(), ev('notified', { action: 'notify' })), GROUP_KEY_SHA256, 'notify-only rules never acknowledge');
  });
});

describe('plans', () => {
  const kind = (e: RunEvent, p: Partial<PagerDutyPolicy> = {}, canNote = false) => {
    const plan = planFor(e, policy(p), canNote);
    return plan.kind === 'event' ? `event:${plan.action}` : plan.kind;
  };

  test('policyOf: false is off, absent means the defaults', () => {
    assert.equal(policyOf({ notify: { pagerduty: false } }), undefined);
    assert.deepEqual(policyOf({ notify: {} }), DEFAULT_POLICY);
    assert.equal(policyOf({ notify: { pagerduty: { ...DEFAULT_POLICY, resolve: 'never' } } })?.resolve, 'never');
  });

  test('running acknowledges on the first attempt only, and never for notify-only rules or dry runs', () => {
    assert.equal(kind(ev('running')), 'event:acknowledge');
    assert.equal(kind(ev('running', { attempt: 2 })), 'none');
    assert.equal(kind(ev('running', { attempt: 2 }), {}, true), 'note');
    assert.equal(kind(ev('running'), { acknowledge: false }), 'none');
    assert.equal(kind(ev('running', { action: 'notify' })), 'none');
    assert.equal(kind(ev('running', { dryRun: true })), 'none');
  });

  test('succeeded resolves only with resolve: immediately; skipped-as-healthy counts as fixed, cooldown does not', () => {
    assert.equal(kind(ev('succeeded'), { resolve: 'immediately' }), 'event:resolve');
    assert.equal(kind(ev('succeeded'), { resolve: 'on_alert_resolved' }), 'none');
    assert.equal(kind(ev('succeeded'), { resolve: 'never' }), 'none');
    assert.equal(kind(ev('skipped'), { resolve: 'immediately' }), 'event:resolve');
    assert.equal(kind(ev('skipped', { reason: 'cooldown' }), { resolve: 'immediately' }), 'none');
    assert.equal(kind(ev('alert_resolved'), { resolve: 'on_alert_resolved' }), 'resolve_if_fixed');
    assert.equal(kind(ev('alert_resolved'), { resolve: 'immediately' }), 'none');
  });

  test('failed and notified page unless escalate: false; dry_run and queued send nothing; steps are notes with a token', () => {
    assert.equal(kind(ev('failed')), 'page');
    assert.equal(kind(ev('failed'), { escalate: false }), 'none');
    assert.equal(kind(ev('notified', { action: 'notify' })), 'page');
    assert.equal(kind(ev('failed', { dryRun: true })), 'none');
    assert.equal(kind(ev('dry_run'), {}, true), 'none');
    assert.equal(kind(ev('queued'), {}, true), 'none');
    assert.equal(kind(ev('step')), 'none');
    assert.equal(kind(ev('step'), {}, true), 'note');
    assert.equal(kind(ev('retrying'), {}, true), 'note');
  });
});

describe('page events', () => {
  test('failed: critical, summary with rule, target and reason, details and links', () => {
    const e = ev('failed', {
      message: 'Failed after 3 attempts: breaker still open',
      reason: 'verification_failed',
      attempt: 3,
      details: { state: 'open' },
      alert: alert(
        { alertname: 'HighErrorRate', instance: 'node-1' },
        { generatorURL: 'http://prom:9090/graph?g0.expr=up', annotations: { summary: 'Errors on checkout', runbook_url: 'https://runbooks/checkout' } },
      ),
    });
    const body = pageEvent(e, policy(), { run: { attempts: 3, error_reason: 'verification_failed', error_message: 'breaker still open', summary: null }, linkBase: 'https://remediator.example/' });
    assert.equal(body.event_action, 'trigger');
    assert.equal(body.dedup_key, pageDedupKey(policy(), e));
    assert.equal(body.payload?.severity, 'critical');
    assert.equal(body.payload?.source, 'checkout');
    assert.equal(body.payload?.summary, 'Auto-remediation failed: checkout-breaker on checkout: Failed after 3 attempts: breaker still open [verification_failed]');
    const d = body.payload!.custom_details!;
    assert.equal(d.rule, 'checkout-breaker');
    assert.equal(d.action, 'breaker-reset');
    assert.equal(d.target, 'checkout');
    assert.equal(d.attempts, 3);
    assert.equal(d.error_reason, 'verification_failed');
    assert.equal(d.error_message, 'breaker still open');
    assert.equal(d.acknowledged_incident_dedup_key, GROUP_KEY_SHA256);
    assert.deepEqual((d.alert as any).labels, { alertname: 'HighErrorRate', instance: 'node-1' });
    assert.equal((d.alert as any).summary, 'Errors on checkout');
    assert.deepEqual(d.details, { state: 'open' });
    assert.deepEqual(body.links, [
      { href: 'http://prom:9090/graph?g0.expr=up', text: 'Alert source (Prometheus)' },
      { href: 'https://runbooks/checkout', text: 'Runbook' },
      { href: 'https://remediator.example/api/runs/job1', text: 'Remediation run (remediator)' },
    ]);
    assert.equal(body.client_url, 'https://remediator.example/api/runs/job1');
    assert.equal(JSON.stringify(body).includes('routing_key'), false, 'the builder never holds the routing key');
  });

  test('notified: says no automatic remediation exists and gives the instructions', () => {
    const e = ev('notified', { action: 'notify', target: undefined, message: 'No automatic fix', details: { instructions: 'Check the voice provider status page.' } });
    const body = pageEvent(e, policy());
    assert.equal(body.dedup_key, GROUP_KEY_SHA256);
    assert.equal(body.payload?.source, 'node-1', 'no target: the alert instance');
    assert.equal(body.payload?.summary, 'No automatic remediation for HighErrorRate on node-1: Check the voice provider status page.');
    assert.equal(body.payload?.custom_details?.instructions, 'Check the voice provider status page.');
  });

  test('the summary is cut to 1024 characters', () => {
    const body = pageEvent(ev('failed', { message: 'x'.repeat(5000) }), policy());
    const s = body.payload!.summary;
    assert.equal(Array.from(s).length, 1024);
    assert.ok(s.endsWith('…'));
    assert.ok(s.startsWith('Auto-remediation failed: checkout-breaker on checkout: xxx'));
    assert.equal(truncate('short', 1024), 'short');
    assert.equal(truncate('😀😀😀', 2), '😀…', 'never splits a surrogate pair');
  });

  test('huge details are cut, links keep only http(s) URLs', () => {
    const body = pageEvent(ev('failed', { details: { blob: 'y'.repeat(100_000) } }), policy());
    assert.equal(typeof body.payload?.custom_details?.details, 'string');
    assert.ok(JSON.stringify(body).length < 30_000);
    const links = linksFor(
      ev('failed', { alert: alert({}, { generatorURL: '', annotations: { runbook_url: 'javascript:alert(1)' } }) }),
      'not a url',
    );
    assert.deepEqual(links, []);
  });
});

test('notes name the rule, target, attempt and message', () => {
  assert.equal(noteContent(ev('step', { attempt: 2, message: 'Reset sent' })), '[remediator] checkout-breaker on checkout (attempt 2): Reset sent');
  assert.equal(noteContent(ev('retrying', { message: 'Attempt 1 of 3 failed' })), '[remediator] checkout-breaker on checkout (attempt 1): retrying: Attempt 1 of 3 failed');
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
