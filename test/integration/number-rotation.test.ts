import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { DATABASE_URL, testSchema } from '../helpers/pg.js';
import { alert, makeContext } from '../helpers/context.js';
import { numberRotation, releaseCooledNumbers, seedNumberPools } from '../../src/remediations/number-rotation.js';
import { PermanentError, TransientError } from '../../src/core/errors.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { compileRules } from '../../src/rules/load.js';

const H = 3_600_000;
let db: pg.Pool;
let schema: string;
let drop: () => Promise<void>;
let seq = 0;

before(async () => {
  ({ pool: db, schema, drop } = await testSchema('numrot'));
});
after(async () => {
  await drop();
});

/** A fresh pool name and provider-id prefix per test (provider ids and numbers are globally unique). */
function fresh(): { pool: string; id: (n: string) => string } {
  const k = ++seq;
  return { pool: `pool-${k}`, id: (n) => `${k}${n}` };
}

interface Row { pool: string; provider_id: string; number: string; state: string; cooling_until: Date | null }

async function add(pool: string, providerId: string, state: string, extra: { last_active_at?: Date; cooling_until?: Date; number?: string } = {}): Promise<string> {
  const number = extra.number ?? `+91${String(Date.now()).slice(-6)}${String(++seq).padStart(4, '0')}`;
  await db.query(
    `INSERT INTO "${schema}".sender_numbers (pool, provider_id, number, state, last_active_at, cooling_until) VALUES ($1, $2, $3, $4, $5, $6)`,
    [pool, providerId, number, state, extra.last_active_at ?? null, extra.cooling_until ?? null],
  );
  return number;
}

async function rows(pool: string): Promise<Record<string, Row>> {
  const res = await db.query<Row>(`SELECT pool, provider_id, number, state, cooling_until FROM "${schema}".sender_numbers WHERE pool = $1 ORDER BY id`, [pool]);
  return Object.fromEntries(res.rows.map((r) => [r.provider_id, r]));
}

async function rotations(pool: string) {
  return (await db.query(`SELECT * FROM "${schema}".number_rotations WHERE pool = $1 ORDER BY id`, [pool])).rows;
}

function ctxFor(
  pool: string,
  opts: { id?: string; runId?: string; attempt?: number; now?: () => Date; hook?: unknown; dryRun?: boolean; pgPool?: pg.Pool; cooldown?: string } = {},
) {
  return makeContext(numberRotation, {
    params: { ...(opts.id ? { phone_number_id: opts.id } : {}), ...(opts.cooldown ? { cooldown: opts.cooldown } : {}) },
    target: { pool, ...(opts.hook ? { hook: opts.hook } : {}) },
    targetName: pool,
    alert: alert({ alertname: 'WhatsAppNumberRateLimited', ...(opts.id ? { phone_number_id: opts.id } : {}) }),
    runId: opts.runId ?? `run-${++seq}`,
    attempt: opts.attempt ?? 1,
    dryRun: opts.dryRun ?? false,
    deps: { pool: opts.pgPool ?? db, schema, now: opts.now ?? (() => new Date()), env: { DELIVERY_TOKEN: 'tok-123' } },
  });
}

const isPermanent = (reason: string, msg: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PermanentError, `expected PermanentError, got ${String(err)}`);
  assert.equal(err.reason, reason);
  assert.match(err.message, msg);
  return true;
};

/** A fake sending application: records requests; answers the queued statuses first, then 200. */
async function fakeHook(): Promise<{ url: string; requests: { method: string; headers: IncomingHttpHeaders; body: any }[]; fail: number[]; close: () => Promise<void> }> {
  const requests: { method: string; headers: IncomingHttpHeaders; body: any }[] = [];
  const fail: number[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      requests.push({ method: req.method!, headers: req.headers, body: text ? JSON.parse(text) : undefined });
      const status = fail.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status === 200 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/api/sender-numbers`, requests, fail, close: () => new Promise((r) => server.close(() => r())) };
}

describe('number-rotation', () => {
  test('retires the named number for the cooldown and promotes the longest-unused spare', async () => {
    const { pool, id } = fresh();
    const now = new Date('2026-11-22T08:00:00Z');
    await add(pool, id('a'), 'active');
    await add(pool, id('b'), 'spare', { last_active_at: new Date('2026-11-20T00:00:00Z') });
    await add(pool, id('d'), 'spare', { last_active_at: new Date('2026-11-01T00:00:00Z') });
    await add(pool, id('c'), 'spare'); // never used: first
    const ctx = ctxFor(pool, { id: id('a'), now: () => now, runId: 'run-first' });
    const res = await numberRotation.run(ctx);

    assert.equal(res.outcome, 'succeeded');
    assert.match(res.summary, new RegExp(`retired ${id('a')} .*promoted ${id('c')}`));
    const r = await rows(pool);
    assert.equal(r[id('a')]!.state, 'cooling');
    assert.equal(r[id('a')]!.cooling_until!.getTime(), now.getTime() + 48 * H);
    assert.equal(r[id('c')]!.state, 'active');
    assert.equal(r[id('b')]!.state, 'spare');
    assert.equal(r[id('d')]!.state, 'spare');
    const rot = await rotations(pool);
    assert.equal(rot.length, 1);
    assert.equal(rot[0].run_id, 'run-first');
    assert.equal(rot[0].retired_provider_id, id('a'));
    assert.equal(rot[0].promoted_provider_id, id('c'));
    assert.ok(ctx.steps.some((s) => s.message.startsWith(`Retired ${id('a')}`) && s.message.includes(`promoted ${id('c')}`)));
    assert.ok(ctx.steps.some((s) => s.message.startsWith('Verified')));

    // Next rotation: of the spares left, the one unused for longest (d, 1 Nov) before b (20 Nov).
    const res2 = await numberRotation.run(ctxFor(pool, { id: id('c'), now: () => now, cooldown: '72h' }));
    assert.equal(res2.outcome, 'succeeded');
    const r2 = await rows(pool);
    assert.equal(r2[id('d')]!.state, 'active');
    assert.equal(r2[id('c')]!.state, 'cooling');
    assert.equal(r2[id('c')]!.cooling_until!.getTime(), now.getTime() + 72 * H);
    assert.equal(r2[id('b')]!.state, 'spare');
  });

  test('two runs at once on separate connections rotate exactly once', async () => {
    const { pool, id } = fresh();
    await add(pool, id('a'), 'active');
    await add(pool, id('b'), 'spare');
    await add(pool, id('c'), 'spare');
    const p1 = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
    const p2 = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
    const holder = await db.connect();
    try {
      // Hold the pool's rows so both runs queue on the lock, then let them race.
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM "${schema}".sender_numbers WHERE pool = $1 FOR UPDATE`, [pool]);
      const both = Promise.all([
        numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-x', pgPool: p1 })),
        numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-y', pgPool: p2 })),
      ]);
      await waitFor(async () => {
        const res = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%"${schema}".sender_numbers%`],
        );
        return res.rows[0]!.n === 2;
      });
      await holder.query('COMMIT');
      const results = await both;
      const outcomes = results.map((r) => r.outcome).sort();
      assert.deepEqual(outcomes, ['skipped', 'succeeded']);
      const winner = results[0]!.outcome === 'succeeded' ? 'run-x' : 'run-y';
      const skipped = results.find((r) => r.outcome === 'skipped')!;
      assert.match(skipped.summary, new RegExp(`already rotated.*run ${winner}`));
    } finally {
      holder.release();
      await Promise.all([p1.end(), p2.end()]);
    }
    const rot = await rotations(pool);
    assert.equal(rot.length, 1);
    const r = await rows(pool);
    assert.equal(r[id('a')]!.state, 'cooling');
    assert.deepEqual([r[id('b')]!.state, r[id('c')]!.state], ['active', 'spare']);
  });

  test('a number already rotated is a no-op that names the run that rotated it', async () => {
    const { pool, id } = fresh();
    await add(pool, id('a'), 'active');
    await add(pool, id('b'), 'spare');
    await add(pool, id('c'), 'spare');
    await numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-earlier' }));
    const before = await rows(pool);
    const res = await numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-later' }));
    assert.equal(res.outcome, 'skipped');
    assert.match(res.summary, /already rotated: cooling until .*rotated by run run-earlier/);
    assert.deepEqual(await rows(pool), before);
    assert.equal((await rotations(pool)).length, 1);
  });

  test('a number of another pool is refused, an unknown number is not found', async () => {
    const a = fresh();
    const b = fresh();
    await add(a.pool, a.id('a'), 'active');
    await add(a.pool, a.id('s'), 'spare');
    await add(b.pool, b.id('a'), 'active');
    await add(b.pool, b.id('s'), 'spare');
    await assert.rejects(numberRotation.run(ctxFor(a.pool, { id: b.id('a') })), isPermanent('refused_target', new RegExp(`belongs to pool ${b.pool}, not ${a.pool}`)));
    await assert.rejects(numberRotation.run(ctxFor(a.pool, { id: 'nope-404' })), isPermanent('not_found', /no number with provider id nope-404/));
    assert.equal((await rows(b.pool))[b.id('a')]!.state, 'active');
    assert.equal((await rows(a.pool))[a.id('a')]!.state, 'active');
    assert.equal((await rotations(a.pool)).length + (await rotations(b.pool)).length, 0);
  });

  test('no spare left: fails permanently and leaves the number active', async () => {
    const { pool, id } = fresh();
    await add(pool, id('a'), 'active');
    await add(pool, id('x'), 'disabled');
    await add(pool, id('c'), 'cooling', { cooling_until: new Date(Date.now() + 10 * H) });
    await assert.rejects(numberRotation.run(ctxFor(pool, { id: id('a') })), isPermanent('no_spare', new RegExp(`^no hot spare in pool ${pool}$`)));
    const r = await rows(pool);
    assert.equal(r[id('a')]!.state, 'active');
    assert.equal(r[id('a')]!.cooling_until, null);
    assert.equal((await rotations(pool)).length, 0);
    // The dry run says so too.
    await assert.rejects(numberRotation.run(ctxFor(pool, { id: id('a'), dryRun: true })), isPermanent('no_spare', /no hot spare/));
  });

  test('cooling numbers return to spare once their time has passed', async () => {
    const { pool, id } = fresh();
    let now = new Date('2026-11-22T08:00:00Z');
    await add(pool, id('a'), 'active');
    await add(pool, id('c'), 'cooling', { cooling_until: new Date(now.getTime() + H) });
    await assert.rejects(numberRotation.run(ctxFor(pool, { id: id('a'), now: () => now })), isPermanent('no_spare', /no hot spare/));
    assert.equal((await rows(pool))[id('c')]!.state, 'cooling');

    now = new Date(now.getTime() + 2 * H);
    const ctx = ctxFor(pool, { id: id('a'), now: () => now });
    const res = await numberRotation.run(ctx);
    assert.equal(res.outcome, 'succeeded');
    assert.ok(ctx.steps.some((s) => s.message.startsWith('Cooldown over, back to spare') && s.message.includes(id('c'))));
    const r = await rows(pool);
    assert.equal(r[id('c')]!.state, 'active');
    assert.equal(r[id('c')]!.cooling_until, null);
    assert.equal(r[id('a')]!.state, 'cooling');

    // The periodic release (main.ts) on its own: only numbers whose time has passed.
    const other = fresh();
    await add(other.pool, other.id('past'), 'cooling', { cooling_until: new Date(Date.now() - 1000) });
    await add(other.pool, other.id('future'), 'cooling', { cooling_until: new Date(Date.now() + H) });
    const released = await releaseCooledNumbers(db, schema, new Date());
    assert.ok(released.some((n) => n.provider_id === other.id('past')));
    assert.ok(!released.some((n) => n.provider_id === other.id('future')));
    const ro = await rows(other.pool);
    assert.equal(ro[other.id('past')]!.state, 'spare');
    assert.equal(ro[other.id('past')]!.cooling_until, null);
    assert.equal(ro[other.id('future')]!.state, 'cooling');
  });

  test('the hook receives the change with the bearer token', async () => {
    const { pool, id } = fresh();
    const hook = await fakeHook();
    try {
      const now = new Date('2026-11-22T08:00:00Z');
      const numA = await add(pool, id('a'), 'active');
      const numB = await add(pool, id('b'), 'spare');
      const ctx = ctxFor(pool, { id: id('a'), runId: 'run-hook', now: () => now, hook: { url: hook.url, token_env: 'DELIVERY_TOKEN' } });
      const res = await numberRotation.run(ctx);
      assert.equal(res.outcome, 'succeeded');
      assert.match(res.summary, /hook delivered/);
      assert.equal(hook.requests.length, 1);
      const req = hook.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.headers.authorization, 'Bearer tok-123');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(req.body, {
        pool,
        retired: { provider_id: id('a'), number: numA },
        promoted: { provider_id: id('b'), number: numB },
        cooling_until: new Date(now.getTime() + 48 * H).toISOString(),
        reason: 'WhatsAppNumberRateLimited (rule test-rule)',
        run_id: 'run-hook',
      });
      assert.ok(ctx.steps.some((s) => s.message.startsWith('Hook delivered: POST')));
      const rot = await rotations(pool);
      assert.ok(rot[0].hook_delivered_at instanceof Date);
      assert.equal(rot[0].hook_attempts, 1);
    } finally {
      await hook.close();
    }
  });

  test('a failing hook is retried by the same run without rotating twice', async () => {
    const { pool, id } = fresh();
    const hook = await fakeHook();
    try {
      await add(pool, id('a'), 'active');
      await add(pool, id('b'), 'spare');
      await add(pool, id('c'), 'spare');
      const target = { url: hook.url, token_env: 'DELIVERY_TOKEN' };
      hook.fail.push(500);
      await assert.rejects(numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-retry', attempt: 1, hook: target })), (err: unknown) => {
        assert.ok(err instanceof TransientError);
        assert.match(err.message, /committed\), but the hook failed: POST .* HTTP 500; a retry re-sends the hook/);
        return true;
      });
      let rot = await rotations(pool);
      assert.equal(rot.length, 1);
      assert.equal(rot[0].hook_delivered_at, null);
      assert.equal(rot[0].hook_attempts, 1);
      assert.match(rot[0].hook_last_error, /HTTP 500/);
      assert.equal((await rows(pool))[id('b')]!.state, 'active');

      const ctx2 = ctxFor(pool, { id: id('a'), runId: 'run-retry', attempt: 2, hook: target });
      const res = await numberRotation.run(ctx2);
      assert.equal(res.outcome, 'succeeded');
      assert.match(res.summary, /Rotation by this run \(attempt 1\) stands.*hook delivered/);
      assert.ok(ctx2.steps.some((s) => s.message.includes('not rotating again')));
      assert.equal(hook.requests.length, 2);
      assert.deepEqual(hook.requests[1]!.body, hook.requests[0]!.body);
      const r = await rows(pool);
      assert.deepEqual([r[id('a')]!.state, r[id('b')]!.state, r[id('c')]!.state], ['cooling', 'active', 'spare']);
      rot = await rotations(pool);
      assert.equal(rot.length, 1);
      assert.ok(rot[0].hook_delivered_at instanceof Date);
      assert.equal(rot[0].hook_attempts, 2);
      assert.equal(rot[0].hook_last_error, null);

      // A stalled re-run after all that: nothing more to do, no third request.
      const res3 = await numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-retry', attempt: 3, hook: target }));
      assert.equal(res3.outcome, 'succeeded');
      assert.match(res3.summary, /hook already delivered/);
      // Another run for the same number: a no-op, it does not call the hook either.
      const res4 = await numberRotation.run(ctxFor(pool, { id: id('a'), runId: 'run-other', hook: target }));
      assert.equal(res4.outcome, 'skipped');
      assert.equal(hook.requests.length, 2);
      assert.equal((await rotations(pool)).length, 1);
    } finally {
      await hook.close();
    }
  });

  test('dry run reports the plan, changes nothing and calls no hook', async () => {
    const { pool, id } = fresh();
    const hook = await fakeHook();
    try {
      await add(pool, id('a'), 'active');
      await add(pool, id('b'), 'spare', { last_active_at: new Date('2026-01-01T00:00:00Z') });
      await add(pool, id('c'), 'cooling', { cooling_until: new Date(Date.now() - 1000) }); // effectively spare, never used
      const before = await rows(pool);
      const res = await numberRotation.run(ctxFor(pool, { id: id('a'), dryRun: true, hook: { url: hook.url } }));
      assert.equal(res.outcome, 'dry_run');
      assert.match(res.summary, new RegExp(`would retire ${id('a')} .*and promote ${id('c')} .*then POST ${hook.url}`));
      assert.deepEqual(await rows(pool), before);
      assert.equal((await rotations(pool)).length, 0);
      assert.equal(hook.requests.length, 0);
    } finally {
      await hook.close();
    }
  });

  test('the view lists active numbers; several active numbers need the label', async () => {
    const { pool, id } = fresh();
    const n1 = await add(pool, id('a1'), 'active');
    const n2 = await add(pool, id('a2'), 'active');
    await add(pool, id('s'), 'spare');
    const view = async () =>
      (await db.query(`SELECT pool, provider_id, number FROM "${schema}".active_sender_numbers WHERE pool = $1 ORDER BY provider_id`, [pool])).rows;
    assert.deepEqual(await view(), [
      { pool, provider_id: id('a1'), number: n1 },
      { pool, provider_id: id('a2'), number: n2 },
    ]);
    await assert.rejects(numberRotation.run(ctxFor(pool, {})), isPermanent('bad_params', /2 active numbers .*phone_number_id/));
    await numberRotation.run(ctxFor(pool, { id: id('a2') }));
    assert.deepEqual((await view()).map((r) => r.provider_id), [id('a1'), id('s')]);

    // One active number and no label: that one is rotated.
    const single = fresh();
    await add(single.pool, single.id('a'), 'active');
    await add(single.pool, single.id('s'), 'spare');
    const res = await numberRotation.run(ctxFor(single.pool, {}));
    assert.equal(res.outcome, 'succeeded');
    assert.equal((await rows(single.pool))[single.id('a')]!.state, 'cooling');
  });

  test('seedNumberPools inserts missing numbers and never overwrites', async () => {
    const { pool, id } = fresh();
    const config = numberRotation.targetSchema!.parse({
      pool,
      seed: [
        { provider_id: id('a'), number: '+919811100001', state: 'active' },
        { provider_id: id('b'), number: '+919811100002' },
      ],
    });
    const targets = new Map([['t', { name: 't', kind: 'number-pool', config }]]);
    const first = await seedNumberPools(db, schema, targets);
    assert.deepEqual(first, { inserted: [`${pool}/${id('a')}`, `${pool}/${id('b')}`], conflicts: [] });
    await db.query(`UPDATE "${schema}".sender_numbers SET state = 'disabled' WHERE provider_id = $1`, [id('a')]);
    const second = await seedNumberPools(db, schema, targets);
    assert.deepEqual(second, { inserted: [], conflicts: [] });
    const r = await rows(pool);
    assert.equal(r[id('a')]!.state, 'disabled');
    assert.equal(r[id('b')]!.state, 'spare');
    const moved = new Map([['u', { name: 'u', kind: 'number-pool', config: { ...config, pool: `${pool}-other` } }]]);
    const third = await seedNumberPools(db, schema, moved);
    assert.equal(third.conflicts.length, 2);
    assert.match(third.conflicts[0]!, new RegExp(`already \\+919811100001 in pool ${pool}`));
  });
});

describe('number-rotation rules', () => {
  test('exampleRules and rules/project-one-senders.yml load through compileRules', async () => {
    const registry = buildRegistry();
    const ex = compileRules([{ file: 'example.yml', text: numberRotation.exampleRules }], registry);
    assert.equal(ex.rules[0]!.spec.action, 'number-rotation');
    assert.equal(ex.targets.get('advisor-senders')!.kind, 'number-pool');
    const shipped = compileRules([{ file: 'rules/project-one-senders.yml', text: await readFile('rules/project-one-senders.yml', 'utf8') }], registry);
    assert.deepEqual(shipped.rules.map((r) => [r.spec.name, r.spec.params.cooldown]), [
      ['whatsapp-number-rate-limited', '48h'],
      ['whatsapp-quality-rating-low', '72h'],
    ]);
    const quality = shipped.rules[1]!;
    assert.ok(quality.matchers.every((m) => m.matches({ alertname: 'WhatsAppQualityRatingLow', quality_rating: 'YELLOW' })));
    assert.ok(!quality.matchers.every((m) => m.matches({ alertname: 'WhatsAppQualityRatingLow', quality_rating: 'GREEN' })));
  });

  test('params and targets are strict', () => {
    const params = numberRotation.paramsSchema;
    assert.equal((params.parse({}) as { cooldown: number }).cooldown, 48 * H);
    assert.ok(!params.safeParse({ cooldown: '90d' }).success);
    assert.ok(!params.safeParse({ phone_number_id: "1'; DROP TABLE x" }).success);
    assert.ok(!params.safeParse({ cooldwn: '48h' }).success);
    const target = numberRotation.targetSchema!;
    assert.ok(!target.safeParse({ pool: 'p', seed: [{ provider_id: '1', number: '0919800000001' }] }).success);
    assert.ok(!target.safeParse({ pool: 'p', seed: [{ provider_id: '1', number: '+919800000001' }, { provider_id: '1', number: '+919800000002' }] }).success);
    assert.ok(!target.safeParse({ pool: 'p', hook: { url: 'http://x', body: {} } }).success);
    assert.ok(!target.safeParse({ pool: 'p', extra: 1 }).success);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}
