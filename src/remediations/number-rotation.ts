import { z } from 'zod';
import { formatDuration } from '../core/duration.js';
import { duration } from '../rules/schema.js';
import {
  E164,
  findNumber,
  NUMBER_POOL_KIND,
  POOL_NAME,
  PROVIDER_ID,
  previewRotation,
  recordHookAttempt,
  rotateNumber,
  type Rotation,
  type SenderNumber,
} from '../store/numbers.js';
import { PermanentError, TransientError } from '../core/errors.js';
import { callEndpoint, httpEndpointSchema } from './http.js';
import { defineRemediation, type RemediationContext } from './types.js';

export { releaseCooledNumbers, seedNumberPools } from '../store/numbers.js';

/**
 * Sender number rotation (runbook: "switch to backup WhatsApp numbers if rate limited"; on a
 * quality drop, "48-72hr cooldown" and "activate hot spare numbers"). The pool lives in
 * remediator's own schema (migration 002); the sending application reads the view
 * `active_sender_numbers` and, if the target declares a hook, is told of each change.
 */
const seedSchema = z
  .object({
    provider_id: z.string().regex(PROVIDER_ID, 'must be a provider id (letters, digits, _ . : -)'),
    number: z.string().regex(E164, 'must be an E.164 number, e.g. +919876543210'),
    state: z.enum(['active', 'spare']).default('spare'),
  })
  .strict();

const targetSchema = z
  .object({
    pool: z.string().regex(POOL_NAME, 'must be letters, digits, ".", "_" or "-"'),
    /** Numbers inserted at startup if missing (never overwritten: rotations and the CLI win). */
    seed: z
      .array(seedSchema)
      .default([])
      .superRefine((seed, ctx) => {
        for (const key of ['provider_id', 'number'] as const) {
          const seen = new Set<string>();
          seed.forEach((s, i) => {
            if (seen.has(s[key])) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, key], message: `duplicate ${key} ${s[key]}` });
            seen.add(s[key]);
          });
        }
      }),
    /** The sending application's endpoint, told of each rotation. The body is ours, so none is set here. */
    hook: httpEndpointSchema.omit({ body: true }).extend({ timeout: duration.default('10s') }).optional(),
  })
  .strict();

const paramsSchema = z
  .object({
    /** The number to retire, usually "{{ labels.phone_number_id }}"; absent: the pool's only active number. */
    phone_number_id: z.string().regex(PROVIDER_ID, 'must be a provider id (letters, digits, _ . : -)').optional(),
    /** How long the retired number rests before it is a spare again (runbook: 48-72h). */
    cooldown: duration.default('48h').refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, 'must be between 1m and 30d'),
    reason: z.string().min(1).max(500).optional(),
  })
  .strict();

type Target = z.output<typeof targetSchema>;
type Params = z.output<typeof paramsSchema>;
type Ctx = RemediationContext<Params, Target>;

const show = (n: { provider_id: string; number: string }) => `${n.provider_id} (${n.number})`;
const retiredOf = (r: Rotation) => ({ provider_id: r.retired_provider_id, number: r.retired_number });
const promotedOf = (r: Rotation) => ({ provider_id: r.promoted_provider_id, number: r.promoted_number });

function details(r: Rotation, hook: string, released: SenderNumber[] = []): Record<string, unknown> {
  return {
    pool: r.pool,
    retired: retiredOf(r),
    promoted: promotedOf(r),
    cooling_until: r.cooling_until.toISOString(),
    rotated_by_run: r.run_id,
    rotated_at: r.at.toISOString(),
    hook,
    ...(released.length > 0 ? { released: released.map((n) => n.provider_id) } : {}),
  };
}

export const numberRotation = defineRemediation<Params, Target>({
  name: 'number-rotation',
  description:
    'Retires a sender number (e.g. a WhatsApp number rate-limited or with a quality drop) to a cooldown and promotes the longest-unused hot spare of its pool, then tells the sending application.',
  targetKind: NUMBER_POOL_KIND,
  paramsSchema,
  targetSchema,
  permissions: [
    "PostgreSQL: SELECT/UPDATE sender_numbers, SELECT/INSERT/UPDATE number_rotations in remediator's schema",
    'HTTP: call the sending application hook, if declared (bearer token in an env var)',
  ],
  exampleRules: `
targets:
  advisor-senders:
    kind: number-pool
    pool: advisor-senders
    seed:
      - { provider_id: "106540352242922", number: "+919800000001", state: active }
      - { provider_id: "106540352242923", number: "+919800000002" }
    hook:
      url: http://delivery.internal:8080/api/admin/sender-numbers
      token_env: PROJECT_ONE_DELIVERY_TOKEN
rules:
  - name: whatsapp-rate-limited
    match: ['alertname="WhatsAppNumberRateLimited"']
    action: number-rotation
    target: advisor-senders
    params:
      phone_number_id: "{{ labels.phone_number_id }}"
      cooldown: 48h
      reason: rate limited
`,
  async run(ctx) {
    const now = ctx.deps.now();
    const pool = ctx.target.pool;
    const providerId = ctx.params.phone_number_id;
    if (ctx.dryRun) return dryRun(ctx, now);

    const out = await rotateNumber(ctx.deps.pool, ctx.deps.schema, {
      pool,
      providerId,
      cooldownMs: ctx.params.cooldown,
      runId: ctx.runId,
      attempt: ctx.attempt,
      rule: ctx.ruleName,
      reason: ctx.params.reason ?? `${ctx.alert.labels.alertname ?? 'alert'} (rule ${ctx.ruleName})`,
      now,
      hookRequired: ctx.target.hook !== undefined,
    });
    if (out.released.length > 0) {
      await ctx.step(`Cooldown over, back to spare: ${out.released.map(show).join(', ')}`, { released: out.released.map((n) => n.provider_id) });
    }
    if (out.kind === 'not_active') {
      const by = out.lastRotation ? ` (rotated by run ${out.lastRotation.run_id} at ${out.lastRotation.at.toISOString()})` : '';
      const what =
        out.state === 'cooling' ? `already rotated: cooling until ${out.number.cooling_until!.toISOString()}${by}` : `${out.state}, not active${by}`;
      return {
        outcome: 'skipped',
        summary: `Number ${show(out.number)} in pool ${pool} is ${what}: nothing to rotate.`,
        details: { pool, provider_id: out.number.provider_id, state: out.state, ...(out.lastRotation ? details(out.lastRotation, hookState(out.lastRotation)) : {}) },
      };
    }

    const r = out.rotation;
    if (out.kind === 'rotated') {
      await ctx.step(`Retired ${show(retiredOf(r))}: cooling until ${r.cooling_until.toISOString()} (${formatDuration(ctx.params.cooldown)}); promoted ${show(promotedOf(r))}`, details(r, 'pending'), { acted: true });
    } else {
      await ctx.step(`This run already rotated ${show(retiredOf(r))} -> ${show(promotedOf(r))} on attempt ${r.attempt ?? '?'}: not rotating again`, details(r, hookState(r)));
    }
    await verify(ctx, r);

    let hook = hookState(r);
    if (r.hook_delivered_at === null && ctx.target.hook) {
      await deliverHook(ctx, r);
      hook = 'delivered';
      await ctx.step(`Hook delivered: ${ctx.target.hook.method ?? 'POST'} ${ctx.target.hook.url}`);
    }
    const head = out.kind === 'rotated' ? 'Rotated' : `Rotation by this run (attempt ${r.attempt ?? '?'}) stands`;
    const hookText = hook === 'delivered' ? '; hook delivered' : hook === 'delivered_before' ? '; hook already delivered' : '';
    return {
      outcome: 'succeeded',
      summary: `${head} in pool ${pool}: retired ${show(retiredOf(r))} until ${r.cooling_until.toISOString()}, promoted ${show(promotedOf(r))}${hookText}.`,
      details: details(r, hook, out.released),
    };
  },
});

function hookState(r: Rotation): string {
  if (r.hook_delivered_at) return 'delivered_before';
  return r.hook_required ? 'pending' : 'none';
}

/** The effect, re-read after commit: the promoted number is active and the retired one cooling. */
async function verify(ctx: Ctx, r: Rotation): Promise<void> {
  const [retired, promoted] = await Promise.all([
    findNumber(ctx.deps.pool, ctx.deps.schema, r.retired_provider_id),
    findNumber(ctx.deps.pool, ctx.deps.schema, r.promoted_provider_id),
  ]);
  if (retired?.state !== 'cooling' || promoted?.state !== 'active') {
    // Changed since (by hand or by a later rotation): telling the sending application about
    // this rotation now would be stale, so a human looks instead.
    throw new PermanentError(
      'verification_failed',
      `rotation ${r.retired_provider_id} -> ${r.promoted_provider_id} in pool ${r.pool} does not stand: ${r.retired_provider_id} is ${retired?.state ?? 'gone'}, ${r.promoted_provider_id} is ${promoted?.state ?? 'gone'}`,
      details(r, hookState(r)),
    );
  }
  await ctx.step(`Verified: ${r.promoted_provider_id} active, ${r.retired_provider_id} cooling`);
}

/**
 * Tells the sending application, after the commit. On failure the rotation stays committed and
 * recorded under this run id, so the retry (same run, next attempt) only re-sends the hook.
 */
async function deliverHook(ctx: Ctx, r: Rotation): Promise<void> {
  const hook = ctx.target.hook!;
  const body = {
    pool: r.pool,
    retired: retiredOf(r),
    promoted: promotedOf(r),
    cooling_until: r.cooling_until.toISOString(),
    reason: r.reason,
    run_id: r.run_id,
  };
  try {
    await callEndpoint(hook, { fetch: ctx.deps.fetch, env: ctx.deps.env, signal: ctx.signal, timeoutMs: hook.timeout, defaultMethod: 'POST', body });
  } catch (err) {
    const msg = (err as Error).message;
    await recordHookAttempt(ctx.deps.pool, ctx.deps.schema, r.id, { error: msg });
    const what = `rotated ${r.retired_provider_id} -> ${r.promoted_provider_id} in pool ${r.pool} (committed), but the hook failed: ${msg}`;
    if (err instanceof PermanentError) throw new PermanentError(err.reason, `${what}; tell the sending application by hand`, err.details);
    const reason = err instanceof TransientError ? err.reason : 'error';
    throw new TransientError(reason, `${what}; a retry re-sends the hook without rotating again`);
  }
  await recordHookAttempt(ctx.deps.pool, ctx.deps.schema, r.id, { deliveredAt: ctx.deps.now() });
}

async function dryRun(ctx: Ctx, now: Date) {
  const pool = ctx.target.pool;
  const plan = await previewRotation(ctx.deps.pool, ctx.deps.schema, { pool, providerId: ctx.params.phone_number_id, now, runId: ctx.runId });
  if (plan.kind === 'resumed') {
    const r = plan.rotation;
    return {
      outcome: 'dry_run' as const,
      summary: `Dry run: this run already rotated ${show(retiredOf(r))} -> ${show(promotedOf(r))} in pool ${pool}; hook ${hookState(r)}.`,
      details: details(r, hookState(r)),
    };
  }
  if (plan.kind === 'not_active') {
    const by = plan.lastRotation ? ` (rotated by run ${plan.lastRotation.run_id})` : '';
    return {
      outcome: 'skipped' as const,
      summary: `Number ${show(plan.number)} in pool ${pool} is ${plan.state === 'cooling' ? 'already rotated' : plan.state}${by}: nothing to rotate.`,
      details: { pool, provider_id: plan.number.provider_id, state: plan.state },
    };
  }
  const until = new Date(now.getTime() + ctx.params.cooldown).toISOString();
  const hook = ctx.target.hook ? `, then ${ctx.target.hook.method ?? 'POST'} ${ctx.target.hook.url}` : '';
  return {
    outcome: 'dry_run' as const,
    summary: `Dry run: would retire ${show(plan.retired)} in pool ${pool} until ${until} (${formatDuration(ctx.params.cooldown)}) and promote ${show(plan.promoted)}${hook}.`,
    details: {
      pool,
      retired: { provider_id: plan.retired.provider_id, number: plan.retired.number },
      promoted: { provider_id: plan.promoted.provider_id, number: plan.promoted.number },
      cooling_until: until,
    },
  };
}
