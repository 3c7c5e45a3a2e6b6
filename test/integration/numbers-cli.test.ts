import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { testSchema } from '../helpers/pg.js';
import { numbersCommand } from '../../src/cli/numbers.js';

let db: pg.Pool;
let schema: string;
let drop: () => Promise<void>;

before(async () => {
  ({ pool: db, schema, drop } = await testSchema('numcli'));
});
after(async () => {
  await drop();
});

/** Runs `numbers ...` and returns the exit code and the lines printed to stdout and to stderr. */
async function run(argv: string[], now?: Date): Promise<{ code: number; lines: string[]; errors: string[]; text: string }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const code = await numbersCommand(argv, { pool: db, schema, out: (l) => lines.push(l), err: (l) => errors.push(l), now: now ? () => now : undefined });
  return { code, lines, errors, text: [...lines, ...errors].join('\n') };
}

async function state(providerId: string): Promise<{ pool: string; number: string; state: string } | undefined> {
  return (await db.query(`SELECT pool, number, state FROM "${schema}".sender_numbers WHERE provider_id = $1`, [providerId])).rows[0];
}

describe('remediator numbers', () => {
  test('add stores spare by default, active on request', async () => {
    const a = await run(['add', 'advisors', '1001', '+919800000001', '--state', 'active']);
    assert.equal(a.code, 0, a.text);
    assert.match(a.text, /added 1001 \(\+919800000001\) to pool advisors as active/);
    assert.equal((await run(['add', 'advisors', '1002', '+919800000002'])).code, 0);
    assert.equal((await run(['add', 'advisors', '1003', '+919800000003', '--state=spare'])).code, 0);
    assert.deepEqual(await state('1001'), { pool: 'advisors', number: '+919800000001', state: 'active' });
    assert.deepEqual(await state('1002'), { pool: 'advisors', number: '+919800000002', state: 'spare' });
    assert.equal((await state('1003'))!.state, 'spare');
  });

  test('bad input exits 2 with a message and changes nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['add', 'advisors', '2001', '919800000009'], /bad number .*E\.164/],
      [['add', 'advisors', '2001', '+0198000000'], /bad number/],
      [['add', 'advisors', '2001', '+919800000009', '--state', 'cooling'], /--state must be spare or active/],
      [['add', 'advisors', '2001'], /missing number/],
      [['add', 'bad pool!', '2001', '+919800000009'], /bad pool name/],
      [['add', 'advisors', '1001', '+919800000009'], /provider id 1001 already exists: \+919800000001 in pool advisors/],
      [['add', 'advisors', '2001', '+919800000001'], /number \+919800000001 already exists as 1001 in pool advisors/],
      [['add', 'advisors', '2001', '+919800000009', 'extra'], /unexpected argument "extra"/],
      [['disable', 'no-such-id'], /no number with provider id no-such-id/],
      [['enable'], /missing provider id/],
      [['frobnicate'], /unknown numbers command "frobnicate"/],
    ];
    for (const [argv, msg] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, `${argv.join(' ')} -> ${r.text}`);
      // Errors and the usage go to stderr; stdout stays empty for scripts.
      assert.match(r.errors[0]!, /^error: /);
      assert.deepEqual(r.lines, []);
      assert.match(r.text, msg);
      assert.match(r.text, /usage: remediator numbers add/);
    }
    assert.equal(await state('2001'), undefined);
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.errors.join('\n'), /usage: remediator numbers add/);
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.lines.join('\n'), /usage: remediator numbers add/);
  });

  test('list prints a table with the effective state', async () => {
    const now = new Date('2026-11-22T08:00:00Z');
    assert.equal((await run(['add', 'billing', '3001', '+919811000001', '--state', 'active'])).code, 0);
    assert.equal((await run(['add', 'billing', '3002', '+919811000002'])).code, 0);
    assert.equal((await run(['add', 'billing', '3003', '+919811000003'])).code, 0);
    await db.query(`UPDATE "${schema}".sender_numbers SET state = 'cooling', cooling_until = $2 WHERE provider_id = $1`, ['3002', new Date(now.getTime() + 3_600_000)]);
    await db.query(`UPDATE "${schema}".sender_numbers SET state = 'cooling', cooling_until = $2 WHERE provider_id = $1`, ['3003', new Date(now.getTime() - 1000)]);

    const r = await run(['list', 'billing'], now);
    assert.equal(r.code, 0);
    assert.match(r.lines[0]!, /^POOL\s+PROVIDER ID\s+NUMBER\s+STATE\s+COOLING UNTIL$/);
    assert.equal(r.lines.length, 4, r.text);
    const line = (id: string) => r.lines.find((l) => l.includes(` ${id} `))!.split(/\s{2,}/);
    assert.deepEqual(line('3001'), ['billing', '3001', '+919811000001', 'active', '-']);
    assert.deepEqual(line('3002'), ['billing', '3002', '+919811000002', 'cooling', '2026-11-22T09:00:00.000Z']);
    assert.deepEqual(line('3003'), ['billing', '3003', '+919811000003', 'spare (cooldown over)', '2026-11-22T07:59:59.000Z']);
    // Listing is read-only: the stored state is untouched.
    assert.equal((await state('3003'))!.state, 'cooling');

    const all = await run(['list']);
    assert.ok(all.lines.some((l) => l.startsWith('advisors ')) && all.lines.some((l) => l.startsWith('billing ')));
    assert.deepEqual((await run(['list', 'empty-pool'])).lines, ['no numbers in pool empty-pool']);
  });

  test('disable and enable', async () => {
    assert.equal((await run(['add', 'ops', '4001', '+919822000001', '--state', 'active'])).code, 0);
    const d = await run(['disable', '4001']);
    assert.equal(d.code, 0, d.text);
    assert.match(d.text, /disabled 4001 \(\+919822000001\) in pool ops \(was active\)/);
    assert.match(d.text, /warning: pool ops has no active number left/);
    assert.equal((await state('4001'))!.state, 'disabled');
    const row = (await db.query(`SELECT last_active_at FROM "${schema}".sender_numbers WHERE provider_id = '4001'`)).rows[0];
    assert.ok(row.last_active_at instanceof Date, 'disabling an active number records when it was last active');
    assert.match((await run(['disable', '4001'])).text, /already disabled/);

    const e = await run(['enable', '4001']);
    assert.equal(e.code, 0);
    assert.match(e.text, /enabled 4001 .* now spare/);
    assert.equal((await state('4001'))!.state, 'spare');
    assert.match((await run(['enable', '4001'])).text, /already spare/);

    assert.equal((await run(['add', 'ops', '4002', '+919822000002', '--state', 'active'])).code, 0);
    const refused = await run(['enable', '4002']);
    assert.equal(refused.code, 2);
    assert.match(refused.text, /4002 is active, not disabled/);
    assert.equal((await state('4002'))!.state, 'active');
  });
});
