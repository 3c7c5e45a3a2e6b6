import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';
import { toWebhooks } from '../../src/reconcile/convert.js';
import { webhookSchema } from '../../src/core/alert.js';

test('ALERTMANAGER_URL: a comma-separated list of http(s) URLs; a bad one is named without its value', () => {
  const c = loadConfig({ ALERTMANAGER_URL: 'http://am-0:9093, https://u:pw@am-1:9093/' });
  assert.deepEqual(c.ALERTMANAGER_URL, ['http://am-0:9093', 'https://u:pw@am-1:9093/']);
  assert.equal(c.RECONCILE_INTERVAL, 300_000);
  assert.equal(c.ALERTMANAGER_RECEIVER, 'remediate');
  assert.equal(loadConfig({}).ALERTMANAGER_URL, undefined);
  assert.throws(() => loadConfig({ ALERTMANAGER_URL: 'am-0:9093,http://u:secretpw@x' }), (e: Error) => e instanceof ConfigError && /ALERTMANAGER_URL: must be http\(s\) URLs/.test(e.message) && !e.message.includes('secretpw'));
  assert.throws(() => loadConfig({ RECONCILE_INTERVAL: '5 minutes' }), /RECONCILE_INTERVAL: must be a duration of at least 1s/);
  assert.equal(loadConfig({ RECONCILE_INTERVAL: '30s' }).RECONCILE_INTERVAL, 30_000);
});

test('API v2 alerts become valid v4 webhook payloads, one per alertname, fields passed through', () => {
  const api = (name: string, fp: string) => ({
    labels: { alertname: name, job: 'x' }, annotations: { summary: 's' }, startsAt: '2026-11-22T07:40:50.927Z', endsAt: '2026-11-22T07:45:50.927Z',
    generatorURL: 'http://prom/graph', fingerprint: fp, status: { state: 'active' as const }, receivers: [{ name: 'remediate' }], updatedAt: '2026-11-22T07:40:51.000Z',
  });
  const hooks = toWebhooks([api('A', 'aa01'), api('B', 'bb01'), api('A', 'aa02')], 'remediate', 'http://am:9093');
  assert.equal(hooks.length, 2);
  const a = webhookSchema.parse(hooks[0]);
  assert.equal(a.groupKey, 'reconciled:{alertname="A"}');
  assert.equal(a.receiver, 'remediate');
  assert.deepEqual(a.alerts.map((x) => x.fingerprint), ['aa01', 'aa02']);
  assert.deepEqual(
    { status: a.alerts[0]!.status, startsAt: a.alerts[0]!.startsAt, endsAt: a.alerts[0]!.endsAt, labels: a.alerts[0]!.labels, generatorURL: a.alerts[0]!.generatorURL },
    { status: 'firing', startsAt: '2026-11-22T07:40:50.927Z', endsAt: '2026-11-22T07:45:50.927Z', labels: { alertname: 'A', job: 'x' }, generatorURL: 'http://prom/graph' },
  );
});
