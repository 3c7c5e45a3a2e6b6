import { setTimeout as sleep } from 'node:timers/promises';
import type { AppsV1Api, ConfigurationOptions, KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { abortMessage, deadline } from '../core/deadline.js';
import { duration } from '../rules/schema.js';
import { formatDuration } from '../core/duration.js';
import { compileAnchored, RegexError } from '../rules/regex.js';
import { PermanentError, TransientError } from '../core/errors.js';
import { rolloutStatus, workloadKinds, type RolloutStatus, type WorkloadKind, type WorkloadObject } from './rollout-status.js';
import { defineRemediation, type RemediationContext } from './types.js';

/**
 * `kubectl rollout restart` + `kubectl rollout status`, for Deployments (and StatefulSets,
 * DaemonSets): the runbook's fix for a video-generation backlog (GPU memory exhausted) and for a
 * face-similarity model that went bad.
 * https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_restart/
 */

/** The annotation kubectl sets on the pod template; changing it makes the controller roll every pod. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
/**
 * Idempotency: the same PATCH also stores the run id on the pod template. A re-run of the same job
 * (BullMQ retry, or a stalled job picked up again) reads the workload first; if the template already
 * carries this run id, this run has restarted it already, so it does not restart again and only waits
 * for that rollout. Kept on the object itself rather than in our database so it also holds when the
 * worker died between the PATCH and any write of ours. (Costs one extra annotation on the pods; the
 * kubectl-equivalence test therefore compares only the restartedAt part of the patch.)
 */
export const RESTART_RUN = 'remediator.io/restart-run';
const FIELD_MANAGER = 'remediator';
/** client-node has no request timeout; a hung API server must not hold a run forever. */
const REQUEST_TIMEOUT_MS = 30_000;

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const isNamespace = (s: string) => s.length <= 63 && dns1123Label.test(s);
const isWorkloadName = (s: string) => s.length <= 253 && dns1123Subdomain.test(s);

/**
 * An anchored pattern ("^(a|b)$") or a list of exact names. The pattern is matched whole either way,
 * with the RE2 engine of the matchers: the name it is matched against may come from an alert label.
 */
const namesSchema = z.union([z.string(), z.array(z.string())]).superRefine((v, ctx) => {
  const issue = (message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, message });
  if (Array.isArray(v)) {
    if (v.length === 0) issue('list at least one workload name');
    for (const n of v) if (!isWorkloadName(n)) issue(`${JSON.stringify(n)} is not a Kubernetes object name (DNS-1123 subdomain)`);
    return;
  }
  if (!v.startsWith('^') || !v.endsWith('$') || v.endsWith('\\$')) {
    issue('a names pattern must be anchored: start with ^ and end with $ (or give a list of names)');
    return;
  }
  try {
    compileAnchored(v);
  } catch (err) {
    if (!(err instanceof RegexError)) throw err;
    issue(`bad regular expression: ${err.message}`);
  }
});

const targetSchema = z
  .object({
    /** Namespaces the target may act in (exact names). */
    namespaces: z
      .array(z.string().refine(isNamespace, 'must be a Kubernetes namespace name (DNS-1123 label)'))
      .min(1, 'list at least one namespace'),
    /** Workloads the target may restart: a list of names, or an anchored regular expression. */
    names: namesSchema,
    /** Workload kinds the target may restart. */
    kinds: z.array(z.enum(workloadKinds)).min(1, 'list at least one kind').default(['Deployment']),
    /** kubeconfig context to use; default: the current context (or the in-cluster service account). */
    context: z.string().min(1).optional(),
  })
  .strict();

const positive = (d: typeof duration) => d.refine((ms) => ms > 0, 'must be more than 0');

const paramsSchema = z
  .object({
    kind: z.enum(workloadKinds).default('Deployment'),
    /** May be templated from the alert, e.g. "{{ labels.namespace }}"; refused unless the target allows it. */
    namespace: z.string().min(1),
    /** May be templated from the alert; refused unless the target's names allow it. */
    name: z.string().min(1),
    /** How long to wait for the rollout to complete after the restart. */
    wait_timeout: positive(duration).default('5m'),
    poll_interval: positive(duration).default('2s'),
  })
  .strict();

type Target = z.output<typeof targetSchema>;
type Params = z.output<typeof paramsSchema>;
type Ctx = RemediationContext<Params, Target>;

/** What we read of a workload: the status fields plus the pod template's annotations. */
type Workload = WorkloadObject & {
  metadata?: { resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
};

type Options = ConfigurationOptions;
interface WorkloadApi {
  read(p: { name: string; namespace: string }, o: Options): Promise<Workload>;
  patch(p: { name: string; namespace: string; body: unknown; fieldManager: string }, o: Options): Promise<Workload>;
}

function workloadApi(api: AppsV1Api, kind: WorkloadKind): WorkloadApi {
  switch (kind) {
    case 'Deployment':
      return { read: (p, o) => api.readNamespacedDeployment(p, o), patch: (p, o) => api.patchNamespacedDeployment(p, o) };
    case 'StatefulSet':
      return { read: (p, o) => api.readNamespacedStatefulSet(p, o), patch: (p, o) => api.patchNamespacedStatefulSet(p, o) };
    case 'DaemonSet':
      return { read: (p, o) => api.readNamespacedDaemonSet(p, o), patch: (p, o) => api.patchNamespacedDaemonSet(p, o) };
  }
}

const refused = (message: string, details: Record<string, unknown>) => new PermanentError('refused_target', message, details);

/**
 * The target is the allowlist: params (possibly filled in from alert labels) must fall inside it.
 * Checked before any API call, so a label can never widen what a rule may touch.
 */
function checkAllowed(ctx: Ctx): void {
  const { kind, namespace, name } = ctx.params;
  const t = ctx.target;
  const details = { kind, namespace, name, target: ctx.targetName };
  if (!t.kinds.includes(kind)) {
    throw refused(`kind ${kind} is not allowed by target ${ctx.targetName} (allowed: ${t.kinds.join(', ')})`, details);
  }
  if (!t.namespaces.includes(namespace)) {
    throw refused(`namespace ${JSON.stringify(namespace)} is not allowed by target ${ctx.targetName} (allowed: ${t.namespaces.join(', ')})`, details);
  }
  if (!isWorkloadName(name)) throw refused(`${JSON.stringify(name)} is not a Kubernetes object name`, details);
  const allowed = Array.isArray(t.names) ? t.names.includes(name) : compileAnchored(t.names)(name);
  if (!allowed) {
    const rule = Array.isArray(t.names) ? t.names.join(', ') : t.names;
    throw refused(`${kind} ${JSON.stringify(name)} is not allowed by target ${ctx.targetName} (names: ${rule})`, details);
  }
}

/** kubectl's own refusals (polymorphichelpers/objectrestarter.go): a restart that could not roll. */
function checkRestartable(kind: WorkloadKind, obj: Workload, where: string): void {
  if (kind === 'Deployment' && obj.spec?.paused) {
    throw refused(`${where} is paused: a restart would not roll out (kubectl refuses too; run rollout resume first)`, { paused: true });
  }
  const type = obj.spec?.updateStrategy?.type ?? 'RollingUpdate';
  if (kind !== 'Deployment' && type !== 'RollingUpdate') {
    throw refused(`${where} uses the ${type} update strategy: a restart would not replace its pods (kubectl refuses too)`, { updateStrategy: type });
  }
}

/**
 * client-node takes about half a second to import: it is loaded on the first run, so the CLI
 * (`remediator rules check` builds this registry) and processes without such rules start without it.
 */
const k8s = async () => {
  // One loader (kube.ts) for the module: its error translation checks ApiException of that instance.
  const kube = await import('./kube.js');
  await kube.preloadK8s();
  return { client: kube.k8s(), kube };
};

async function kubeConfigFor(ctx: Ctx): Promise<KubeConfig> {
  const { kube } = await k8s();
  if (!ctx.deps.kubeConfig) throw new PermanentError('unavailable', 'no Kubernetes configuration was given to remediator (KUBECONFIG or in-cluster)');
  let kc: KubeConfig;
  try {
    kc = ctx.deps.kubeConfig();
  } catch (err) {
    throw new PermanentError('unavailable', `cannot load the Kubernetes configuration: ${(err as Error).message}`);
  }
  return ctx.target.context ? kube.withContext(kc, ctx.target.context) : kc;
}

/**
 * One API call: abortable, with a per-request timeout, errors translated. An abort of the run
 * itself (rule timeout, shutdown) passes as it is; the request's own timeout becomes a transient
 * `timeout` that names it.
 */
async function call<T>(ctx: Ctx, what: string, fn: (o: Options) => Promise<T>, headers?: [string, string]): Promise<T> {
  const { client, kube } = await k8s();
  const request = deadline('request timeout', REQUEST_TIMEOUT_MS, [ctx.signal]);
  const base = kube.abortable(request.signal);
  try {
    return await fn(headers ? client.setHeaderOptions(headers[0], headers[1], base) : base);
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    if (request.signal.aborted) throw new TransientError('timeout', `${what}: ${abortMessage(request.signal.reason)}`);
    throw kube.kubeError(err, what);
  } finally {
    request.dispose();
  }
}

/** RFC 3339 in UTC, seconds precision, as kubectl writes it (kubectl uses local time; both are RFC 3339). */
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

export const workerRestart = defineRemediation<Params, Target>({
  name: 'worker-restart',
  description:
    'Restarts a Deployment (or StatefulSet/DaemonSet) like `kubectl rollout restart`, then waits for the rollout to complete with `kubectl rollout status` logic.',
  targetKind: 'kubernetes',
  paramsSchema,
  targetSchema,
  permissions: [
    'Kubernetes RBAC (Role per allowed namespace, see deploy/rbac.yaml): apps deployments get, patch',
    'apps statefulsets, daemonsets get, patch (only when the target lists those kinds)',
    'no list or watch: each object is read by name, so the Role can name the workloads (resourceNames)',
  ],
  exampleRules: `
targets:
  stario-cluster:
    kind: kubernetes
    namespaces: [stario]
    names: [video-gen-worker, face-similarity]
    kinds: [Deployment]
rules:
  - name: video-gen-backlog-restart-workers
    match: ['alertname="VideoGenerationQueueBacklog"']
    action: worker-restart
    target: stario-cluster
    params:
      kind: Deployment
      namespace: "{{ labels.namespace }}"
      name: video-gen-worker
      wait_timeout: 10m
    timeout: 12m
    attempts: 2
    cooldown: 30m
`,
  async run(ctx) {
    checkAllowed(ctx);
    const { kind, namespace, name, wait_timeout } = ctx.params;
    const where = `${kind} ${namespace}/${name}`;
    const { client } = await k8s();
    const api = workloadApi((await kubeConfigFor(ctx)).makeApiClient(client.AppsV1Api), kind);

    const before = await call(ctx, `read ${where}`, (o) => api.read({ name, namespace }, o));
    checkRestartable(kind, before, where);
    const annotations = before.spec?.template?.metadata?.annotations ?? {};
    const alreadyRestarted = annotations[RESTART_RUN] === ctx.runId;
    const restartedAt = rfc3339(ctx.deps.now());
    const body = { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: restartedAt, [RESTART_RUN]: ctx.runId } } } } };
    const current = rolloutStatus(kind, before);

    if (ctx.dryRun) {
      const summary = alreadyRestarted
        ? `Dry run: ${where} was already restarted by this run at ${annotations[RESTARTED_AT]}; would only wait up to ${formatDuration(wait_timeout)} for that rollout.`
        : `Dry run: would PATCH ${where} (strategic merge) setting ${RESTARTED_AT}=${restartedAt}, then wait up to ${formatDuration(wait_timeout)} for the rollout. Now: ${current.message}.`;
      return { outcome: 'dry_run', summary, details: { patch: body, status: current.counts, generation: before.metadata?.generation } };
    }

    if (alreadyRestarted) {
      await ctx.step(`${where} was already restarted by this run at ${annotations[RESTARTED_AT]}: not restarting again, waiting for that rollout`, {
        restartedAt: annotations[RESTARTED_AT],
      });
    } else {
      await ctx.step(`Restarting ${where}: PATCH ${RESTARTED_AT}=${restartedAt}`, { restartedAt }, { intent: true });
      const patched = await call(
        ctx,
        `patch ${where}`,
        (o) => api.patch({ name, namespace, body, fieldManager: FIELD_MANAGER }, o),
        // Without this the client sends application/json-patch+json, which the API server rejects for this body.
        ['Content-Type', client.PatchStrategy.StrategicMergePatch],
      );
      await ctx.step(`Restarted ${where}: ${RESTARTED_AT}=${restartedAt}`, { restartedAt, generation: patched.metadata?.generation }, { acted: true });
    }

    const started = Date.now();
    const done = await waitForRollout(ctx, kind, where, api);
    const took = formatDuration(Date.now() - started);
    return {
      outcome: 'succeeded',
      summary: alreadyRestarted
        ? `${where} had been restarted by this run at ${annotations[RESTARTED_AT]}; rollout complete: ${done.message} (waited ${took}).`
        : `Restarted ${where}; rollout complete: ${done.message} (waited ${took}).`,
      details: { restartedAt: alreadyRestarted ? annotations[RESTARTED_AT] : restartedAt, restartedByThisAttempt: !alreadyRestarted, status: done.counts },
    };
  },
});

/**
 * Polls the workload until kubectl would call the rollout complete. Reports a step only when the
 * status sentence (and so its numbers) changes. A transient API error while waiting is retried
 * until the deadline. Deadlines use the real clock (deps.now may be frozen in tests).
 *
 * Timeout is a TransientError: a retry of the job finds its own run id on the template and only
 * waits again (no second restart), which gives a slow rollout more time; a Deployment that truly
 * cannot progress ends with ProgressDeadlineExceeded, a PermanentError.
 */
async function waitForRollout(ctx: Ctx, kind: WorkloadKind, where: string, api: WorkloadApi): Promise<RolloutStatus> {
  const { namespace, name, wait_timeout, poll_interval } = ctx.params;
  const until = Date.now() + wait_timeout;
  let last: RolloutStatus | undefined;
  let lastError: TransientError | undefined;
  for (;;) {
    try {
      const obj = await call(ctx, `read ${where}`, (o) => api.read({ name, namespace }, o));
      const status = rolloutStatus(kind, obj);
      lastError = undefined;
      if (status.state === 'failed' || status.state === 'unsupported') {
        throw new PermanentError('verification_failed', `${where}: ${status.message}`, { status: status.counts });
      }
      if (status.message !== last?.message) await ctx.step(status.message, status.counts);
      last = status;
      if (status.state === 'complete') return status;
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      lastError = err;
    }
    if (Date.now() + poll_interval > until) {
      const state = last ? `last status: ${last.message}` : 'no status read';
      throw new TransientError(
        'timeout',
        `${where}: rollout not complete after ${formatDuration(wait_timeout)} (${state}${lastError ? `; last error: ${lastError.message}` : ''}); a retry of this run waits again without restarting`,
        { status: last?.counts },
      );
    }
    await sleep(poll_interval, undefined, { signal: ctx.signal });
  }
}
