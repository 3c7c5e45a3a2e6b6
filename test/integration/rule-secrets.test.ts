import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeBreaker } from '../fakes/breaker.js';
import { createLogger } from '../../src/log.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

// Unique, so nobody's environment sets it.
const UNSET = `REMEDIATOR_TEST_UNSET_${process.pid}`;

describe('a rule secret that is not set', () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    delete process.env[UNSET];
    breaker = await new FakeBreaker().start();
    svc = await startTestService({
      rules: {
        'r.yml': `targets:${breaker.targetYaml('b', UNSET)}
rules:
  - name: reset-without-token
    match: ['alertname="NoToken"']
    action: breaker-reset
    target: b
`,
      },
      log: createLogger('info', {}, (l) => lines.push(JSON.parse(l))),
    });
  });
  after(async () => {
    await svc.close();
    await breaker.stop();
  });

  test('is warned about at start, naming the variable and where the rules use it', () => {
    const warn = lines.find((l) => l.level === 'warn' && l.variable === UNSET);
    assert.ok(warn, JSON.stringify(lines));
    assert.equal(warn.msg, `rule secret ${UNSET} is not set: runs that need it fail with reason missing_secret`);
    assert.deepEqual(warn.usedBy, [`target "b" status.token_env (${svc.rulesDir}/r.yml:4)`, `target "b" reset.token_env (${svc.rulesDir}/r.yml:5)`]);
  });

  test('fails the run with reason missing_secret, calls nothing, and logs the failure at error', async () => {
    const res = await postWebhook(svc.url, firingWebhook('NoToken', 'fe10000000000001'));
    assert.equal(res.status, 200);
    const run = await eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT * FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'fe10000000000001'`);
      return rows[0]?.state === 'failed' && rows[0];
    }, 'failed run');
    assert.equal(run.error_reason, 'missing_secret');
    assert.match(run.summary, new RegExp(`secret missing: environment variable ${UNSET} is not set in the worker's environment`));
    assert.equal(run.attempts, 1, 'permanent: not retried');
    assert.equal(breaker.calls.length, 0);
    const ended = await eventually(async () => lines.find((l) => l.msg === 'run ended' && l.rule === 'reset-without-token'), 'run ended log line');
    assert.equal(ended.level, 'error');
    assert.equal(ended.reason, 'missing_secret');
  });
});
