import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

/**
 * A fake Kubernetes API server for apps/v1 Deployments, StatefulSets and DaemonSets: plain HTTP on
 * 127.0.0.1, real object shapes, GET and PATCH (strategic-merge / merge patches of maps), minimal
 * discovery so kubectl works against it, and a simulated controller that rolls a workload out over
 * the next few GETs after its pod template changed. It records every request and can be told to
 * fail, to stall a rollout, or to report ProgressDeadlineExceeded.
 */

export type FakeKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';
const plurals: Record<string, FakeKind> = { deployments: 'Deployment', statefulsets: 'StatefulSet', daemonsets: 'DaemonSet' };

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  accept: string | undefined;
  authorization: string | undefined;
  userAgent: string | undefined;
  /** Parsed JSON body (undefined when empty or not JSON). */
  body: unknown;
  rawBody: string;
  /** Status the fake answered with. */
  status?: number;
}

/** `complete`: rolls out over the next GETs; `stall`: stops at the first in-progress state; `deadline`: Progressing=False/ProgressDeadlineExceeded (Deployment only). */
export type RolloutBehaviour = 'complete' | 'stall' | 'deadline';

export interface FailureRule {
  method?: string;
  /** Exact path or a pattern. */
  path?: string | RegExp;
  status: number;
  /** How many matching requests fail; default: all of them. */
  times?: number;
  /** Let this many matching requests through first. */
  skip?: number;
  message?: string;
  /** Answer with this Location header (a redirect, with a 3xx `status`). */
  location?: string;
}

export interface WorkloadOptions {
  /** Deployment/StatefulSet spec.replicas; DaemonSet desiredNumberScheduled. Default 3. */
  replicas?: number;
  paused?: boolean;
  /** StatefulSet/DaemonSet updateStrategy.type. Default RollingUpdate. */
  updateStrategy?: 'RollingUpdate' | 'OnDelete';
  behaviour?: RolloutBehaviour;
}

type Obj = Record<string, any>;
interface Stored {
  kind: FakeKind;
  obj: Obj;
  behaviour: RolloutBehaviour;
  /** Status snapshots of the current rollout, applied one per GET from `next`. */
  steps: Obj[];
  next: number;
}

export interface FakeKubeApi {
  url: string;
  port: number;
  token: string;
  requests: RecordedRequest[];
  /**
   * Also accept requests without credentials (a wrong token is still refused). kubectl (client-go)
   * does not send a bearer token to a plain-http server, so the kubectl test needs this.
   */
  allowAnonymous(on: boolean): void;
  /** Only the PATCH requests. */
  patches(): RecordedRequest[];
  add(kind: FakeKind, namespace: string, name: string, opts?: WorkloadOptions): Obj;
  get(kind: FakeKind, namespace: string, name: string): Obj | undefined;
  setBehaviour(kind: FakeKind, namespace: string, name: string, behaviour: RolloutBehaviour): void;
  fail(rule: FailureRule): void;
  clearFailures(): void;
  close(): Promise<void>;
}

const apiResources = [
  { name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', shortNames: ['deploy'] },
  { name: 'statefulsets', singularName: 'statefulset', namespaced: true, kind: 'StatefulSet', shortNames: ['sts'] },
  { name: 'daemonsets', singularName: 'daemonset', namespaced: true, kind: 'DaemonSet', shortNames: ['ds'] },
].map((r) => ({ ...r, verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], categories: ['all'] }));

const reasons: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 415: 'UnsupportedMediaType', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable' };

function statusBody(code: number, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: reasons[code] ?? 'Unknown', details, code };
}

/** Starts the fake on 127.0.0.1, port 0. Requests must carry `Authorization: Bearer <token>`. */
export async function startFakeKubeApi(opts: { token?: string } = {}): Promise<FakeKubeApi> {
  const token = opts.token ?? `fake-token-${randomUUID()}`;
  let anonymous = false;
  const requests: RecordedRequest[] = [];
  const store = new Map<string, Stored>();
  let failures: (FailureRule & { left: number; toSkip: number })[] = [];
  let resourceVersion = 1000;
  const key = (kind: FakeKind, ns: string, name: string) => `${kind}/${ns}/${name}`;
  let port = 0;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url ?? '/', 'http://fake');
      let body: unknown;
      try {
        body = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        body = undefined;
      }
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: u.pathname,
        query: Object.fromEntries(u.searchParams),
        contentType: req.headers['content-type'],
        accept: req.headers.accept,
        authorization: req.headers.authorization,
        userAgent: req.headers['user-agent'],
        body,
        rawBody,
      };
      requests.push(rec);
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
        rec.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(payload));
      };
      try {
        handle(req, rec, send);
      } catch (err) {
        send(500, statusBody(500, `fake: ${(err as Error).message}`));
      }
    });
  });

  function handle(req: IncomingMessage, rec: RecordedRequest, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): void {
    if (!(anonymous && req.headers.authorization === undefined) && req.headers.authorization !== `Bearer ${token}`) return send(401, statusBody(401, 'Unauthorized'));
    let failure: (typeof failures)[number] | undefined;
    for (const f of failures) {
      if (f.left <= 0 || (f.method && f.method !== rec.method) || !matches(f.path, rec.path)) continue;
      if (f.toSkip > 0) {
        f.toSkip -= 1;
        continue;
      }
      failure = f;
      break;
    }
    if (failure) {
      failure.left -= 1;
      return send(failure.status, statusBody(failure.status, failure.message ?? `fake: told to answer ${failure.status}`), failure.location ? { location: failure.location } : {});
    }
    const discovery = discoveryAnswer(rec.path, port);
    if (discovery && rec.method === 'GET') return send(200, discovery);

    const m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets|daemonsets)\/([^/]+)$/.exec(rec.path);
    if (!m) return send(404, statusBody(404, `the server could not find the requested resource (${rec.method} ${rec.path})`));
    const [, ns, plural, name] = m as unknown as [string, string, string, string];
    const kind = plurals[plural]!;
    const stored = store.get(key(kind, ns, name));
    if (!stored) return send(404, statusBody(404, `${plural}.apps "${name}" not found`, { name, group: 'apps', kind: plural }));

    if (rec.method === 'GET') {
      // A stalled rollout stops at its first in-progress snapshot; setBehaviour('complete') resumes it.
      const limit = stored.behaviour === 'stall' ? Math.min(2, stored.steps.length) : stored.steps.length;
      if (stored.next < limit) stored.obj.status = structuredClone(stored.steps[stored.next++]);
      return send(200, stored.obj);
    }
    if (rec.method === 'PATCH') {
      const type = (rec.contentType ?? '').split(';')[0]!.trim();
      if (type !== 'application/strategic-merge-patch+json' && type !== 'application/merge-patch+json') {
        if (type === 'application/json-patch+json' && !Array.isArray(rec.body)) {
          return send(400, statusBody(400, 'json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp'));
        }
        return send(415, statusBody(415, `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`));
      }
      if (!rec.body || typeof rec.body !== 'object' || Array.isArray(rec.body)) return send(400, statusBody(400, 'patch body must be a JSON object'));
      const beforeTemplate = JSON.stringify(stored.obj.spec?.template);
      const beforeSpec = JSON.stringify(stored.obj.spec);
      stored.obj = mergePatch(stored.obj, rec.body as Obj) as Obj;
      stored.obj.metadata.resourceVersion = String(++resourceVersion);
      if (JSON.stringify(stored.obj.spec) !== beforeSpec) stored.obj.metadata.generation += 1;
      if (JSON.stringify(stored.obj.spec?.template) !== beforeTemplate) startRollout(stored);
      return send(200, stored.obj);
    }
    return send(405, statusBody(405, `method ${rec.method} not supported by the fake`));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    requests,
    allowAnonymous(on) {
      anonymous = on;
    },
    patches: () => requests.filter((r) => r.method === 'PATCH'),
    add(kind, namespace, name, o = {}) {
      const obj = makeObject(kind, namespace, name, o, String(++resourceVersion));
      if (o.behaviour === 'deadline' && kind !== 'Deployment') throw new Error('fake: only Deployments have a progress deadline');
      store.set(key(kind, namespace, name), { kind, obj, behaviour: o.behaviour ?? 'complete', steps: [], next: 0 });
      return obj;
    },
    get: (kind, namespace, name) => store.get(key(kind, namespace, name))?.obj,
    setBehaviour(kind, namespace, name, behaviour) {
      const s = store.get(key(kind, namespace, name));
      if (!s) throw new Error(`fake: no ${kind} ${namespace}/${name}`);
      if (behaviour === 'deadline' && kind !== 'Deployment') throw new Error('fake: only Deployments have a progress deadline');
      s.behaviour = behaviour;
    },
    fail(rule) {
      failures.push({ ...rule, left: rule.times ?? Infinity, toSkip: rule.skip ?? 0 });
    },
    clearFailures() {
      failures = [];
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function matches(pattern: string | RegExp | undefined, path: string): boolean {
  if (pattern === undefined) return true;
  return typeof pattern === 'string' ? pattern === path : pattern.test(path);
}

/** Just enough discovery for kubectl's RESTMapper (legacy, non-aggregated form). */
function discoveryAnswer(path: string, port: number): Obj | undefined {
  switch (path) {
    case '/api':
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }] };
    case '/apis':
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [{ name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } }],
      };
    case '/api/v1':
      return { kind: 'APIResourceList', groupVersion: 'v1', resources: [] };
    case '/apis/apps/v1':
      return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'apps/v1', resources: apiResources };
    case '/version':
      return { major: '1', minor: '32', gitVersion: 'v1.32.0-fake', platform: 'linux/amd64' };
    default:
      return undefined;
  }
}

/**
 * RFC 7386 merge of maps, which is what a strategic merge patch does for the fields we patch
 * (annotations are a plain map; lists are replaced, which is wrong for strategic lists but unused here).
 */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function makeObject(kind: FakeKind, ns: string, name: string, o: WorkloadOptions, rv: string): Obj {
  const replicas = o.replicas ?? 3;
  const labels = { app: name };
  const template = {
    metadata: { labels },
    spec: { containers: [{ name, image: `registry.example/stario/${name}:1.0.0`, resources: {} }], restartPolicy: 'Always' },
  };
  const metadata = {
    name,
    namespace: ns,
    uid: randomUUID(),
    resourceVersion: rv,
    generation: 1,
    creationTimestamp: '2026-11-01T10:00:00Z',
    labels,
    annotations: kind === 'Deployment' ? { 'deployment.kubernetes.io/revision': '1' } : {},
  };
  const base = { apiVersion: 'apps/v1', kind, metadata };
  const strategyType = o.updateStrategy ?? 'RollingUpdate';
  switch (kind) {
    case 'Deployment':
      return {
        ...base,
        spec: {
          replicas,
          ...(o.paused ? { paused: true } : {}),
          selector: { matchLabels: labels },
          template,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
          revisionHistoryLimit: 10,
          progressDeadlineSeconds: 600,
        },
        status: deploymentSteady(1, replicas),
      };
    case 'StatefulSet':
      return {
        ...base,
        spec: {
          replicas,
          selector: { matchLabels: labels },
          template,
          serviceName: name,
          podManagementPolicy: 'OrderedReady',
          updateStrategy: strategyType === 'RollingUpdate' ? { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } : { type: 'OnDelete' },
          revisionHistoryLimit: 10,
        },
        status: { observedGeneration: 1, replicas, readyReplicas: replicas, currentReplicas: replicas, updatedReplicas: replicas, availableReplicas: replicas, currentRevision: `${name}-rev1`, updateRevision: `${name}-rev1`, collisionCount: 0 },
      };
    case 'DaemonSet':
      return {
        ...base,
        spec: {
          selector: { matchLabels: labels },
          template,
          updateStrategy: strategyType === 'RollingUpdate' ? { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } } : { type: 'OnDelete' },
          revisionHistoryLimit: 10,
        },
        status: { observedGeneration: 1, currentNumberScheduled: replicas, desiredNumberScheduled: replicas, numberMisscheduled: 0, numberReady: replicas, numberAvailable: replicas, updatedNumberScheduled: replicas },
      };
  }
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function deploymentSteady(generation: number, replicas: number): Obj {
  return {
    observedGeneration: generation,
    replicas,
    updatedReplicas: replicas,
    readyReplicas: replicas,
    availableReplicas: replicas,
    conditions: [
      { type: 'Available', status: 'True', lastUpdateTime: now(), lastTransitionTime: now(), reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' },
      { type: 'Progressing', status: 'True', lastUpdateTime: now(), lastTransitionTime: now(), reason: 'NewReplicaSetAvailable', message: 'ReplicaSet has successfully progressed.' },
    ],
  };
}

/** Queues the status snapshots the controller would publish, one per later GET. */
function startRollout(s: Stored): void {
  const gen: number = s.obj.metadata.generation;
  const name: string = s.obj.metadata.name;
  const old: Obj = structuredClone(s.obj.status);
  const steps: Obj[] = [old]; // first GET: the controller has not observed the new generation yet
  if (s.kind === 'Deployment') {
    const r: number = s.obj.spec.replicas ?? 1;
    const progressing = (reason: string, status = 'True', message = `ReplicaSet "${name}-${gen}" is progressing.`) => [
      old.conditions?.[0],
      { type: 'Progressing', status, lastUpdateTime: now(), lastTransitionTime: now(), reason, message },
    ];
    for (let i = 1; i <= r; i++) {
      steps.push({ observedGeneration: gen, replicas: r + 1, updatedReplicas: i, readyReplicas: r, availableReplicas: r, conditions: progressing('ReplicaSetUpdated') });
    }
    steps.push({ observedGeneration: gen, replicas: r, updatedReplicas: r, readyReplicas: r - 1, availableReplicas: r - 1, conditions: progressing('ReplicaSetUpdated') });
    steps.push(deploymentSteady(gen, r));
    if (s.behaviour === 'deadline') {
      steps.splice(3);
      const last = steps[2]!;
      steps.push({ ...last, conditions: progressing('ProgressDeadlineExceeded', 'False', `ReplicaSet "${name}-${gen}" has timed out progressing.`) });
    }
  } else if (s.kind === 'StatefulSet') {
    const r: number = s.obj.spec.replicas ?? 1;
    const base = { ...old, observedGeneration: gen, updateRevision: `${name}-rev${gen}` };
    for (let i = 1; i <= r; i++) {
      steps.push({ ...base, readyReplicas: r - 1, availableReplicas: r - 1, updatedReplicas: i - 1, currentReplicas: r - i });
      steps.push({ ...base, readyReplicas: r, availableReplicas: r, updatedReplicas: i, currentReplicas: r - i });
    }
    steps.push({ ...base, readyReplicas: r, availableReplicas: r, updatedReplicas: r, currentReplicas: r, currentRevision: `${name}-rev${gen}` });
  } else {
    const r: number = old.desiredNumberScheduled;
    for (let i = 1; i <= r; i++) {
      steps.push({ ...old, observedGeneration: gen, updatedNumberScheduled: i, numberAvailable: r - 1, numberReady: r - 1 });
    }
    steps.push({ ...old, observedGeneration: gen, updatedNumberScheduled: r, numberAvailable: r, numberReady: r });
  }
  s.steps = steps;
  s.next = 0;
}

/**
 * Writes a kubeconfig for `server` (http, so `insecure-skip-tls-verify: true`) with a bearer token
 * into a new temp dir and returns the file's path (remove its directory when done).
 * `extraContexts` adds contexts (name -> server URL) with the same user; `currentContext` picks one.
 */
export async function writeKubeconfig(
  server: string,
  token: string,
  opts: { contextName?: string; currentContext?: string; extraContexts?: Record<string, string>; namespace?: string } = {},
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'remediator-kube-'));
  const main = opts.contextName ?? 'fake';
  const all: Record<string, string> = { [main]: server, ...opts.extraContexts };
  const clusters = Object.entries(all).map(([name, url]) => `- name: ${name}\n  cluster:\n    server: ${url}\n    insecure-skip-tls-verify: true`);
  const contexts = Object.keys(all).map(
    (name) => `- name: ${name}\n  context:\n    cluster: ${name}\n    user: remediator\n    namespace: ${opts.namespace ?? 'default'}`,
  );
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    ...clusters,
    'users:',
    '- name: remediator',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    ...contexts,
    `current-context: ${opts.currentContext ?? main}`,
    'preferences: {}',
    '',
  ].join('\n');
  const path = join(dir, 'kubeconfig');
  await writeFile(path, text, { mode: 0o600 });
  return path;
}
