import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { duration } from '../rules/schema.js';
import { PermanentError, TransientError } from '../core/errors.js';
import { callEndpoint, httpEndpointSchema, readField, type HttpEndpoint } from './http.js';
import { defineRemediation, type RemediationContext } from './types.js';

/**
 * A service's circuit-breaker admin API, e.g. the image-generation service's
 * `GET /api/admin/circuit-breaker-status` -> {"state":"closed|open|half_open"} and
 * `POST /api/admin/reset-circuit-breaker`.
 */
const targetSchema = z
  .object({
    status: httpEndpointSchema.extend({
      /** Dot path of the state in the status JSON. */
      field: z.string().min(1).default('state'),
      /** Values of that field that mean "closed". */
      closed: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).default(['closed']),
    }),
    reset: httpEndpointSchema,
    /** Per-request timeout. */
    request_timeout: duration.default('10s'),
  })
  .strict();

const paramsSchema = z
  .object({
    /** How long to wait for the breaker to report closed after the reset. */
    verify_timeout: duration.default('60s'),
    poll_interval: duration.default('2s'),
  })
  .strict();

type Target = z.output<typeof targetSchema>;
type Params = z.output<typeof paramsSchema>;
type Ctx = RemediationContext<Params, Target>;

async function readState(ctx: Ctx): Promise<unknown> {
  const { status, request_timeout } = ctx.target;
  const res = await callEndpoint(status, { ...http(ctx, request_timeout), defaultMethod: 'GET' });
  const state = readField(res.body, status.field);
  if (state === undefined) {
    throw new PermanentError('bad_request', `${status.method ?? 'GET'} ${status.url}: response has no field ${status.field}`);
  }
  return state;
}

function http(ctx: Ctx, timeoutMs: number) {
  return { fetch: ctx.deps.fetch, env: ctx.deps.env, signal: ctx.signal, timeoutMs };
}

const isClosed = (ctx: Ctx, state: unknown) => ctx.target.status.closed.some((c) => c === state);

export const breakerReset = defineRemediation<Params, Target>({
  name: 'breaker-reset',
  description: "Resets a service's circuit breaker through its admin HTTP API, then polls its status until it reports closed.",
  targetKind: 'http-breaker',
  paramsSchema,
  targetSchema,
  permissions: ['HTTP: read the breaker status endpoint', 'HTTP: call the breaker reset endpoint (admin token in an env var)'],
  exampleRules: `
targets:
  image-gen:
    kind: http-breaker
    status:
      url: http://image-gen.internal:8080/api/admin/circuit-breaker-status
      field: state
      closed: [closed]
      token_env: IMAGE_GEN_ADMIN_TOKEN
    reset:
      method: POST
      url: http://image-gen.internal:8080/api/admin/reset-circuit-breaker
      token_env: IMAGE_GEN_ADMIN_TOKEN
rules:
  - name: image-gen-breaker-open
    match: ['alertname="CircuitBreakerOpen"']
    action: breaker-reset
    target: image-gen
    params: { verify_timeout: 60s }
`,
  async run(ctx) {
    const before = await readState(ctx);
    await ctx.step(`Breaker state before: ${String(before)}`, { before });
    if (isClosed(ctx, before)) {
      return { outcome: 'skipped', summary: `Breaker on ${ctx.targetName} is already ${String(before)}: no reset needed.`, details: { before } };
    }
    if (ctx.dryRun) {
      return {
        outcome: 'dry_run',
        summary: `Dry run: breaker on ${ctx.targetName} is ${String(before)}; would send ${describe(ctx.target.reset, 'POST')} and wait up to ${ctx.params.verify_timeout / 1000}s for it to close.`,
        details: { before },
      };
    }
    // Durable before the call: a worker that dies after sending leaves a re-run that knows it may have acted.
    await ctx.step(`Sending reset: ${describe(ctx.target.reset, 'POST')}`, undefined, { intent: true });
    await callEndpoint(ctx.target.reset, { ...http(ctx, ctx.target.request_timeout), defaultMethod: 'POST' });
    await ctx.step(`Reset sent: ${describe(ctx.target.reset, 'POST')}`, undefined, { acted: true });

    const deadline = Date.now() + ctx.params.verify_timeout;
    let after: unknown = before;
    for (;;) {
      try {
        after = await readState(ctx);
        if (isClosed(ctx, after)) break;
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
      }
      if (Date.now() + ctx.params.poll_interval > deadline) {
        throw new TransientError('verification_failed', `breaker on ${ctx.targetName} still ${String(after)} ${ctx.params.verify_timeout / 1000}s after reset`, { before, after });
      }
      await sleep(ctx.params.poll_interval, undefined, { signal: ctx.signal });
    }
    await ctx.step(`Breaker state after: ${String(after)}`, { after });
    return { outcome: 'succeeded', summary: `Breaker on ${ctx.targetName} reset: ${String(before)} -> ${String(after)}.`, details: { before, after } };
  },
});

function describe(ep: HttpEndpoint, method: string): string {
  return `${ep.method ?? method} ${ep.url}`;
}
