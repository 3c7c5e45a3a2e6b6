import type pg from 'pg';
import { ident } from '../store/migrate.js';
import { E164, effectiveState, findNumber, inTransaction, POOL_NAME, PROVIDER_ID, type SenderNumber } from '../store/numbers.js';

/**
 * `remediator numbers ...`: manage sender number pools by hand (add spares, take a banned number
 * out, put it back). Rotations themselves are done by the number-rotation remediation.
 */
export const numbersUsage = [
  'usage: remediator numbers add <pool> <provider_id> <+E164> [--state spare|active]',
  '       remediator numbers list [pool]',
  '       remediator numbers disable <provider_id>',
  '       remediator numbers enable <provider_id>     (disabled -> spare)',
];

export interface NumbersIo {
  pool: pg.Pool;
  schema: string;
  out: (line: string) => void;
  /** Errors and usage after a bad command go here (stderr), never to `out`. */
  err: (line: string) => void;
  /** Clock for "effective state" (a cooling number past its time shows as spare). */
  now?: () => Date;
}

/** Bad input: exit code 2 with this message. */
class UsageError extends Error {}

/** Runs one `numbers` subcommand; returns the exit code (0 ok, 2 bad input). */
export async function numbersCommand(argv: string[], io: NumbersIo): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'add':
        return await add(args, io);
      case 'list':
        return await list(args, io);
      case 'disable':
        return await disable(args, io);
      case 'enable':
        return await enable(args, io);
      case undefined:
        numbersUsage.forEach((l) => io.err(l));
        return 2;
      case 'help':
      case '--help':
      case '-h':
        numbersUsage.forEach((l) => io.out(l));
        return 0;
      default:
        throw new UsageError(`unknown numbers command ${JSON.stringify(cmd)}`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`error: ${err.message}`);
    numbersUsage.forEach((l) => io.err(l));
    return 2;
  }
}

function check(value: string | undefined, re: RegExp, what: string): string {
  if (value === undefined) throw new UsageError(`missing ${what}`);
  if (!re.test(value)) throw new UsageError(`bad ${what} ${JSON.stringify(value)}`);
  return value;
}

function noMore(args: string[]): void {
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
}

async function add(args: string[], io: NumbersIo): Promise<number> {
  const rest: string[] = [];
  let state = 'spare';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--state') state = args[++i] ?? '';
    else if (a.startsWith('--state=')) state = a.slice('--state='.length);
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  if (state !== 'spare' && state !== 'active') throw new UsageError(`--state must be spare or active, not ${JSON.stringify(state)}`);
  const [poolArg, idArg, numberArg, ...extra] = rest;
  const pool = check(poolArg, POOL_NAME, 'pool name (letters, digits, . _ -)');
  const providerId = check(idArg, PROVIDER_ID, 'provider id');
  const number = check(numberArg, E164, 'number (E.164, e.g. +919876543210)');
  noMore(extra);
  const table = `${ident(io.schema)}.sender_numbers`;
  const res = await io.pool.query(
    `INSERT INTO ${table} (pool, provider_id, number, state) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id`,
    [pool, providerId, number, state],
  );
  if (res.rowCount === 0) {
    const byId = await findNumber(io.pool, io.schema, providerId);
    if (byId) throw new UsageError(`provider id ${providerId} already exists: ${byId.number} in pool ${byId.pool} (${byId.state})`);
    const byNumber = (await io.pool.query<SenderNumber>(`SELECT * FROM ${table} WHERE number = $1`, [number])).rows[0];
    throw new UsageError(`number ${number} already exists${byNumber ? ` as ${byNumber.provider_id} in pool ${byNumber.pool}` : ''}`);
  }
  io.out(`added ${providerId} (${number}) to pool ${pool} as ${state}`);
  return 0;
}

async function list(args: string[], io: NumbersIo): Promise<number> {
  const [poolArg, ...extra] = args;
  if (poolArg !== undefined) check(poolArg, POOL_NAME, 'pool name');
  noMore(extra);
  const now = (io.now ?? (() => new Date()))();
  const rows = (
    await io.pool.query<SenderNumber>(
      `SELECT * FROM ${ident(io.schema)}.sender_numbers WHERE ($1::text IS NULL OR pool = $1) ORDER BY pool, state, id`,
      [poolArg ?? null],
    )
  ).rows;
  if (rows.length === 0) {
    io.out(poolArg ? `no numbers in pool ${poolArg}` : 'no numbers');
    return 0;
  }
  const table = [['POOL', 'PROVIDER ID', 'NUMBER', 'STATE', 'COOLING UNTIL']];
  for (const n of rows) {
    const eff = effectiveState(n, now);
    // A cooling number past its time is a spare for the next rotation, even before the release runs.
    const state = eff === n.state ? eff : `${eff} (cooldown over)`;
    table.push([n.pool, n.provider_id, n.number, state, n.state === 'cooling' && n.cooling_until ? n.cooling_until.toISOString() : '-']);
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) io.out(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  return 0;
}

async function disable(args: string[], io: NumbersIo): Promise<number> {
  const [idArg, ...extra] = args;
  const providerId = check(idArg, PROVIDER_ID, 'provider id');
  noMore(extra);
  const table = `${ident(io.schema)}.sender_numbers`;
  const result = await inTransaction(io.pool, async (db) => {
    const n = (await db.query<SenderNumber>(`SELECT * FROM ${table} WHERE provider_id = $1 FOR UPDATE`, [providerId])).rows[0];
    if (!n || n.state === 'disabled') return { n, activeLeft: -1 };
    await db.query(
      `UPDATE ${table} SET state = 'disabled', cooling_until = NULL,
         last_active_at = CASE WHEN state = 'active' THEN now() ELSE last_active_at END, updated_at = now()
       WHERE id = $1`,
      [n.id],
    );
    const left = await db.query<{ c: number }>(`SELECT count(*)::int AS c FROM ${table} WHERE pool = $1 AND state = 'active'`, [n.pool]);
    return { n, activeLeft: left.rows[0]!.c };
  });
  if (!result.n) throw new UsageError(`no number with provider id ${providerId}`);
  if (result.activeLeft < 0) {
    io.out(`${providerId} (${result.n.number}) is already disabled`);
    return 0;
  }
  io.out(`disabled ${providerId} (${result.n.number}) in pool ${result.n.pool} (was ${result.n.state})`);
  if (result.n.state === 'active') {
    io.out(
      result.activeLeft === 0
        ? `warning: pool ${result.n.pool} has no active number left: the sending application has nothing to send from`
        : `pool ${result.n.pool} has ${result.activeLeft} active number(s) left`,
    );
  }
  return 0;
}

async function enable(args: string[], io: NumbersIo): Promise<number> {
  const [idArg, ...extra] = args;
  const providerId = check(idArg, PROVIDER_ID, 'provider id');
  noMore(extra);
  const table = `${ident(io.schema)}.sender_numbers`;
  const res = await io.pool.query<SenderNumber>(
    `UPDATE ${table} SET state = 'spare', updated_at = now() WHERE provider_id = $1 AND state = 'disabled' RETURNING *`,
    [providerId],
  );
  const n = res.rows[0];
  if (n) {
    io.out(`enabled ${providerId} (${n.number}) in pool ${n.pool}: now spare`);
    return 0;
  }
  const cur = await findNumber(io.pool, io.schema, providerId);
  if (!cur) throw new UsageError(`no number with provider id ${providerId}`);
  if (cur.state === 'spare') {
    io.out(`${providerId} (${cur.number}) is already spare`);
    return 0;
  }
  const until = cur.state === 'cooling' && cur.cooling_until ? ` until ${cur.cooling_until.toISOString()}` : '';
  throw new UsageError(`${providerId} is ${cur.state}${until}, not disabled: enable only returns a disabled number to spare`);
}
