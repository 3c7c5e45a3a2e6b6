import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeBreaker } from '../fakes/breaker.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';
import { startRemediator, type Child } from '../helpers/process.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

/**
 * A worker process dies (SIGKILL) in the middle of a remediation. The job is not lost: once its
 * lock lapses another worker finds it stalled and runs it again, and the remediation, being
 * idempotent, finishes the fix. One run in the audit, with both attempts' starts recorded.
 */
let breaker: FakeBreaker;
let receiver: TestService;
let doomed: Child | undefined;
let rescuer: TestService | undefined;

const rules = (b: FakeBreaker) => ({
  'r.yml': `
targets:${b.targetYaml('svc')}
rules:
  - name: reset
    match: ['alertname="Open"']
    action: breaker-reset
    target: svc
    params: { poll_interval: 50ms, verify_timeout: 60s }
`,
});

before(async () => {
  breaker = await new FakeBreaker().start();
  receiver = await startTestService({ rules: rules(breaker), env: { BREAKER_TOKEN: breaker.token, REMEDIATOR_ROLE: 'receiver' } });
});
after(async () => {
  await doomed?.stop('SIGKILL');
  await rescuer?.close();
  await receiver.close();
  await breaker.stop();
});

test('a worker killed mid-remediation: the job runs again on another worker and the fix completes', async () => {
  const shared = {
    PORT: '0', HOST: '127.0.0.1', RULES_DIR: receiver.rulesDir, REDIS_URL: receiver.config.REDIS_URL, DATABASE_URL: receiver.config.DATABASE_URL,
    DATABASE_SCHEMA: receiver.config.DATABASE_SCHEMA, QUEUE_PREFIX: receiver.config.QUEUE_PREFIX, BREAKER_TOKEN: breaker.token, WORKER_LOCK_MS: '2000',
  };
  doomed = await startRemediator({ ...shared, REMEDIATOR_ROLE: 'worker' });
  breaker.state = 'open';
  breaker.stuck = true; // the first worker resets, then waits for a close that does not come
  const res = await postWebhook(receiver.url, firingWebhook('Open', 'dead000000000001'));
  assert.equal(res.status, 200);
  await eventually(async () => breaker.resets === 1, 'first worker reset the breaker');
  await doomed.stop('SIGKILL');

  breaker.stuck = false;
  breaker.state = 'open'; // still open when the job runs again (a pending close is cancelled)
  rescuer = await startTestService({ rules: rules(breaker), env: { ...shared, REMEDIATOR_ROLE: 'worker' }, keep: { schema: shared.DATABASE_SCHEMA, prefix: shared.QUEUE_PREFIX } });
  const s = `"${shared.DATABASE_SCHEMA}"`;
  const run = await eventually(async () => (await receiver.pool.query(`SELECT * FROM ${s}.runs`)).rows.find((r) => r.state === 'succeeded'), 'the run completes on the second worker', 30_000);
  assert.equal((await receiver.pool.query(`SELECT count(*)::int AS n FROM ${s}.runs`)).rows[0].n, 1);
  const starts = (await receiver.pool.query(`SELECT count(*)::int AS n FROM ${s}.run_events WHERE job_id = $1 AND state = 'running'`, [run.job_id])).rows[0].n;
  assert.equal(starts, 2, 'started once on each worker');
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.resets, 2, 'the second worker found the breaker still open and reset it again');
});

test('a worker killed after its reset worked: the re-run reports the earlier reset, not "no reset needed"', async () => {
  await rescuer?.close();
  rescuer = undefined;
  const shared = {
    PORT: '0', HOST: '127.0.0.1', RULES_DIR: receiver.rulesDir, REDIS_URL: receiver.config.REDIS_URL, DATABASE_URL: receiver.config.DATABASE_URL,
    DATABASE_SCHEMA: receiver.config.DATABASE_SCHEMA, QUEUE_PREFIX: receiver.config.QUEUE_PREFIX, BREAKER_TOKEN: breaker.token, WORKER_LOCK_MS: '2000',
  };
  doomed = await startRemediator({ ...shared, REMEDIATOR_ROLE: 'worker' });
  breaker.state = 'open';
  breaker.resets = 0;
  breaker.stuck = true;
  const res = await postWebhook(receiver.url, firingWebhook('Open', 'dead000000000002'));
  assert.equal(res.status, 200);
  await eventually(async () => breaker.resets === 1, 'first worker reset the breaker');
  await doomed.stop('SIGKILL');
  breaker.state = 'closed'; // the reset took effect after the worker died

  rescuer = await startTestService({ rules: rules(breaker), env: { ...shared, REMEDIATOR_ROLE: 'worker' }, keep: { schema: shared.DATABASE_SCHEMA, prefix: shared.QUEUE_PREFIX } });
  const s = `"${shared.DATABASE_SCHEMA}"`;
  const run = await eventually(
    async () => (await receiver.pool.query(`SELECT * FROM ${s}.runs WHERE fingerprint = 'dead000000000002'`)).rows.find((r) => r.state !== 'running' && r.state !== 'queued'),
    'the re-run ends',
    30_000,
  );
  assert.equal(breaker.resets, 1, 'not reset twice');
  assert.equal(run.state, 'succeeded');
  // The intent was durable before the POST went out; "Reset sent" may or may not have been recorded before the kill.
  assert.match(run.summary, /^An earlier attempt of this run (acted|may have acted \(it stopped after recording\)): (Sending reset|Reset sent): POST .*reset-circuit-breaker \(attempt 1\)\. Checked again now: Breaker on svc is already closed/);
  assert.deepEqual(run.details.earlier_actions.map((a: { attempt: number }) => a.attempt), [1]);
});
