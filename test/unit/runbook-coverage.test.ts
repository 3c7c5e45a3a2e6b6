import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { loadRules } from '../../src/rules/load.js';
import { decide } from '../../src/rules/table.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { policyOf } from '../../src/notifiers/pagerduty/events.js';
import { firingRunbookAlerts, PROMETHEUS_DIR, RULES_DIR, RUNBOOK_ALERT_TESTS, RUNBOOK_TOLD, runbookAlertNames } from '../helpers/runbook-alerts.js';

const run = promisify(execFile);
const ctx = { groupKey: '{}:{alertname="x"}', receiver: 'remediate', externalURL: 'http://alertmanager:9093', receivedAt: new Date().toISOString(), dryRun: false };

function promtool(): string | undefined {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return 'promtool';
  } catch {
    return undefined;
  }
}

const tool = promtool();
test('promtool: the runbook alerts load, and fire at the runbooks\' thresholds and not below', { skip: tool ? false : 'promtool not installed (Debian: apt-get install prometheus): runbook alerts not checked' }, async () => {
  const check = await run(tool!, ['check', 'rules', 'runbook-alerts.yml'], { cwd: PROMETHEUS_DIR });
  assert.match(check.stdout, new RegExp(`SUCCESS: ${runbookAlertNames().length} rules found`));
  const results = await Promise.all(RUNBOOK_ALERT_TESTS.map((f) => run(tool!, ['test', 'rules', f], { cwd: PROMETHEUS_DIR })));
  for (const r of results) assert.match(r.stdout, /SUCCESS/);
});

test('every runbook alert fires once in the promtool tests and is listed with who is told', () => {
  const names = runbookAlertNames();
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  const firing = firingRunbookAlerts().map((a) => a.alertname);
  assert.deepEqual([...firing].sort(), [...names].sort(), 'one firing case per alert');
  assert.deepEqual(Object.keys(RUNBOOK_TOLD).sort(), [...names].sort());
});

test('each runbook alert, with the labels Prometheus gives it, enqueues exactly its rule; every shipped rule answers one', async () => {
  const table = await loadRules(RULES_DIR, buildRegistry());
  const answered = new Set<string>();
  for (const a of firingRunbookAlerts()) {
    const alert = { fingerprint: '0000000000000001', status: 'firing' as const, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', labels: a.labels, annotations: a.annotations, generatorURL: '' };
    const { decisions } = decide(table, alert, ctx);
    const told = RUNBOOK_TOLD[a.alertname]!;
    assert.deepEqual(decisions.map((d) => [d.kind, d.rule]), [['enqueue', told.rule]], `${a.alertname}: ${JSON.stringify(decisions)}`);
    assert.equal(decisions[0]!.job!.action, told.action, a.alertname);
    answered.add(told.rule);
  }
  assert.deepEqual(table.rules.map((r) => r.spec.name).filter((n) => !answered.has(n)), [], 'no shipped rule waits for an alert nobody fires');
});

test('every shipped rule links its runbook section, names its Slack channel, and pages with the runbook\'s severity and routing key', async () => {
  const table = await loadRules(RULES_DIR, buildRegistry());
  const alerts = new Map(firingRunbookAlerts().map((a) => [a.alertname, a]));
  for (const [alertname, told] of Object.entries(RUNBOOK_TOLD)) {
    const spec = table.rules.find((r) => r.spec.name === told.rule)?.spec;
    assert.ok(spec, `rule ${told.rule}`);
    assert.equal(spec.runbook_url, told.runbook, told.rule);
    assert.ok(spec.impact, `${told.rule} says what the alert means for users`);
    assert.equal(spec.notify.slack === false ? false : spec.notify.slack?.channel, told.channel, `${told.rule}: without SLACK_CHANNEL someone is still told`);
    const pd = policyOf(spec.notify)!;
    assert.equal(pd.severity, told.severity, told.rule);
    assert.equal(pd.routing_key_env ?? 'PAGERDUTY_ROUTING_KEY', told.routingKeyEnv, told.rule);
    assert.equal(pd.escalate, true, `${told.rule} pages when a person must act`);
    // Prometheus and PagerDuty rank the alert alike.
    assert.equal(alerts.get(alertname)!.labels.severity, told.severity, `${alertname} severity label`);
    if (spec.action === 'notify') assert.ok((spec.params as { instructions?: string }).instructions, `${told.rule} gives the first moves`);
  }
});
