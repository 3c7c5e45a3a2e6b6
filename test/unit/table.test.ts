import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules } from '../../src/rules/load.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { decide } from '../../src/rules/table.js';
import { jobIdFor } from '../../src/core/run.js';
import { alert } from '../helpers/context.js';

const table = compileRules(
  [
    {
      file: 'r.yml',
      text: `
targets:
  image-gen: { kind: http-breaker, status: { url: 'http://127.0.0.1:1/s' }, reset: { url: 'http://127.0.0.1:1/r' } }
  billing: { kind: http-breaker, status: { url: 'http://127.0.0.1:2/s' }, reset: { url: 'http://127.0.0.1:2/r' } }
rules:
  - name: reset-by-label
    match: ['alertname="CircuitBreakerOpen"', 'severity=~"critical|page"']
    action: breaker-reset
    target: "{{ labels.service }}"
    params: { verify_timeout: 30s }
  - name: page-on-resolve
    match: ['alertname="CircuitBreakerOpen"']
    when: resolved
    action: notify
`,
    },
  ],
  buildRegistry(),
);
const ctx = { groupKey: 'g', receiver: 'r', externalURL: 'http://am', receivedAt: '2026-11-23T00:00:00Z', dryRun: false };

test('a matching firing alert plans one job with resolved target and params', () => {
  const a = alert({ alertname: 'CircuitBreakerOpen', severity: 'critical', service: 'image-gen' });
  const { verdicts, decisions } = decide(table, a, ctx);
  assert.deepEqual(verdicts.map((v) => v.matched), [true, true]);
  assert.equal(decisions.length, 2);
  const [job, notApplicable] = decisions;
  assert.equal(job!.kind, 'enqueue');
  assert.equal(job!.job!.target, 'image-gen');
  assert.deepEqual(job!.job!.params, { verify_timeout: '30s' });
  assert.equal(job!.jobId, jobIdFor(a.fingerprint, a.startsAt, 'reset-by-label'));
  assert.equal(notApplicable!.kind, 'not_applicable');
  assert.match(notApplicable!.reason!, /acts on resolved alerts, this one is firing/);
});

test('a label can only pick a declared target, never add one', () => {
  const { decisions } = decide(table, alert({ alertname: 'CircuitBreakerOpen', severity: 'page', service: 'http://evil.example' }), ctx);
  assert.equal(decisions[0]!.kind, 'refused');
  assert.match(decisions[0]!.reason!, /target "http:\/\/evil.example" is not declared/);
  // It still becomes a job, one that fails at once (so the refusal is audited and escalated).
  assert.deepEqual(decisions[0]!.job!.refusal, { reason: 'refused_target', message: 'target "http://evil.example" is not declared' });
  assert.deepEqual(decisions[0]!.job!.params, {});
});

test('a missing label makes the decision invalid, with the reason', () => {
  const { decisions } = decide(table, alert({ alertname: 'CircuitBreakerOpen', severity: 'page' }), ctx);
  assert.equal(decisions[0]!.kind, 'invalid');
  assert.match(decisions[0]!.reason!, /alert has no label service/);
});

test('a rule that does not match says which matcher failed', () => {
  const { verdicts, decisions } = decide(table, alert({ alertname: 'CircuitBreakerOpen', severity: 'warning', service: 'billing' }), ctx);
  assert.equal(verdicts[0]!.matched, false);
  assert.equal(verdicts[0]!.reason, 'severity=~"critical|page" failed: severity is "warning"');
  assert.equal(decisions[0]!.kind, 'not_applicable');
  const none = decide(table, alert({ alertname: 'Other' }), ctx);
  assert.deepEqual(none.decisions.map((d) => d.kind), ['no_match']);
  assert.equal(none.verdicts[0]!.reason, 'alertname="CircuitBreakerOpen" failed: alertname is "Other"');
});

test('job ids: one per firing per rule, stable across timestamp spellings, BullMQ-safe', () => {
  const a = jobIdFor('2cad25c23e8d4f87', '2026-11-22T07:39:57Z', 'r');
  assert.equal(a, jobIdFor('2cad25c23e8d4f87', '2026-11-22T07:39:57.000000000Z', 'r'));
  assert.equal(a, jobIdFor('2cad25c23e8d4f87', '2026-11-22T08:39:57+01:00', 'r'));
  assert.notEqual(a, jobIdFor('2cad25c23e8d4f87', '2026-11-22T07:40:57Z', 'r'));
  assert.notEqual(a, jobIdFor('2cad25c23e8d4f87', '2026-11-22T07:39:57Z', 'r2'));
  assert.notEqual(a, jobIdFor('c4447145283e6e30', '2026-11-22T07:39:57Z', 'r'));
  assert.match(a, /^[0-9a-f]{40}$/);
  assert.ok(!/^\d+$/.test(a));
});

test('global dry run marks every job dry-run', () => {
  const { decisions } = decide(table, alert({ alertname: 'CircuitBreakerOpen', severity: 'page', service: 'billing' }), { ...ctx, dryRun: true });
  assert.equal(decisions[0]!.job!.dryRun, true);
});
