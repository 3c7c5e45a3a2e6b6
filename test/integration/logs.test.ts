import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

type Line = { level: string; msg: string; [k: string]: any };

/** The service's log: a line per webhook and per run state change, naming the run, rule and fingerprint. */
describe('service log lines', () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  const lines: Line[] = [];
  const of = (job: string) => lines.filter((l) => l.job === job);

  before(async () => {
    breaker = await new FakeBreaker().start();
    svc = await startTestService({
      rules: {
        'b.yml': `
targets:${breaker.targetYaml('checkout')}
rules:
  - name: checkout-breaker
    match: ['alertname="HighErrorRate"']
    action: breaker-reset
    target: checkout
    attempts: 1
    params: { poll_interval: 20ms, verify_timeout: 300ms }
`,
      },
      env: { BREAKER_TOKEN: breaker.token },
      log: createLogger('info', {}, (l) => lines.push(JSON.parse(l))),
    });
  });
  after(async () => {
    await svc?.close();
    await breaker?.stop();
  });

  const runOf = (fp: string, state: string) =>
    eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT job_id FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = $1 AND state = $2`, [fp, state]);
      return rows[0]?.job_id as string | undefined;
    }, `run ${state}`);

  test('one info line per webhook, naming its runs; the run logs queued, started and ended with its rule and fingerprint', async () => {
    breaker.state = 'open';
    const res = await postWebhook(svc.url, firingWebhook('HighErrorRate', '1060000000000001', { labels: { other: 'x' } }));
    assert.equal(res.status, 200);
    const job = await runOf('1060000000000001', 'succeeded');
    // The ingest stage decides the delivery and writes its one info line, naming its runs.
    const hook = await eventually(async () => lines.find((l) => l.msg === 'delivery decided' && l.runs?.some((r: any) => r.job === job)), 'delivery line');
    assert.equal(hook.level, 'info');
    assert.deepEqual(hook.runs, [{ job, rule: 'checkout-breaker', fingerprint: '1060000000000001', decision: 'enqueued' }]);
    assert.equal(hook.enqueued, 1);
    const states = await eventually(async () => {
      const l = of(job);
      return l.some((x) => x.msg === 'run ended') && l;
    }, 'run ended line');
    // The ingest worker writes "queued" beside the remediation worker: the two orders both happen.
    assert.deepEqual(states.map((l) => `${l.level} ${l.msg} ${l.state}`).sort(), ['info run ended succeeded', 'info run queued queued', 'info run started running']);
    for (const l of states) assert.deepEqual([l.rule, l.fingerprint], ['checkout-breaker', '1060000000000001']);
  });

  test('a failed run is an error line, not info', async () => {
    breaker.state = 'open';
    breaker.stuck = true;
    try {
      await postWebhook(svc.url, firingWebhook('HighErrorRate', '1060000000000002'));
      const job = await runOf('1060000000000002', 'failed');
      const ended = await eventually(async () => of(job).find((l) => l.msg === 'run ended'), 'run ended line');
      assert.equal(ended.level, 'error');
      assert.equal(ended.state, 'failed');
      assert.equal(ended.fingerprint, '1060000000000002');
    } finally {
      breaker.stuck = false;
    }
  });

  test('a refused webhook is a warn line', async () => {
    const bad = await fetch(`${svc.url}/webhooks/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: '{}' });
    assert.equal(bad.status, 401);
    const invalid = await postWebhook(svc.url, { version: '4' });
    assert.equal(invalid.status, 400);
    const refused = lines.filter((l) => l.msg.startsWith('webhook refused'));
    assert.deepEqual(refused.map((l) => `${l.level} ${l.msg}`), ['warn webhook refused: missing or wrong credentials', 'warn webhook refused: invalid payload']);
    assert.ok(!JSON.stringify(lines).includes('nope'), 'the presented token is not logged');
  });
});
