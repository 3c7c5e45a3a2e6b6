import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { SHUTDOWN_MARGIN_MS } from '../../src/lifecycle.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { loadRules } from '../../src/rules/load.js';
import { closeServer, listenLoopback } from '../fakes/loopback.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const files = ['deploy/remediator.yaml', 'deploy/rbac.yaml'];
type Obj = Record<string, any>;

async function manifests(): Promise<Obj[]> {
  const out: Obj[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(await readFile(join(root, f), 'utf8'))) {
      assert.deepEqual(doc.errors, [], f);
      const o = doc.toJS() as Obj | null;
      if (o) out.push(o);
    }
  }
  return out;
}

describe('deploy/ manifests', () => {
  let objs: Obj[];
  const of = (kind: string) => objs.filter((o) => o.kind === kind);
  const named = (kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name)!;
  before(async () => {
    objs = await manifests();
  });

  test('both roles: non-root, read-only root filesystem, no capabilities, seccomp, resources, probes, secrets by reference', () => {
    const deployments = of('Deployment');
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['remediator-receiver', 'remediator-worker']);
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      const where = d.metadata.name;
      assert.equal(pod.securityContext.runAsNonRoot, true, where);
      assert.ok(pod.securityContext.runAsUser > 0, where);
      assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault', where);
      for (const c of pod.containers) {
        assert.equal(c.securityContext.readOnlyRootFilesystem, true, where);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false, where);
        assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], where);
        assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, where);
        const ports = new Set((c.ports as Obj[]).map((p) => p.name));
        for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
          assert.ok(ports.has(c[probe].httpGet.port), `${where} ${probe} on a declared port`);
        }
        assert.equal(c.livenessProbe.httpGet.path, '/healthz');
        assert.equal(c.readinessProbe.httpGet.path, '/readyz');
        // Secrets come from the Secret; no literal value of a secret variable in the manifest.
        assert.deepEqual(c.envFrom, [{ secretRef: { name: 'remediator' } }], where);
        for (const e of c.env as Obj[]) assert.doesNotMatch(e.name, /TOKEN|PASSWORD|ROUTING_KEY|DATABASE_URL/, `${where} ${e.name}`);
        assert.ok((c.volumeMounts as Obj[]).some((v) => v.mountPath === '/etc/remediator/rules' && v.readOnly), where);
      }
      assert.ok((pod.volumes as Obj[]).some((v) => v.configMap?.name === 'remediator-rules'), where);
      // A disruption budget covers each role.
      assert.ok(of('PodDisruptionBudget').some((p) => JSON.stringify(p.spec.selector.matchLabels) === JSON.stringify(d.spec.selector.matchLabels)), `${where} has a PDB`);
    }
    // The process exits by SHUTDOWN_GRACE + a margin (src/lifecycle.ts): the kubelet must wait longer.
    const worker = named('Deployment', 'remediator-worker').spec.template.spec;
    const grace = Number((worker.containers[0].env as Obj[]).find((e) => e.name === 'SHUTDOWN_GRACE')!.value);
    assert.ok(worker.terminationGracePeriodSeconds * 1000 > grace + SHUTDOWN_MARGIN_MS);
    assert.equal((worker.containers[0].env as Obj[]).find((e) => e.name === 'METRICS_PORT')!.value, String(worker.containers[0].ports[0].containerPort));
  });

  test('the receiver has no API token; the worker\'s Roles grant get and patch on exactly the workloads the shipped rules name', async () => {
    const receiver = named('Deployment', 'remediator-receiver').spec.template.spec;
    assert.equal(receiver.automountServiceAccountToken, false);
    assert.equal(named('ServiceAccount', receiver.serviceAccountName).automountServiceAccountToken, false);
    const workerSa = named('Deployment', 'remediator-worker').spec.template.spec.serviceAccountName;
    assert.equal(of('ClusterRole').length + of('ClusterRoleBinding').length, 0);
    for (const b of of('RoleBinding')) assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: workerSa, namespace: 'remediator' }]);

    const table = await loadRules(join(root, 'rules'), buildRegistry());
    const expected = new Map<string, Obj[]>();
    for (const t of table.targets.values()) {
      if (t.kind !== 'kubernetes') continue;
      const cfg = t.config as { namespaces: string[]; names: string[] | string; kinds: string[] };
      assert.ok(Array.isArray(cfg.names), 'shipped kubernetes targets list names (resourceNames cannot hold a pattern)');
      for (const ns of cfg.namespaces) {
        const rules = expected.get(ns) ?? [];
        for (const kind of cfg.kinds) rules.push({ apiGroups: ['apps'], resources: [`${kind.toLowerCase()}s`], resourceNames: cfg.names, verbs: ['get', 'patch'] });
        expected.set(ns, rules);
      }
    }
    assert.ok(expected.size > 0, 'the shipped rules restart something');
    const roles = of('Role');
    assert.deepEqual(roles.map((r) => r.metadata.namespace).sort(), [...expected.keys()].sort());
    for (const r of roles) {
      assert.deepEqual(r.rules, expected.get(r.metadata.namespace), `Role in ${r.metadata.namespace}`);
      const binding = of('RoleBinding').find((b) => b.metadata.namespace === r.metadata.namespace && b.roleRef.name === r.metadata.name);
      assert.ok(binding, `Role in ${r.metadata.namespace} is bound`);
    }
  });
});

/**
 * kubectl apply --dry-run=client still asks a server for discovery (which kinds exist) and for the
 * live objects. No cluster here: a loopback server answers discovery for the kinds deploy/ uses and
 * 404 for every object, so kubectl parses every document, maps it, and reports "created (dry run)".
 * --validate=false: schema validation would need the server's OpenAPI.
 */
function discovery(): Record<string, Obj> {
  const list = (groupVersion: string, resources: [string, string, boolean][]) => ({
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion,
    resources: resources.map(([name, kind, namespaced]) => ({ name, singularName: '', namespaced, kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] })),
  });
  const group = (name: string) => ({ name, versions: [{ groupVersion: `${name}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' } });
  return {
    '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
    '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [group('apps'), group('policy'), group('rbac.authorization.k8s.io')] },
    '/api/v1': list('v1', [['configmaps', 'ConfigMap', true], ['services', 'Service', true], ['serviceaccounts', 'ServiceAccount', true], ['secrets', 'Secret', true], ['namespaces', 'Namespace', false]]),
    '/apis/apps/v1': list('apps/v1', [['deployments', 'Deployment', true]]),
    '/apis/policy/v1': list('policy/v1', [['poddisruptionbudgets', 'PodDisruptionBudget', true]]),
    '/apis/rbac.authorization.k8s.io/v1': list('rbac.authorization.k8s.io/v1', [['roles', 'Role', true], ['rolebindings', 'RoleBinding', true]]),
    '/version': { major: '1', minor: '32', gitVersion: 'v1.32.0-fake' },
  };
}

function kubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('kubectl apply --dry-run=client', { skip: kubectl() ? false : 'kubectl not installed: manifests not checked by kubectl' }, () => {
  let server: Server;
  let url: string;
  let home: string;
  before(async () => {
    const answers = discovery();
    ({ server, url } = await listenLoopback((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const body = req.method === 'GET' ? answers[path] : undefined;
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body ?? { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `${path} not found` }));
    }));
    home = await mkdtemp(join(tmpdir(), 'remediator-kubectl-'));
  });
  after(async () => {
    await closeServer(server);
    await rm(home, { recursive: true, force: true });
  });

  test('accepts the rules ConfigMap made from rules/ and every object in deploy/', async () => {
    const env = { ...process.env, HOME: home, KUBECONFIG: join(home, 'none') };
    const cm = await run('kubectl', ['create', 'configmap', 'remediator-rules', '-n', 'remediator', '--from-file=rules/', '--dry-run=client', '-o', 'yaml'], { cwd: root, env });
    await writeFile(join(home, 'rules-configmap.yaml'), cm.stdout);
    const args = ['apply', '--dry-run=client', '--validate=false', `--server=${url}`, '-f', join(home, 'rules-configmap.yaml'), ...files.flatMap((f) => ['-f', f])];
    const { stdout } = await run('kubectl', args, { cwd: root, env });
    const objs = await manifests();
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, objs.length + 1, stdout);
    assert.match(stdout, /^configmap\/remediator-rules created \(dry run\)$/m);
    for (const o of objs) {
      const resource = `${o.kind.toLowerCase()}${o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : ''}`;
      assert.match(stdout, new RegExp(`^${resource.replace(/\./g, '\\.')}/${o.metadata.name} created \\(dry run\\)$`, 'm'), stdout);
    }
  });
});
