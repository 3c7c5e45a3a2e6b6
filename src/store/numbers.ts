import type pg from 'pg';
import { inTransaction } from './tx.js';
import { ident } from './migrate.js';
import { PermanentError, TransientError } from '../core/errors.js';

/**
 * Sender number pools (tables of migration 002) and the rotation transaction. Every function takes
 * the pool (or a client inside a transaction) and remediator's schema name: nothing is global.
 */

export const NUMBER_POOL_KIND = 'number-pool';
/** E.164: "+", then 7 to 15 digits, the first not 0. Same check as the SQL constraint. */
export const E164 = /^\+[1-9]\d{6,14}$/;
/** A provider id (WhatsApp phone_number_id is digits); the charset keeps alert labels harmless. */
export const PROVIDER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
/** Pool names follow target names. */
export const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** How long a rotation waits for the pool's row locks before giving up (transient, retried). */
const LOCK_TIMEOUT_MS = 30_000;

export type NumberState = 'active' | 'spare' | 'cooling' | 'disabled';

/** One row of sender_numbers. */
export interface SenderNumber {
  id: string;
  pool: string;
  provider_id: string;
  number: string;
  state: NumberState;
  cooling_until: Date | null;
  last_active_at: Date | null;
  last_rotated_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** One row of number_rotations. */
export interface Rotation {
  id: string;
  pool: string;
  retired_provider_id: string;
  retired_number: string;
  promoted_provider_id: string;
  promoted_number: string;
  cooling_until: Date;
  run_id: string;
  rule: string | null;
  attempt: number | null;
  reason: string | null;
  at: Date;
  hook_required: boolean;
  hook_delivered_at: Date | null;
  hook_attempts: number;
  hook_last_error: string | null;
}

/** A pg.Pool or a client (inside a transaction). */
export interface Queryable {
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const t = (schema: string, table: string) => `${ident(schema)}.${table}`;

/** A cooling number whose cooldown has passed is a spare, whether or not the release has run yet. */
export function effectiveState(n: Pick<SenderNumber, 'state' | 'cooling_until'>, now: Date): NumberState {
  return n.state === 'cooling' && n.cooling_until !== null && n.cooling_until <= now ? 'spare' : n.state;
}

/**
 * Returns cooling numbers whose cooldown has passed to `spare` (all pools, or one). Rows locked by
 * someone else (a rotation in progress) are skipped, not waited for: that rotation releases its
 * own pool's numbers, and the next periodic call gets the rest. So this never blocks nor deadlocks.
 */
export async function releaseCooledNumbers(db: Queryable, schema: string, now: Date, onlyPool?: string): Promise<SenderNumber[]> {
  const table = t(schema, 'sender_numbers');
  const res = await db.query<SenderNumber>(
    `UPDATE ${table} SET state = 'spare', cooling_until = NULL, updated_at = now()
     WHERE state = 'cooling' AND id IN (
       SELECT id FROM ${table}
       WHERE state = 'cooling' AND cooling_until <= $1 AND ($2::text IS NULL OR pool = $2)
       ORDER BY id FOR UPDATE SKIP LOCKED)
     RETURNING *`,
    [now, onlyPool ?? null],
  );
  return res.rows;
}

/** The spare unused for longest: never used first, then oldest last use, then oldest row. */
export function pickSpare(numbers: SenderNumber[], now: Date): SenderNumber | undefined {
  const lastUse = (n: SenderNumber) => (n.last_active_at ?? n.last_rotated_at)?.getTime() ?? -Infinity;
  return numbers
    .filter((n) => effectiveState(n, now) === 'spare')
    .sort((a, b) => lastUse(a) - lastUse(b) || Number(a.id) - Number(b.id))[0];
}

export interface RotationRequest {
  pool: string;
  /** The number to retire; absent: the pool's only active number. */
  providerId?: string;
  cooldownMs: number;
  runId: string;
  attempt: number;
  rule: string;
  reason: string;
  now: Date;
  /** The pool declares a hook, so the rotation is not finished until it is delivered. */
  hookRequired: boolean;
}

/** What to do on a pool as it is now. Refusals and "nothing left to promote" throw PermanentError. */
export type Plan =
  | { kind: 'rotate'; retired: SenderNumber; promoted: SenderNumber }
  | { kind: 'not_active'; number: SenderNumber; state: NumberState };

/** Decides the rotation on the pool's rows (read under lock, or not for a dry run). */
export function planRotation(numbers: SenderNumber[], req: Pick<RotationRequest, 'pool' | 'providerId' | 'now'>): Plan {
  let retired: SenderNumber | undefined;
  if (req.providerId !== undefined) {
    retired = numbers.find((n) => n.provider_id === req.providerId);
    if (!retired) throw new Error(`internal: ${req.providerId} not in the rows of pool ${req.pool}`);
    const state = effectiveState(retired, req.now);
    if (state !== 'active') return { kind: 'not_active', number: retired, state };
  } else {
    const active = numbers.filter((n) => n.state === 'active');
    if (active.length === 0) throw new PermanentError('not_found', `pool ${req.pool} has no active number to rotate`);
    if (active.length > 1) {
      throw new PermanentError(
        'bad_params',
        `pool ${req.pool} has ${active.length} active numbers (${active.map((n) => n.provider_id).join(', ')}): the rule must name the one to rotate, e.g. phone_number_id: "{{ labels.phone_number_id }}", and the alert must carry that label`,
      );
    }
    retired = active[0]!;
  }
  const promoted = pickSpare(numbers, req.now);
  // No spare: the number stays active. Sending on a degraded (or rate-limited) number beats
  // sending on none; the failure escalates so a human adds numbers or pauses sends.
  if (!promoted) throw new PermanentError('no_spare', `no hot spare in pool ${req.pool}`, { pool: req.pool, provider_id: retired.provider_id });
  return { kind: 'rotate', retired, promoted };
}

export type RotationOutcome =
  /** This call rotated (committed). */
  | { kind: 'rotated'; rotation: Rotation; released: SenderNumber[] }
  /** This run had already rotated (an earlier attempt committed): nothing rotated again. */
  | { kind: 'resumed'; rotation: Rotation; released: SenderNumber[] }
  /** The named number is not active (already rotated by another run, or spare/disabled). */
  | { kind: 'not_active'; number: SenderNumber; state: NumberState; lastRotation?: Rotation; released: SenderNumber[] };

/**
 * The rotation, in one transaction: lock the pool's rows (by id, so concurrent rotations queue
 * instead of deadlocking), release cooled numbers, then either find this run's own committed
 * rotation (a retry) or retire the named number to `cooling` and promote the longest-unused spare.
 */
export async function rotateNumber(pool: pg.Pool, schema: string, req: RotationRequest): Promise<RotationOutcome> {
  return inTransaction(pool, async (db) => {
    const numbers = t(schema, 'sender_numbers');
    // A session that holds the pool's rows and hangs (a stuck `psql`) must not hold the run forever.
    await db.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT_MS}ms'`);
    try {
      await lockPool(db, schema, req.pool);
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03') throw err;
      throw new TransientError('timeout', `pool ${req.pool} stayed locked by another session for ${LOCK_TIMEOUT_MS / 1000}s`);
    }
    const released = await releaseCooledNumbers(db, schema, req.now, req.pool);
    const own = await db.query<Rotation>(`SELECT * FROM ${t(schema, 'number_rotations')} WHERE run_id = $1`, [req.runId]);
    if (own.rows[0]) return { kind: 'resumed', rotation: own.rows[0], released };

    const rows = await readPool(db, schema, req.pool);
    if (req.providerId !== undefined) await checkBelongs(db, schema, rows, req.pool, req.providerId);
    const plan = planRotation(rows, req);
    if (plan.kind === 'not_active') {
      const lastRotation = await lastRotationOf(db, schema, plan.number.provider_id);
      return { ...plan, lastRotation, released };
    }
    const coolingUntil = new Date(req.now.getTime() + req.cooldownMs);
    await db.query(
      `UPDATE ${numbers} SET state = 'cooling', cooling_until = $2, last_rotated_at = $3, last_active_at = $3, updated_at = now() WHERE id = $1`,
      [plan.retired.id, coolingUntil, req.now],
    );
    await db.query(`UPDATE ${numbers} SET state = 'active', cooling_until = NULL, updated_at = now() WHERE id = $1`, [plan.promoted.id]);
    const ins = await db.query<Rotation>(
      `INSERT INTO ${t(schema, 'number_rotations')}
         (pool, retired_provider_id, retired_number, promoted_provider_id, promoted_number, cooling_until, run_id, rule, attempt, reason, at, hook_required)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *`,
      [req.pool, plan.retired.provider_id, plan.retired.number, plan.promoted.provider_id, plan.promoted.number, coolingUntil, req.runId, req.rule, req.attempt, req.reason, req.now, req.hookRequired],
    );
    return { kind: 'rotated', rotation: ins.rows[0]!, released };
  });
}

/** What a rotation would do now, read without locks and without changing anything (dry run). */
export async function previewRotation(
  db: Queryable,
  schema: string,
  req: Pick<RotationRequest, 'pool' | 'providerId' | 'now' | 'runId'>,
): Promise<{ kind: 'resumed'; rotation: Rotation } | (Plan & { lastRotation?: Rotation })> {
  const own = await db.query<Rotation>(`SELECT * FROM ${t(schema, 'number_rotations')} WHERE run_id = $1`, [req.runId]);
  if (own.rows[0]) return { kind: 'resumed', rotation: own.rows[0] };
  const rows = await readPool(db, schema, req.pool);
  if (req.providerId !== undefined) await checkBelongs(db, schema, rows, req.pool, req.providerId);
  const plan = planRotation(rows, req);
  if (plan.kind === 'rotate') return plan;
  return { ...plan, lastRotation: await lastRotationOf(db, schema, plan.number.provider_id) };
}

/** A label must not reach a number of another pool; an unknown number is as permanent. */
async function checkBelongs(db: Queryable, schema: string, rows: SenderNumber[], pool: string, providerId: string): Promise<void> {
  if (rows.some((n) => n.provider_id === providerId)) return;
  const other = await findNumber(db, schema, providerId);
  if (other) {
    throw new PermanentError('refused_target', `number ${providerId} belongs to pool ${other.pool}, not ${pool}: refused`, { pool, provider_id: providerId });
  }
  throw new PermanentError('not_found', `no number with provider id ${providerId} in pool ${pool} (add it with: remediator numbers add ${pool} ${providerId} +E164)`, { pool, provider_id: providerId });
}

async function lockPool(db: Queryable, schema: string, pool: string): Promise<void> {
  await db.query(`SELECT id FROM ${t(schema, 'sender_numbers')} WHERE pool = $1 ORDER BY id FOR UPDATE`, [pool]);
}

export async function readPool(db: Queryable, schema: string, pool: string): Promise<SenderNumber[]> {
  return (await db.query<SenderNumber>(`SELECT * FROM ${t(schema, 'sender_numbers')} WHERE pool = $1 ORDER BY id`, [pool])).rows;
}

export async function findNumber(db: Queryable, schema: string, providerId: string): Promise<SenderNumber | undefined> {
  return (await db.query<SenderNumber>(`SELECT * FROM ${t(schema, 'sender_numbers')} WHERE provider_id = $1`, [providerId])).rows[0];
}

async function lastRotationOf(db: Queryable, schema: string, providerId: string): Promise<Rotation | undefined> {
  const res = await db.query<Rotation>(
    `SELECT * FROM ${t(schema, 'number_rotations')} WHERE retired_provider_id = $1 ORDER BY at DESC, id DESC LIMIT 1`,
    [providerId],
  );
  return res.rows[0];
}

/** Records one hook attempt: delivered (at) or failed (error message, never a secret). */
export async function recordHookAttempt(db: Queryable, schema: string, rotationId: string, result: { deliveredAt: Date } | { error: string }): Promise<void> {
  await db.query(
    `UPDATE ${t(schema, 'number_rotations')}
     SET hook_attempts = hook_attempts + 1, hook_delivered_at = COALESCE(hook_delivered_at, $2), hook_last_error = $3
     WHERE id = $1`,
    [rotationId, 'deliveredAt' in result ? result.deliveredAt : null, 'error' in result ? result.error : null],
  );
}

export { inTransaction } from './tx.js';

/** A number declared in a target's `seed` list. */
export interface SeedNumber {
  provider_id: string;
  number: string;
  state: 'active' | 'spare';
}

/**
 * Inserts the `seed` numbers of every number-pool target that are missing (by provider id).
 * Never overwrites: state changes by rotations and the CLI win over the rules file. A seed entry
 * that disagrees with an existing row (other pool or number) is reported, not applied.
 */
export async function seedNumberPools(
  pool: Queryable,
  schema: string,
  targets: ReadonlyMap<string, { name: string; kind: string; config: unknown }>,
): Promise<{ inserted: string[]; conflicts: string[] }> {
  const inserted: string[] = [];
  const conflicts: string[] = [];
  for (const target of targets.values()) {
    if (target.kind !== NUMBER_POOL_KIND) continue;
    const cfg = target.config as { pool: string; seed?: SeedNumber[] };
    for (const s of cfg.seed ?? []) {
      const res = await pool.query<SenderNumber>(
        `INSERT INTO ${t(schema, 'sender_numbers')} (pool, provider_id, number, state) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING *`,
        [cfg.pool, s.provider_id, s.number, s.state],
      );
      if (res.rows[0]) {
        inserted.push(`${cfg.pool}/${s.provider_id}`);
        continue;
      }
      const byId = await findNumber(pool, schema, s.provider_id);
      if (byId && byId.pool === cfg.pool && byId.number === s.number) continue;
      conflicts.push(
        byId
          ? `target ${target.name}: seed ${s.provider_id} is already ${byId.number} in pool ${byId.pool}; kept as is`
          : `target ${target.name}: seed ${s.provider_id}: number ${s.number} is already registered under another provider id; not added`,
      );
    }
  }
  return { inserted, conflicts };
}
