import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { deadline } from '../../src/core/deadline.js';
import { breakerReset } from '../../src/remediations/breaker-reset.js';
import { TransientError } from '../../src/core/errors.js';
import { buildRegistry, remediations } from '../../src/remediations/registry.js';
import { defineRemediation } from '../../src/remediations/types.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { makeContext } from '../helpers/context.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

/**
 * A rule's `timeout` ends the run, and frees its worker slot, when the target never answers and
 * while garbage is collected (on Node 20 an AbortSignal.any of AbortSignal.timeout loses its timer
 * in a GC and runs hung for good), and even when a remediation ignores its abort signal.
 * The service runs in this process, so the gc() calls here collect its signals too.
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A remediation that ignores its signal: it ends only when the test lets it. */
const stalled = { started: 0 };
const gate = { done: Promise.resolve(), open: () => {} };
const resetGate = () => {
  gate.done = new Promise<void>((r) => (gate.open = r));
};
resetGate();
const stall = defineRemediation<Record<string, never>, Record<string, never>>({
  name: 'stall',
  description: 'Test only: waits for the test, whatever its signal says.',
  targetKind: 'stall',
  paramsSchema: z.object({}).strict(),
  targetSchema: z.object({}).strict(),
  permissions: [],
  exampleRules: '',
  async run() {
    stalled.started++;
    await gate.done;
    return { outcome: 'succeeded', summary: 'stall released' };
  },
});

const SLOTS = 4;
const HUNG = 10;
let seq = 0;
const fingerprint = () => (0xe000000000000000n + BigInt(++seq)).toString(16);

describe('rule timeout: hung targets and remediations that ignore their signal', () => {
  let hung: FakeBreaker;
  let healthy: FakeBreaker;
  let svc: TestService;
  let redis: Redis;
  let collector: NodeJS.Timeout | undefined;
  const s = () => `"${svc.config.DATABASE_SCHEMA}"`;
  const runOf = async (fp: string) => (await svc.pool.query(`SELECT * FROM ${s()}.runs WHERE fingerprint = $1`, [fp])).rows[0];
  const isFinal = (run: { state: string } | undefined) => run && !['queued', 'running', 'retrying'].includes(run.state);
  const fire = async (alertname: string, labels: Record<string, string> = {}) => {
    const fp = fingerprint();
    const res = await postWebhook(svc.url, firingWebhook(alertname, fp, { labels, startsAt: new Date(Date.now() - 60_000).toISOString() }));
    assert.equal(res.status, 200, await res.text());
    return fp;
  };
  /** Collects garbage in this process (the service's too) every 20 ms while `fn` runs. */
  const underGc = async <T>(fn: () => Promise<T>): Promise<T> => {
    collector = setInterval(gc, 20);
    try {
      return await fn();
    } finally {
      clearInterval(collector);
    }
  };

  before(async () => {
    hung = await new FakeBreaker().start();
    hung.hang = true;
    healthy = await new FakeBreaker().start();
    // A request timeout far beyond the rule's: only the rule's timeout can end these runs in time.
    const hungTargets = Array.from({ length: HUNG }, (_, i) => hung.targetYaml(`hung-${i}`).replace('request_timeout: 2s', 'request_timeout: 60s')).join('');
    const stallTargets = Array.from({ length: SLOTS + 1 }, (_, i) => `\n  stall-${i}: { kind: stall }`).join('');
    svc = await startTestService({
      registry: buildRegistry([...remediations, stall]),
      env: { BREAKER_TOKEN: hung.token, WORKER_CONCURRENCY: String(SLOTS) },
      rules: {
        'rules.yml': `
targets:${hungTargets}${healthy.targetYaml('healthy')}${stallTargets}
rules:
  - name: hung-reset
    match: ['alertname="Hung"']
    action: breaker-reset
    target: "{{ labels.service }}"
    timeout: 500ms
    attempts: 2
    backoff: 50ms
  - name: healthy-reset
    match: ['alertname="Healthy"']
    action: breaker-reset
    target: healthy
    params: { poll_interval: 20ms }
  - name: stall
    match: ['alertname="Stall"']
    action: stall
    target: "{{ labels.service }}"
    timeout: 300ms
    attempts: 2
    backoff: 50ms
`,
      },
    });
    redis = new Redis(svc.config.REDIS_URL);
  });
  after(async () => {
    clearInterval(collector);
    gate.open();
    redis?.disconnect();
    await svc?.close();
    await hung?.stop();
    await healthy?.stop();
  });

  test(`${HUNG} alerts on targets that never answer all end with reason timeout, naming the rule timeout; then a normal alert succeeds`, async (t) => {
    const started = Date.now();
    const fps = await underGc(async () => {
      const fps = await Promise.all(Array.from({ length: HUNG }, (_, i) => fire('Hung', { service: `hung-${i}` })));
      await eventually(async () => (await Promise.all(fps.map(runOf))).every(isFinal), `all ${HUNG} hung runs end`, 30_000, 100);
      return fps;
    });
    t.diagnostic(`${HUNG} runs with a 500ms rule timeout, 2 attempts each, ${SLOTS} slots, gc every 20ms: all ended after ${Date.now() - started} ms`);
    assert.ok(hung.hung >= 2 * HUNG, `every attempt reached the target and hung there (${hung.hung} requests)`);
    for (const fp of fps) {
      const run = await runOf(fp);
      assert.equal(run.state, 'failed', JSON.stringify(run));
      assert.equal(run.error_reason, 'timeout');
      assert.equal(run.attempts, 2);
      assert.match(run.summary, /^Failed after 2 attempts: GET http:\/\/127\.0\.0\.1:\d+\/api\/admin\/circuit-breaker-status: rule timeout of 500ms reached$/);
      assert.doesNotMatch(run.summary, /request timeout|60000|60s/);
      const events = (await svc.pool.query(`SELECT state, message FROM ${s()}.run_events WHERE job_id = $1 ORDER BY id`, [run.job_id])).rows;
      const retry = events.find((e) => e.state === 'retrying');
      assert.ok(retry, JSON.stringify(events));
      assert.match(retry.message, /rule timeout of 500ms reached/);
    }

    healthy.state = 'open';
    const fp = await fire('Healthy');
    const ok = await eventually(async () => {
      const run = await runOf(fp);
      return isFinal(run) && run;
    }, 'the normal alert runs', 10_000);
    assert.equal(ok.state, 'succeeded', JSON.stringify(ok));
    assert.equal(healthy.state, 'closed');
  });

  test('remediations that ignore their signal: failed at the rule timeout, slots freed, the retry waits until the abandoned attempt ends', async () => {
    resetGate();
    const before = stalled.started;
    // One more than there are worker slots: without the race the last one would never start.
    const fps = await underGc(async () => {
      const fps = await Promise.all(Array.from({ length: SLOTS + 1 }, (_, i) => fire('Stall', { service: `stall-${i}` })));
      await eventually(async () => (await Promise.all(fps.map(runOf))).every((r) => r?.state === 'retrying'), 'every stalled attempt is failed at its deadline', 15_000, 100);
      return fps;
    });
    assert.equal(stalled.started - before, SLOTS + 1, 'all of them started, so slots were freed');
    const jobs: string[] = [];
    for (const fp of fps) {
      const run = await runOf(fp);
      jobs.push(run.job_id);
      assert.equal(run.error_reason, 'timeout');
      assert.equal(run.summary, 'Attempt 1 failed: rule timeout of 300ms reached; the remediation did not stop and was left running');
      assert.deepEqual(run.details, { deadline: 'rule timeout', ms: 300 });
    }
    // Still running in the background: each target stays locked, under a name the job's own retry does not match.
    const lockOf = (i: number) => redis.get(`${svc.config.QUEUE_PREFIX}:lock:stall:stall-${i}`);
    for (let i = 0; i < SLOTS + 1; i++) {
      const job = (await runOf(fps[i]!)).job_id;
      assert.equal(await lockOf(i), `${job}:abandoned:1`);
    }

    healthy.state = 'open';
    const fp = await fire('Healthy');
    const ok = await eventually(async () => {
      const run = await runOf(fp);
      return isFinal(run) && run;
    }, 'a normal alert runs while the stalled ones are still going', 10_000);
    assert.equal(ok.state, 'succeeded', JSON.stringify(ok));
    assert.equal(stalled.started - before, SLOTS + 1, 'no retry started beside its abandoned attempt (the retries are due since 50ms)');

    // The abandoned attempts end: the locks go, the retries run (and now succeed).
    gate.open();
    await eventually(async () => (await Promise.all(fps.map(runOf))).every((r) => r?.state === 'succeeded' && r.attempts === 2), 'the retries run once the abandoned attempts end', 15_000, 100);
    assert.equal(stalled.started - before, 2 * (SLOTS + 1));
    for (let i = 0; i < SLOTS + 1; i++) assert.equal(await lockOf(i), null);
  });

  test('a request timeout shorter than the rule timeout names itself, not the rule timeout', async () => {
    const run = deadline('rule timeout', 60_000);
    try {
      const target = { status: { url: `${hung.url}/api/admin/circuit-breaker-status` }, reset: { url: `${hung.url}/api/admin/reset-circuit-breaker` }, request_timeout: '200ms' };
      const ctx = makeContext(breakerReset, { target, signal: run.signal });
      const started = Date.now();
      await assert.rejects(breakerReset.run(ctx), (err: unknown) => {
        assert.ok(err instanceof TransientError);
        assert.equal(err.reason, 'timeout');
        assert.equal(err.message, `GET ${hung.url}/api/admin/circuit-breaker-status: request timeout of 200ms reached`);
        return true;
      });
      assert.ok(Date.now() - started < 5_000);
      assert.equal(run.signal.aborted, false, 'the run itself goes on');
    } finally {
      run.dispose();
    }
  });
});
