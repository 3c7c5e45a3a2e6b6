import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { buildRegistry, remediations } from '../../src/remediations/registry.js';
import { defineRemediation } from '../../src/remediations/types.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { postWebhook } from '../helpers/webhook.js';

/**
 * A rule without a target touches nothing: its runs must not queue behind one another on a lock
 * (a storm of notify runs went through one at a time, each other one delayed 2-3 s). A target-less
 * remediation that finishes only once 3 runs are in it at the same time proves they overlap.
 */
const inside = { now: 0, most: 0 };
let release = () => {};
const together = new Promise<void>((r) => (release = r));
const meet = defineRemediation<Record<string, never>, Record<string, never>>({
  name: 'meet',
  description: 'Test only: waits until three runs are inside at once (at most 10 s).',
  targetKind: null,
  paramsSchema: z.object({}).strict(),
  permissions: [],
  exampleRules: '',
  async run() {
    inside.now++;
    inside.most = Math.max(inside.most, inside.now);
    if (inside.now >= 3) release();
    const met = await Promise.race([together.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref())]);
    inside.now--;
    return { outcome: 'notified', summary: met ? 'met' : 'alone' };
  },
});

let svc: TestService;
before(async () => {
  svc = await startTestService({
    rules: { 'meet.yml': `rules:\n  - name: meet\n    match: ['alertname="Meet"']\n    action: meet\n` },
    registry: buildRegistry([...remediations, meet]),
    env: { WORKER_CONCURRENCY: '4' },
  });
});
after(async () => svc.close());

test('runs of a rule without a target run side by side', async () => {
  const body = {
    version: '4', groupKey: '{}:{alertname="Meet"}', truncatedAlerts: 0, status: 'firing', receiver: 'r', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '',
    alerts: [1, 2, 3].map((i) => ({ status: 'firing', labels: { alertname: 'Meet', i: String(i) }, annotations: {}, startsAt: new Date().toISOString(), fingerprint: `ee0${i}` })),
  };
  assert.equal((await postWebhook(svc.url, body)).status, 200);
  const rows = await eventually(async () => {
    const { rows } = await svc.pool.query(`SELECT summary FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE state = 'notified'`);
    return rows.length === 3 && rows;
  }, 'three runs ended', 30_000);
  assert.deepEqual(rows.map((r) => r.summary), ['met', 'met', 'met']);
  assert.equal(inside.most, 3);
});
