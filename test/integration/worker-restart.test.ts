import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PermanentError, TransientError } from '../../src/core/errors.js';
import { loadKubeConfig } from '../../src/remediations/kube.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { RESTARTED_AT, RESTART_RUN, workerRestart } from '../../src/remediations/worker-restart.js';
import { compileRules, RuleLoadError } from '../../src/rules/load.js';
import { renderDeep } from '../../src/rules/template.js';
import { alert, makeContext } from '../helpers/context.js';
import { startFakeKubeApi, writeKubeconfig, type FakeKubeApi } from '../fakes/kube-api.js';

const NS = 'stario';
const NAME = 'video-gen-worker';
const DEPLOY_PATH = `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`;
const NOW = new Date('2026-11-23T10:00:00.123Z');
const RESTARTED = '2026-11-23T10:00:00Z';
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

const target = { namespaces: [NS], names: [NAME, 'face-similarity'] };

let fake: FakeKubeApi;
let kubeconfig: string;
let kubeConfigLoads = 0;

type Opts = Parameters<typeof makeContext>[1];
function context(params: Record<string, unknown> = {}, opts: Opts = {}) {
  return makeContext(workerRestart, {
    params: { namespace: NS, name: NAME, poll_interval: '20ms', wait_timeout: '5s', ...params },
    target,
    targetName: 'stario-cluster',
    ...opts,
    deps: {
      kubeConfig: () => {
        kubeConfigLoads += 1;
        return loadKubeConfig({ KUBECONFIG: kubeconfig });
      },
      now: () => NOW,
      ...opts.deps,
    },
  });
}

async function expectFailure(p: Promise<unknown>, type: typeof PermanentError | typeof TransientError, reason: string, message?: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal((err as PermanentError).reason, reason, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return true;
  });
}

const gets = () => fake.requests.filter((r) => r.method === 'GET');

before(async () => {
  fake = await startFakeKubeApi();
  kubeconfig = await writeKubeconfig(fake.url, fake.token, { namespace: NS });
});

after(async () => {
  await fake.close();
  await rm(dirname(kubeconfig), { recursive: true, force: true });
});

beforeEach(() => {
  fake.requests.length = 0;
  fake.clearFailures();
  fake.allowAnonymous(false);
  kubeConfigLoads = 0;
  fake.add('Deployment', NS, NAME, { replicas: 3 });
  fake.add('Deployment', NS, 'face-similarity', { replicas: 2 });
});

describe('worker-restart against a fake Kubernetes API (real client-node over HTTP)', () => {
  it('restarts with the kubectl strategic-merge patch and succeeds only once the rollout completes', async () => {
    const ctx = context();
    const result = await workerRestart.run(ctx);

    assert.equal(result.outcome, 'succeeded', result.summary);
    const patches = fake.patches();
    assert.equal(patches.length, 1);
    const [patch] = patches;
    assert.equal(patch!.path, DEPLOY_PATH);
    assert.deepEqual(patch!.query, { fieldManager: 'remediator' });
    assert.equal(patch!.contentType, 'application/strategic-merge-patch+json');
    assert.deepEqual(patch!.body, { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: RESTARTED, [RESTART_RUN]: 'run-1' } } } } });
    assert.equal(patch!.authorization, `Bearer ${fake.token}`);

    // Read first, then patch, then poll: the fake needs 6 GETs after the patch to finish
    // (observe, 1/3, 2/3, 3/3 with an old replica left, 2 of 3 available, complete).
    assert.deepEqual(fake.requests.map((r) => r.method), ['GET', 'PATCH', 'GET', 'GET', 'GET', 'GET', 'GET', 'GET']);
    assert.ok(fake.requests.every((r) => r.path === DEPLOY_PATH));
    const obj = fake.get('Deployment', NS, NAME)!;
    assert.equal(obj.metadata.generation, 2);
    assert.deepEqual(
      [obj.status.observedGeneration, obj.status.updatedReplicas, obj.status.availableReplicas, obj.status.replicas],
      [2, 3, 3, 3],
    );
    assert.equal(obj.spec.template.metadata.annotations[RESTARTED_AT], RESTARTED);

    assert.deepEqual(
      ctx.steps.map((s) => s.message),
      [
        // The intent is recorded before the PATCH goes out (a re-run after a crash knows it may have acted).
        `Restarting Deployment ${NS}/${NAME}: PATCH ${RESTARTED_AT}=${RESTARTED}`,
        `Restarted Deployment ${NS}/${NAME}: ${RESTARTED_AT}=${RESTARTED}`,
        'Waiting for deployment spec update to be observed',
        `Waiting for deployment "${NAME}" rollout to finish: 1 out of 3 new replicas have been updated`,
        `Waiting for deployment "${NAME}" rollout to finish: 2 out of 3 new replicas have been updated`,
        `Waiting for deployment "${NAME}" rollout to finish: 1 old replicas are pending termination`,
        `Waiting for deployment "${NAME}" rollout to finish: 2 of 3 updated replicas are available`,
        `deployment "${NAME}" successfully rolled out`,
      ],
    );
    assert.match(result.summary, /rollout complete/);
  });

  it('a stalled rollout ends in a transient timeout, reporting each status once', async () => {
    fake.setBehaviour('Deployment', NS, NAME, 'stall');
    const ctx = context({ wait_timeout: '400ms' });
    const started = Date.now();
    await expectFailure(workerRestart.run(ctx), TransientError, 'timeout', /rollout not complete after .*1 out of 3 new replicas/);
    assert.ok(Date.now() - started >= 350, 'waited about wait_timeout');
    assert.ok(gets().length >= 6, `polled repeatedly (${gets().length} GETs)`);
    assert.equal(fake.patches().length, 1);
    const progress = ctx.steps.filter((s) => s.message.includes('1 out of 3 new replicas'));
    assert.equal(progress.length, 1, 'the same status is reported once, not on every poll');
  });

  it('an abort of the run (shutdown, run deadline) stops the wait at once and is not translated', async () => {
    fake.setBehaviour('Deployment', NS, NAME, 'stall');
    const ac = new AbortController();
    const ctx = context({ wait_timeout: '30s' }, { signal: ac.signal });
    const started = Date.now();
    const running = workerRestart.run(ctx);
    setTimeout(() => ac.abort(), 150);
    await assert.rejects(running, (err: Error) => err.name === 'AbortError');
    assert.ok(Date.now() - started < 5_000);
  });

  it('ProgressDeadlineExceeded is a permanent verification failure with the condition message', async () => {
    fake.setBehaviour('Deployment', NS, NAME, 'deadline');
    await expectFailure(
      workerRestart.run(context()),
      PermanentError,
      'verification_failed',
      /exceeded its progress deadline: ReplicaSet "video-gen-worker-2" has timed out progressing/,
    );
    assert.equal(fake.patches().length, 1);
  });

  it('refuses a namespace outside the allowlist before any request (even when a label supplies it)', async () => {
    // As the worker does it: the rule's params are rendered from the alert's labels first.
    const params = renderDeep({ namespace: '{{ labels.namespace }}', name: NAME }, { labels: { namespace: 'kube-system' }, annotations: {} });
    await expectFailure(workerRestart.run(context(params)), PermanentError, 'refused_target', /namespace "kube-system" is not allowed by target stario-cluster/);
    assert.equal(fake.requests.length, 0);
    assert.equal(kubeConfigLoads, 0, 'not even the kubeconfig was loaded');
  });

  it('refuses a workload name the target does not allow, with a list or an anchored pattern', async () => {
    await expectFailure(workerRestart.run(context({ name: 'api-gateway' })), PermanentError, 'refused_target', /"api-gateway" is not allowed/);
    const pattern = { namespaces: [NS], names: '^(video-gen-worker|face-similarity)$' };
    // The pattern is matched whole, so a prefix match does not widen it.
    await expectFailure(workerRestart.run(context({ name: 'video-gen-worker-2' }, { target: pattern })), PermanentError, 'refused_target');
    // An alternation that is only anchored at its ends ("^a|b$") is still matched whole.
    const loose = { namespaces: [NS], names: '^face-similarity|video-gen-worker$' };
    await expectFailure(workerRestart.run(context({ name: 'evil-video-gen-worker' }, { target: loose })), PermanentError, 'refused_target');
    await expectFailure(workerRestart.run(context({ name: 'a/../../video-gen-worker' }, { target: { namespaces: [NS], names: '^.*$' } })), PermanentError, 'refused_target', /not a Kubernetes object name/);
    assert.equal(fake.requests.length, 0);
    const ok = await workerRestart.run(context({ name: 'face-similarity' }, { target: pattern }));
    assert.equal(ok.outcome, 'succeeded');
  });

  it('matches a names pattern in linear time (RE2), so a label-supplied name cannot stall the worker', async () => {
    // A backtracking engine needs about 1.6^60 steps to reject this name; RE2 answers at once.
    const slow = { namespaces: [NS], names: '^(a|aa)*b$' };
    const params = renderDeep({ namespace: NS, name: '{{ labels.deployment }}' }, { labels: { deployment: 'a'.repeat(60) }, annotations: {} });
    await expectFailure(workerRestart.run(context(params, { target: slow })), PermanentError, 'refused_target', /"a{60}" is not allowed by target stario-cluster/);
    assert.equal(fake.requests.length, 0);
  });

  it('refuses a kind the target does not allow', async () => {
    fake.add('StatefulSet', NS, NAME);
    await expectFailure(workerRestart.run(context({ kind: 'StatefulSet' })), PermanentError, 'refused_target', /kind StatefulSet is not allowed/);
    assert.equal(fake.requests.length, 0);
  });

  it('dry run reads the workload, reports the patch, and sends no PATCH', async () => {
    const ctx = context({}, { dryRun: true });
    const result = await workerRestart.run(ctx);
    assert.equal(result.outcome, 'dry_run');
    assert.match(result.summary, new RegExp(`would PATCH Deployment ${NS}/${NAME} .*${RESTARTED_AT}=${RESTARTED}`));
    assert.deepEqual(fake.requests.map((r) => r.method), ['GET']);
    assert.equal(fake.get('Deployment', NS, NAME)!.metadata.generation, 1);
  });

  it('dry run still surfaces not-found and forbidden', async () => {
    await expectFailure(
      workerRestart.run(context({ namespace: 'stario-staging' }, { dryRun: true, target: { namespaces: ['stario-staging'], names: [NAME] } })),
      PermanentError,
      'not_found',
    );
    fake.fail({ method: 'GET', status: 403 });
    await expectFailure(workerRestart.run(context({}, { dryRun: true })), PermanentError, 'forbidden');
    assert.equal(fake.patches().length, 0);
  });

  it('404 is permanent not_found, with the API server message', async () => {
    await expectFailure(
      workerRestart.run(context({ namespace: 'stario-staging' }, { target: { namespaces: ['stario-staging'], names: [NAME] } })),
      PermanentError,
      'not_found',
      /HTTP 404: deployments.apps "video-gen-worker" not found/,
    );
    assert.equal(fake.patches().length, 0);
  });

  it('403 on read or on patch is permanent forbidden', async () => {
    fake.fail({ method: 'GET', status: 403, message: 'deployments.apps "video-gen-worker" is forbidden: User "system:serviceaccount:remediator:remediator" cannot get resource' });
    await expectFailure(workerRestart.run(context()), PermanentError, 'forbidden', /HTTP 403: .*cannot get resource/);
    assert.equal(fake.patches().length, 0);

    fake.clearFailures();
    fake.fail({ method: 'PATCH', status: 403 });
    await expectFailure(workerRestart.run(context()), PermanentError, 'forbidden');
    assert.equal(fake.patches().length, 1);
    assert.equal(fake.get('Deployment', NS, NAME)!.metadata.generation, 1, 'nothing changed');
  });

  it('a wrong token (401) is permanent forbidden', async () => {
    const bad = await writeKubeconfig(fake.url, 'not-the-token');
    try {
      await expectFailure(workerRestart.run(context({}, { deps: { kubeConfig: () => loadKubeConfig({ KUBECONFIG: bad }) } })), PermanentError, 'forbidden', /HTTP 401/);
    } finally {
      await rm(dirname(bad), { recursive: true, force: true });
    }
  });

  it('5xx and connection errors are transient; a 5xx while waiting is retried until the deadline', async () => {
    fake.fail({ method: 'GET', status: 500, times: 1 });
    await expectFailure(workerRestart.run(context()), TransientError, 'unavailable', /HTTP 500/);
    assert.equal(fake.patches().length, 0);

    fake.clearFailures();
    fake.fail({ method: 'GET', status: 503, skip: 2, times: 2 }); // 1st GET reads, 2nd polls, then two 503s
    const result = await workerRestart.run(context());
    assert.equal(result.outcome, 'succeeded');
    assert.equal(fake.requests.filter((r) => r.status === 503).length, 2);

    const closed = await writeKubeconfig('http://127.0.0.1:1', fake.token);
    try {
      await expectFailure(workerRestart.run(context({}, { deps: { kubeConfig: () => loadKubeConfig({ KUBECONFIG: closed }) } })), TransientError, 'unavailable', /ECONNREFUSED/);
    } finally {
      await rm(dirname(closed), { recursive: true, force: true });
    }
  });

  it('a re-run of the same run does not patch again; it waits for the rollout it started', async () => {
    fake.setBehaviour('Deployment', NS, NAME, 'stall');
    await expectFailure(workerRestart.run(context({ wait_timeout: '200ms' }, { runId: 'job-42' })), TransientError, 'timeout');
    assert.equal(fake.patches().length, 1);

    fake.setBehaviour('Deployment', NS, NAME, 'complete'); // the rollout gets unstuck
    const again = context({}, { runId: 'job-42', attempt: 2, deps: { now: () => new Date('2026-11-23T10:05:00Z') } });
    const result = await workerRestart.run(again);
    assert.equal(result.outcome, 'succeeded');
    assert.equal(fake.patches().length, 1, 'no second PATCH');
    assert.match(again.steps[0]!.message, /already restarted by this run at 2026-11-23T10:00:00Z: not restarting again/);
    assert.equal(result.details?.restartedAt, RESTARTED);
    assert.equal(fake.get('Deployment', NS, NAME)!.metadata.generation, 2);

    // Another run (a new firing) does restart again.
    await workerRestart.run(context({}, { runId: 'job-43' }));
    assert.equal(fake.patches().length, 2);
    assert.equal(fake.get('Deployment', NS, NAME)!.spec.template.metadata.annotations[RESTART_RUN], 'job-43');
  });

  it('refuses a paused Deployment (kubectl does too) without patching', async () => {
    fake.add('Deployment', NS, NAME, { paused: true });
    await expectFailure(workerRestart.run(context()), PermanentError, 'refused_target', /paused/);
    assert.equal(fake.patches().length, 0);
  });

  it('restarts a StatefulSet and a DaemonSet when the target allows them; refuses OnDelete', async () => {
    const wide = { namespaces: [NS], names: '^(redis|node-agent|video-gen-worker)$', kinds: ['StatefulSet', 'DaemonSet'] };
    fake.add('StatefulSet', NS, 'redis', { replicas: 2 });
    const sts = context({ kind: 'StatefulSet', name: 'redis' }, { target: wide });
    assert.equal((await workerRestart.run(sts)).outcome, 'succeeded');
    assert.equal(fake.patches()[0]!.path, `/apis/apps/v1/namespaces/${NS}/statefulsets/redis`);
    assert.equal(fake.patches()[0]!.contentType, 'application/strategic-merge-patch+json');
    assert.ok(sts.steps.some((s) => s.message === 'Waiting for 1 pods to be ready'));
    assert.equal(sts.steps.at(-1)!.message, 'partitioned roll out complete: 2 new pods have been updated');

    fake.add('DaemonSet', NS, 'node-agent', { replicas: 2 });
    const ds = context({ kind: 'DaemonSet', name: 'node-agent' }, { target: wide });
    assert.equal((await workerRestart.run(ds)).outcome, 'succeeded');
    assert.equal(fake.patches()[1]!.path, `/apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`);
    assert.equal(ds.steps.at(-1)!.message, 'daemon set "node-agent" successfully rolled out');

    fake.add('StatefulSet', NS, 'video-gen-worker', { updateStrategy: 'OnDelete' });
    await expectFailure(workerRestart.run(context({ kind: 'StatefulSet' }, { target: wide })), PermanentError, 'refused_target', /OnDelete/);
    assert.equal(fake.patches().length, 2);
  });

  it("uses the target's kubeconfig context, not the current one", async () => {
    const multi = await writeKubeconfig('http://127.0.0.1:1', fake.token, { contextName: 'broken', extraContexts: { 'stario-prod': fake.url } });
    try {
      const deps = { kubeConfig: () => loadKubeConfig({ KUBECONFIG: multi }) };
      const ok = await workerRestart.run(context({}, { deps, target: { ...target, context: 'stario-prod' } }));
      assert.equal(ok.outcome, 'succeeded');
      await expectFailure(workerRestart.run(context({}, { deps, target: { ...target, context: 'nope' } })), PermanentError, 'bad_params', /no context "nope"/);
    } finally {
      await rm(dirname(multi), { recursive: true, force: true });
    }
  });

  it('without a Kubernetes configuration the run fails permanently, after the allowlist check', async () => {
    const ctx = context();
    ctx.deps.kubeConfig = undefined;
    await expectFailure(workerRestart.run(ctx), PermanentError, 'unavailable', /no Kubernetes configuration/);
  });

  it(
    'sends the same restartedAt patch as the real kubectl rollout restart',
    { skip: existsSync('/usr/bin/kubectl') ? false : 'kubectl is not installed at /usr/bin/kubectl', timeout: 60_000 },
    async () => {
      // client-go sends no credentials to a plain-http server (clientcmd applies auth info only
      // with TLS), so the fake must accept kubectl's anonymous requests for this test.
      fake.allowAnonymous(true);
      const home = await mkdtemp(join(tmpdir(), 'remediator-kubectl-'));
      try {
        const { stdout } = await promisify(execFile)(
          '/usr/bin/kubectl',
          ['--kubeconfig', kubeconfig, '--cache-dir', join(home, 'cache'), 'rollout', 'restart', 'deployment', NAME, '-n', NS],
          { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home } },
        );
        assert.match(stdout, /deployment.apps\/video-gen-worker restarted/);
      } finally {
        await rm(home, { recursive: true, force: true });
      }
      const [byKubectl] = fake.patches();
      assert.ok(byKubectl, 'kubectl sent a PATCH');
      assert.equal(byKubectl.authorization, undefined);
      fake.add('Deployment', NS, NAME, { replicas: 3 });
      fake.allowAnonymous(false);
      await workerRestart.run(context());
      const byUs = fake.patches()[1]!;

      assert.equal(byUs.path, byKubectl.path);
      assert.equal(byUs.contentType, byKubectl.contentType);
      assert.equal(byUs.contentType, 'application/strategic-merge-patch+json');
      // Same structure; only the restartedAt part is compared: remediator adds its run-id annotation.
      const shape = (body: unknown) => {
        const b = structuredClone(body) as { spec: { template: { metadata: { annotations: Record<string, string> } } } };
        const ann = b.spec.template.metadata.annotations;
        assert.match(ann[RESTARTED_AT]!, RFC3339);
        ann[RESTARTED_AT] = '<RFC3339>';
        delete ann[RESTART_RUN];
        return b;
      };
      assert.deepEqual(shape(byUs.body), shape(byKubectl.body));
      assert.deepEqual(shape(byKubectl.body), { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: '<RFC3339>' } } } } });
      assert.deepEqual(byKubectl.query, { fieldManager: 'kubectl-rollout' });
      assert.deepEqual(byUs.query, { fieldManager: 'remediator' });
    },
  );
});

describe('worker-restart rules and targets', () => {
  const registry = buildRegistry([workerRestart]);

  it('its exampleRules compile', () => {
    const table = compileRules([{ file: 'example.yml', text: workerRestart.exampleRules }], registry);
    assert.equal(table.rules.length, 1);
    assert.equal(table.targets.get('stario-cluster')?.kind, 'kubernetes');
  });

  it('rules/stario-workers.yml compiles, and its labels cannot widen the target', async () => {
    const file = 'rules/stario-workers.yml';
    const table = compileRules([{ file, text: await readFile(file, 'utf8') }], registry);
    assert.deepEqual(table.rules.map((r) => r.spec.name), ['stario-video-gen-backlog-restart-workers', 'stario-face-similarity-slow-restart']);
    const t = table.targets.get('stario-cluster')!.config;
    assert.deepEqual(t, { namespaces: ['stario'], names: ['video-gen-worker', 'face-similarity'], kinds: ['Deployment'] });
    for (const r of table.rules) assert.ok(r.spec.timeout > (workerRestart.paramsSchema.parse(renderDeep(r.spec.params, { labels: { namespace: 'stario' }, annotations: {} })).wait_timeout), `${r.spec.name}: timeout must outlive wait_timeout`);

    const face = table.rules[1]!;
    const a = alert({ alertname: 'FaceSimilaritySlow', service: 'face-similarity', namespace: 'default' });
    const ctx = context(renderDeep(face.spec.params, a), { target: t });
    await expectFailure(workerRestart.run(ctx), PermanentError, 'refused_target', /namespace "default"/);
    assert.equal(fake.requests.length, 0);
  });

  it('rejects bad targets at load time with the field path', () => {
    const load = (targetYaml: string) =>
      compileRules([{ file: 't.yml', text: `targets:\n  k:\n    kind: kubernetes\n${targetYaml}rules: []\n` }], registry);
    const problems = (targetYaml: string) => {
      try {
        load(targetYaml);
        return [];
      } catch (err) {
        assert.ok(err instanceof RuleLoadError);
        return err.problems;
      }
    };
    assert.deepEqual(problems('    namespaces: [stario]\n    names: [a]\n'), []);
    assert.match(problems('    namespaces: []\n    names: [a]\n').join('\n'), /target "k": namespaces: list at least one namespace/);
    assert.match(problems('    namespaces: [stario]\n    names: "video-.*"\n').join('\n'), /target "k": names: a names pattern must be anchored/);
    assert.match(problems('    namespaces: [stario]\n    names: "^(a$"\n').join('\n'), /names: bad regular expression/);
    // RE2 syntax, as for matchers: no lookaround.
    assert.match(problems('    namespaces: [stario]\n    names: "^(?!kube-).*$"\n').join('\n'), /names: bad regular expression: .*lookahead is not supported/);
    assert.match(problems('    namespaces: [stario]\n    names: [Bad_Name]\n').join('\n'), /names: "Bad_Name" is not a Kubernetes object name/);
    assert.match(problems('    namespaces: [stario]\n    names: [a]\n    kinds: [Pod]\n').join('\n'), /kinds\[0\]/);
    assert.match(problems('    namespaces: [stario]\n    names: [a]\n    verbs: [delete]\n').join('\n'), /target "k": verbs: unknown key \(allowed: kind, namespaces, names, kinds, context\)/);
    assert.match(problems('    names: [a]\n').join('\n'), /namespaces: Required/);
  });

  it('rejects bad params at load time', () => {
    const text = (params: string) => `targets:\n  k: { kind: kubernetes, namespaces: [stario], names: [a] }\nrules:\n  - name: r\n    match: ['alertname="X"']\n    action: worker-restart\n    target: k\n    params: ${params}\n`;
    assert.throws(() => compileRules([{ file: 'p.yml', text: text('{ namespace: stario }') }], registry), /params.name: Required/);
    assert.throws(() => compileRules([{ file: 'p.yml', text: text('{ namespace: stario, name: a, wait_timeout: soon }') }], registry), /params.wait_timeout: bad duration/);
    assert.throws(() => compileRules([{ file: 'p.yml', text: text('{ namespace: stario, name: a, replicas: 3 }') }], registry), /params.replicas: unknown key/);
    // Templated values are checked once an alert fills them in.
    assert.equal(compileRules([{ file: 'p.yml', text: text('{ namespace: "{{ labels.namespace }}", name: a }') }], registry).rules.length, 1);
  });
});

describe('loadKubeConfig', () => {
  it('loads KUBECONFIG (the first file sets the context)', () => {
    const kc = loadKubeConfig({ KUBECONFIG: kubeconfig });
    assert.equal(kc.getCurrentCluster()?.server, fake.url);
    assert.equal(kc.getCurrentCluster()?.skipTLSVerify, true);
  });

  it('builds the in-cluster config from the service-account directory and the env it is given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'remediator-sa-'));
    try {
      await writeFile(join(dir, 'token'), 'sa-token');
      const kc = loadKubeConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, { serviceAccountDir: dir });
      assert.equal(kc.getCurrentCluster()?.server, 'https://10.96.0.1:443');
      assert.equal(kc.getCurrentCluster()?.caFile, join(dir, 'ca.crt'));
      assert.equal(kc.getCurrentUser()?.authProvider?.config?.tokenFile, join(dir, 'token'));
      const v6 = loadKubeConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, { serviceAccountDir: dir });
      assert.equal(v6.getCurrentCluster()?.server, 'https://[fd00::1]:443');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails clearly with nothing configured, or with plain http without insecure-skip-tls-verify', async () => {
    assert.throws(() => loadKubeConfig({}, { serviceAccountDir: '/nonexistent' }), /no Kubernetes configuration: set KUBECONFIG/);
    const text = (await readFile(kubeconfig, 'utf8')).replace(/\n\s*insecure-skip-tls-verify: true/g, '');
    const dir = await mkdtemp(join(tmpdir(), 'remediator-kube-'));
    try {
      await writeFile(join(dir, 'config'), text);
      assert.throws(() => loadKubeConfig({ KUBECONFIG: join(dir, 'config') }), /plain http .* without insecure-skip-tls-verify/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
