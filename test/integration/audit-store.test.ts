import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobSpec, RecordedEvent } from '../../src/core/run.js';
import { silentLogger } from '../../src/log.js';
import { Journal } from '../../src/run/journal.js';
import { JournalStore, type IntakeDelivery } from '../../src/store/journal-store.js';
import { decodeCursor, RunReader } from '../../src/store/runs.js';
import { alert } from '../helpers/context.js';
import { testSchema } from '../helpers/pg.js';

/** The run journal on real PostgreSQL: what reaches it is what happened, in the order it happened, once. */
describe('run journal store', () => {
  let db: Awaited<ReturnType<typeof testSchema>>;
  let store: JournalStore;
  let runs: RunReader;
  let journal: Journal;
  const followed: RecordedEvent[] = [];
  let n = 0;
  before(async () => {
    db = await testSchema('journal');
    store = new JournalStore(db.pool, db.schema);
    runs = new RunReader(db.pool, db.schema);
    journal = new Journal(store, runs, { log: silentLogger, followers: [{ name: 'test', follow: async (e) => void followed.push(...e) }] });
  });
  after(async () => db.drop());

  const spec = (jobId: string, labels: Record<string, string> = { alertname: 'X' }, fingerprint = 'f00d000000000001'): JobSpec => ({
    jobId, rule: 'r1', action: 'breaker-reset', target: 'svc', params: {}, dryRun: false,
    alert: alert(labels, { fingerprint }), groupKey: '{}:{alertname="X"}', receiver: 'remediate', externalURL: '', receivedAt: '2026-11-29T10:00:00.000Z',
  });
  const firing = (jobs: JobSpec[], receivedAt = '2026-11-29T10:00:00.000Z', id = `1-${++n}`): IntakeDelivery => ({
    id, receivedAt, receiver: 'remediate', groupKey: '{}:{alertname="X"}', externalURL: '',
    alerts: jobs.map((j) => ({ alert: j.alert, decisions: [{ decision: 'enqueued' as const, rule: j.rule, jobId: j.jobId, job: j, incidentKey: 'inc-1' }] })),
  });
  const resolution = (job: JobSpec, receivedAt = '2026-11-29T10:00:01.000Z', id = `1-${++n}`): IntakeDelivery => ({
    id, receivedAt, receiver: 'remediate', groupKey: '{}:{alertname="X"}', externalURL: '',
    alerts: [{ alert: { ...job.alert, status: 'resolved' }, decisions: [{ decision: 'not_applicable', rule: job.rule, jobId: job.jobId, resolves: true }] }],
  });
  const states = async (jobId: string) => (await runs.runEvents(jobId)).map((e) => e.state);

  test('a firing and its resolution taken in together give one run that knows its alert resolved, in either order', async () => {
    for (const order of ['firing first', 'resolution first'] as const) {
      const job = spec(`together-${order.split(' ')[0]}`, { alertname: 'X' }, order === 'firing first' ? 'f00d0000000000a1' : 'f00d0000000000a2');
      const batch = order === 'firing first' ? [firing([job]), resolution(job)] : [resolution(job), firing([job])];
      const r = await journal.intake(batch);
      assert.deepEqual(r.jobs.map((j) => j.jobId), [job.jobId], `${order}: one job`);
      const run = await runs.getRun(job.jobId);
      assert.ok(run?.alert_resolved_at, `${order}: the run knows its alert resolved`);
      assert.deepEqual(await states(job.jobId), ['queued', 'alert_resolved'], order);
    }
  });

  test('a resolution taken in before its firing (another worker, another batch) is kept until the run exists', async () => {
    const job = spec('later-1', { alertname: 'X' }, 'f00d0000000000b1');
    await journal.intake([resolution(job)]);
    assert.equal(await runs.getRun(job.jobId), undefined, 'no run yet');
    await journal.intake([firing([job])]);
    assert.ok((await runs.getRun(job.jobId))?.alert_resolved_at, 'the run found its resolution');
    // Two intakes racing on the same firing and resolution: exactly one run, resolved, its events once.
    for (let i = 0; i < 10; i++) {
      const j = spec(`race-${i}`, { alertname: 'X' }, `f00d00000000c${String(i).padStart(3, '0')}`);
      await Promise.all([journal.intake([firing([j])]), journal.intake([resolution(j)]), journal.intake([firing([j])])]);
      assert.ok((await runs.getRun(j.jobId))?.alert_resolved_at, `race ${i}: resolved`);
      assert.deepEqual(await states(j.jobId), ['queued', 'alert_resolved'], `race ${i}`);
    }
  });

  test('a delivery read again adds no alert, decision, run or event twice; a second delivery of the same firing is a duplicate', async () => {
    const job = spec('again-1', { alertname: 'X' }, 'f00d0000000000d1');
    const d = firing([job]);
    assert.equal((await journal.intake([d])).jobs.length, 1);
    // The same stream entry again (its worker died before acknowledging it): its job is queued again, idempotently.
    const again = await journal.intake([structuredClone(d)]);
    assert.deepEqual(again.jobs.map((j) => j.jobId), [job.jobId]);
    assert.equal(again.events.length, 0);
    const alerts = (await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".alerts WHERE fingerprint = 'f00d0000000000d1'`)).rows[0].n;
    assert.equal(alerts, 1);
    // Another delivery of the same firing (an HA peer): a duplicate decision, no job.
    const peer = firing([job]);
    assert.equal((await journal.intake([peer])).jobs.length, 0);
    assert.equal(peer.alerts[0]!.decisions[0]!.decision, 'duplicate');
    assert.deepEqual(await states(job.jobId), ['queued']);
  });

  test('events of one run recorded together move its row as if written one by one', async () => {
    const job = spec('fold-1', { alertname: 'X' }, 'f00d0000000000e1');
    await journal.intake([firing([job])]);
    const ref = { jobId: job.jobId, rule: job.rule };
    await Promise.all([
      journal.record(ref, { type: 'running', attempt: 1, message: 'Attempt 1 started', at: '2026-11-29T10:00:02.000Z' }),
      journal.record(ref, { type: 'step', attempt: 1, message: 'Sending reset', acted: true, details: { acted: true }, at: '2026-11-29T10:00:02.100Z' }),
      journal.record(ref, { type: 'retrying', attempt: 1, message: 'Attempt 1 failed', reason: 'unavailable', error: 'boom', at: '2026-11-29T10:00:02.200Z' }),
      journal.record(ref, { type: 'running', attempt: 2, message: 'Attempt 2 started', at: '2026-11-29T10:00:03.000Z' }),
      journal.record(ref, { type: 'succeeded', attempt: 2, message: 'closed', at: '2026-11-29T10:00:04.000Z' }),
    ]);
    const run = (await runs.getRun(job.jobId))!;
    assert.equal(run.state, 'succeeded');
    assert.equal(run.attempts, 2);
    assert.equal(run.started_at?.toISOString(), '2026-11-29T10:00:02.000Z');
    assert.equal(run.finished_at?.toISOString(), '2026-11-29T10:00:04.000Z');
    assert.equal(run.duration_ms, 2000);
    assert.equal(run.summary, 'closed');
    assert.equal(run.error_reason, null);
    assert.equal(run.acted_at?.toISOString(), '2026-11-29T10:00:02.100Z');
    assert.deepEqual(await states(job.jobId), ['queued', 'running', 'step', 'retrying', 'running', 'succeeded']);
    assert.deepEqual(followed.filter((e) => e.jobId === job.jobId).map((e) => e.type), ['queued', 'running', 'step', 'retrying', 'running', 'succeeded'], 'followers get each event once, in order');
  });

  test('NUL and lone surrogates that reach the journal are stored as U+FFFD', async () => {
    const bad = spec('nul-1', { alertname: 'X', service: 'image-gen\u0000', ['k\ud800']: 'v\udfff' }, 'f00d000000000002');
    bad.alert.annotations = { summary: 'a\u0000b' };
    await journal.intake([firing([bad])]);
    const rows = (await db.pool.query(`SELECT labels, annotations FROM "${db.schema}".alerts WHERE fingerprint = 'f00d000000000002'`)).rows;
    assert.deepEqual(rows[0].labels, { alertname: 'X', service: 'image-gen\ufffd', 'k\ufffd': 'v\ufffd' });
    assert.deepEqual(rows[0].annotations, { summary: 'a\ufffdb' });
    // Outcomes carry target answers: those are made storable.
    await journal.record({ jobId: 'nul-1', rule: 'r1' }, { type: 'failed', attempt: 1, message: 'target said \u0000', details: { body: 'x\ud800' }, error: 'e\u0000' });
    const run = await runs.getRun('nul-1');
    assert.equal(run?.summary, 'target said \ufffd');
    assert.deepEqual(run?.details, { body: 'x\ufffd' });
    assert.equal(run?.error_message, 'e\ufffd');
  });

  test('an alert PostgreSQL refuses is recorded without its labels; the others of the delivery are whole', async () => {
    // A timestamp out of PostgreSQL's range (the receiver refuses these; the journal must not lose the delivery anyway).
    const refused = spec('range-1', { alertname: 'X', service: 'a' }, 'f00d000000000004');
    refused.alert.startsAt = '+275760-09-13T00:00:00.000Z';
    const ok = spec('range-2', { alertname: 'X', service: 'b' }, 'f00d000000000005');
    const r = await journal.intake([firing([refused, ok])]);
    assert.deepEqual(r.jobs.map((j) => j.jobId).sort(), ['range-1', 'range-2']);
    assert.equal(r.jobs.find((j) => j.jobId === 'range-1')?.alert.startsAt, '+275760-09-13T00:00:00.000Z', 'the queue gets the job as it was');
    const rows = (await db.pool.query(`SELECT a.fingerprint, a.labels, d.reason FROM "${db.schema}".alerts a JOIN "${db.schema}".decisions d ON d.alert_id = a.id
      WHERE a.fingerprint IN ('f00d000000000004', 'f00d000000000005') ORDER BY a.fingerprint`)).rows;
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0].labels, { alertname: 'X' });
    assert.match(rows[0].reason, /labels, annotations and times not stored: .*range/);
    assert.deepEqual(rows[1].labels, { alertname: 'X', service: 'b' });
    assert.equal(rows[1].reason, null);
  });

  test('a verdict is recorded once, whoever judges first', async () => {
    const job = spec('judge-1', { alertname: 'X' }, 'f00d0000000000f1');
    await journal.intake([firing([job])]);
    const ref = { jobId: job.jobId, rule: job.rule };
    const [a, b] = await Promise.all([journal.judge(ref, 'ineffective', 'Fix ineffective: x.'), journal.judge(ref, 'effective', 'Fix held: y.')]);
    assert.equal([a, b].filter(Boolean).length, 1);
    assert.equal((await states(job.jobId)).filter((s) => s === 'effective' || s === 'ineffective').length, 1);
  });

  test('paging reaches every run, also when a delivery queued many at the same instant', async () => {
    const jobs = Array.from({ length: 60 }, (_, i) => spec(`page-${String(i).padStart(2, '0')}`, { alertname: 'P' }, `fa${String(i).padStart(14, '0')}`));
    await journal.intake([firing(jobs, '2026-11-29T11:00:00.000Z')]);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await runs.listRuns({ rule: 'r1', limit: 25, cursor: cursor ? decodeCursor(cursor) : undefined });
      seen.push(...page.runs.map((r) => r.job_id));
      cursor = page.next;
      pages++;
    } while (cursor && pages < 10);
    const pageRuns = seen.filter((id) => id.startsWith('page-'));
    assert.equal(pageRuns.length, 60, 'every run once');
    assert.equal(new Set(seen).size, seen.length, 'none twice');
  });
});
