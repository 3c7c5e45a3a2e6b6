import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditStore, type IngestRecord } from '../../src/store/journal-store.js';
import type { JobSpec } from '../../src/core/run.js';
import { alert } from '../helpers/context.js';
import { testSchema } from '../helpers/pg.js';

/** The audit store on real PostgreSQL: what reaches it is what happened, in the order it happened. */
describe('audit store', () => {
  let db: Awaited<ReturnType<typeof testSchema>>;
  let audit: AuditStore;
  before(async () => {
    db = await testSchema('audit');
    audit = new AuditStore(db.pool, db.schema);
  });
  after(async () => db.drop());

  const spec = (jobId: string, labels: Record<string, string> = { alertname: 'X' }, fingerprint = 'f00d000000000001'): JobSpec => ({
    jobId, rule: 'r1', action: 'breaker-reset', target: 'svc', params: {}, dryRun: false,
    alert: alert(labels, { fingerprint }), groupKey: '{}:{alertname="X"}', receiver: 'remediate', externalURL: '', receivedAt: '2026-11-29T10:00:00.000Z',
  });
  const delivery = (jobs: JobSpec[], receivedAt = '2026-11-29T10:00:00.000Z'): IngestRecord => ({
    receivedAt, receiver: 'remediate', groupKey: '{}:{alertname="X"}', externalURL: '',
    alerts: jobs.map((j) => {
      const { alert: a, ...job } = j;
      return { alert: a, decisions: [{ decision: 'enqueued' as const, rule: j.rule, jobId: j.jobId, job }] };
    }),
  });

  test('the worker starting a run before its delivery is recorded keeps the queued event, first in the history', async () => {
    const job = spec('race-1');
    // The worker comes first: it creates the run row (queued 1 ms after receipt) and its running event.
    await audit.runStarted(job, 1, new Date('2026-11-29T10:00:00.001Z'), new Date());
    const queued = await audit.recordIngest(delivery([job]));
    assert.deepEqual(queued, ['race-1'], 'the ingest still announces the run as queued');
    assert.deepEqual((await audit.runEvents('race-1')).map((e) => e.state), ['queued', 'running']);
    // A second receiver's record of the same firing adds no second queued event.
    assert.deepEqual(await audit.recordIngest(delivery([job])), []);
    assert.deepEqual((await audit.runEvents('race-1')).map((e) => e.state), ['queued', 'running']);
  });

  test('NUL and lone surrogates that reach the store are stored as U+FFFD, with every alert of the delivery', async () => {
    const bad = spec('nul-1', { alertname: 'X', service: 'image-gen\u0000', ['k\ud800']: 'v\udfff' }, 'f00d000000000002');
    bad.alert.annotations = { summary: 'a\u0000b' };
    const good = spec('nul-2', { alertname: 'X', service: 'fine' }, 'f00d000000000003');
    const queued = await audit.recordIngest(delivery([bad, good]));
    assert.deepEqual(queued.sort(), ['nul-1', 'nul-2']);
    const rows = (await db.pool.query(`SELECT fingerprint, labels, annotations FROM "${db.schema}".alerts WHERE fingerprint IN ('f00d000000000002', 'f00d000000000003') ORDER BY fingerprint`)).rows;
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0].labels, { alertname: 'X', service: 'image-gen\ufffd', 'k\ufffd': 'v\ufffd' });
    assert.deepEqual(rows[0].annotations, { summary: 'a\ufffdb' });
    // Outcomes carry target answers: those are made storable too.
    await audit.runEnded(bad, { state: 'failed', attempt: 1, summary: 'target said \u0000', details: { body: 'x\ud800' }, error: 'e\u0000', at: new Date() });
    const run = await audit.getRun('nul-1');
    assert.equal(run?.summary, 'target said \ufffd');
    assert.deepEqual(run?.details, { body: 'x\ufffd' });
    assert.equal(run?.error_message, 'e\ufffd');
  });

  test('an alert PostgreSQL refuses is recorded without its labels; the others of the delivery are whole', async () => {
    // A timestamp out of PostgreSQL's range (the receiver refuses these; the store must not lose the delivery anyway).
    const refused = spec('range-1', { alertname: 'X', service: 'a' }, 'f00d000000000004');
    refused.alert.startsAt = '+275760-09-13T00:00:00.000Z';
    const ok = spec('range-2', { alertname: 'X', service: 'b' }, 'f00d000000000005');
    const queued = await audit.recordIngest(delivery([refused, ok]));
    assert.deepEqual(queued.sort(), ['range-1', 'range-2']);
    const rows = (await db.pool.query(`SELECT a.fingerprint, a.labels, d.reason FROM "${db.schema}".alerts a JOIN "${db.schema}".decisions d ON d.alert_id = a.id
      WHERE a.fingerprint IN ('f00d000000000004', 'f00d000000000005') ORDER BY a.fingerprint`)).rows;
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0].labels, { alertname: 'X' });
    assert.match(rows[0].reason, /labels, annotations and times not stored: .*range/);
    assert.deepEqual(rows[1].labels, { alertname: 'X', service: 'b' });
    assert.equal(rows[1].reason, null);
  });

  test('paging reaches every run, also when a delivery queued many at the same instant', async () => {
    const jobs = Array.from({ length: 60 }, (_, i) => spec(`page-${String(i).padStart(2, '0')}`, { alertname: 'P' }, `fa${String(i).padStart(14, '0')}`));
    await audit.recordIngest(delivery(jobs, '2026-11-29T11:00:00.000Z'));
    const seen: string[] = [];
    let cursor: ReturnType<typeof Object> | undefined;
    let pages = 0;
    do {
      const { decodeCursor } = await import('../../src/store/journal-store.js');
      const page = await audit.listRuns({ rule: 'r1', limit: 25, cursor: cursor ? decodeCursor(cursor as string) : undefined });
      seen.push(...page.runs.map((r) => r.job_id));
      cursor = page.next;
      pages++;
    } while (cursor && pages < 10);
    const pageRuns = seen.filter((id) => id.startsWith('page-'));
    assert.equal(pageRuns.length, 60, 'every run once');
    assert.equal(new Set(seen).size, seen.length, 'none twice');
  });
});
