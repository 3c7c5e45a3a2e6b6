import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeBreaker } from '../fakes/breaker.js';
import { fuzzRules, missingFromAudit, sendFuzz } from '../helpers/fuzz.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

/**
 * A few hundred mutated real payloads against the real service (bench/fuzz.ts sends thousands):
 * no 5xx while Redis is up, every alert of every accepted delivery in the audit, and every run
 * that was queued ends (none stays running or queued).
 */
let breaker: FakeBreaker;
let svc: TestService;

before(async () => {
  breaker = await new FakeBreaker().start();
  breaker.state = 'closed';
  svc = await startTestService({
    rules: {
      'fuzz.yml': fuzzRules(breaker, 'attempts: 2\nbackoff: 50ms'),
    },
    env: { BREAKER_TOKEN: breaker.token, WEBHOOK_MAX_BYTES: '262144' },
  });
});
after(async () => {
  await svc.close();
  await breaker.stop();
});

test('300 mutated payloads: no 5xx, every accepted alert audited, every run ends', async () => {
  const { report, expected } = await sendFuzz({ url: svc.url, token: 'test-webhook-token', count: 300, seed: 7, parallel: 8, runId: svc.config.QUEUE_PREFIX });
  assert.deepEqual(report.fiveHundreds, [], 'no 5xx while Redis is up');
  assert.equal(report.sent, 300);
  assert.ok(report.accepted > 100, `a good share accepted (${JSON.stringify(report.byStatus)})`);
  assert.ok((report.byStatus[400] ?? 0) > 30, `and a good share refused as bad input (${JSON.stringify(report.byStatus)})`);
  for (const s of Object.keys(report.byStatus)) assert.ok(['200', '400', '413', '415'].includes(s), `unexpected status ${s}`);

  const s = svc.config.DATABASE_SCHEMA;
  await eventually(async () => (await missingFromAudit(svc.pool, s, expected)).length === 0, 'every alert of every accepted delivery in the audit', 60_000, 200)
    .catch(async (err) => assert.fail(`${(err as Error).message}: ${JSON.stringify((await missingFromAudit(svc.pool, s, expected)).slice(0, 5))}`));
  const total = (await svc.pool.query(`SELECT count(*)::int AS n FROM "${s}".alerts`)).rows[0].n;
  assert.equal(total, report.acceptedAlerts, 'no alert recorded twice either');
  await eventually(async () => {
    const { rows } = await svc.pool.query(`SELECT count(*)::int AS n FROM "${s}".runs WHERE state IN ('queued', 'running', 'retrying')`);
    return rows[0].n === 0;
  }, 'every run ended', 60_000, 200).catch(async (err) => {
    // Say which runs did not end, and what they did.
    const { rows } = await svc.pool.query(`SELECT r.job_id, r.rule, r.state, r.target, (SELECT string_agg(e.state || ':' || left(e.message, 80), ' | ' ORDER BY e.id) FROM "${s}".run_events e WHERE e.job_id = r.job_id) AS story
      FROM "${s}".runs r WHERE r.state IN ('queued', 'running', 'retrying') LIMIT 5`);
    assert.fail(`${(err as Error).message}: ${JSON.stringify(rows)}`);
  });
  const runs = (await svc.pool.query(`SELECT count(*)::int AS n FROM "${s}".runs`)).rows[0].n;
  assert.ok(runs > 50, `runs were made (${runs})`);
  // Nothing the store holds has a NUL or a lone surrogate (PostgreSQL would have refused it anyway).
  const ffd = (await svc.pool.query(`SELECT count(*)::int AS n FROM "${s}".alerts WHERE labels::text LIKE '%' || chr(65533) || '%'`)).rows[0].n;
  assert.ok(ffd > 0, 'hostile label values were stored, replaced by U+FFFD');
});
