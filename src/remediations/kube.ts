import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { isIPv6 } from 'node:net';
import { createRequire } from 'node:module';
import type { ConfigurationOptions, KubeConfig, ObservableMiddleware } from '@kubernetes/client-node';
import { PermanentError, TransientError } from '../core/errors.js';

type ClientNode = typeof import('@kubernetes/client-node');
let loaded: ClientNode | undefined;
/**
 * @kubernetes/client-node, loaded on first use: it is about 75 MiB of RSS once imported, which
 * every receiver and every worker without a Kubernetes rule would carry for nothing. Loaded
 * synchronously (require of an ES module, Node >= 20.19) so callers stay as they were.
 */
export function k8s(): ClientNode {
  return (loaded ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientNode);
}

/** Loads client-node ahead of its first use, as an ES module import (lighter than require under tsx). */
export async function preloadK8s(): Promise<void> {
  loaded ??= await import('@kubernetes/client-node');
}

/**
 * Kubernetes client plumbing shared by remediations: building a KubeConfig, picking a context,
 * making requests abortable, and translating API errors into the error taxonomy.
 * Uses @kubernetes/client-node 1.4 (2.x crashes on import under Node 20).
 */

/** Where a pod's service-account credentials are mounted. */
export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Builds the KubeConfig src/service.ts hands to remediations (lazily: only rules that touch Kubernetes
 * need one). Order as kubectl and client-node's loadFromDefault: `KUBECONFIG` (one or more files,
 * joined by ':'; the first file's current-context wins), else the in-cluster service account
 * (KUBERNETES_SERVICE_HOST/PORT + token + CA). Unlike loadFromDefault there is no silent fallback to
 * ~/.kube/config or http://localhost:8080: a service should act on the cluster it was told to.
 * Reads `env` rather than process.env so tests and src/service.ts decide.
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv, opts: { serviceAccountDir?: string } = {}): KubeConfig {
  const kc = new (k8s().KubeConfig)();
  const files = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f.length > 0);
  if (files.length > 0) {
    kc.loadFromFile(files[0]!);
    for (const file of files.slice(1)) {
      const more = new (k8s().KubeConfig)();
      more.loadFromFile(file);
      kc.mergeConfig(more, true);
    }
    checkCluster(kc, `KUBECONFIG ${env.KUBECONFIG}`);
    return kc;
  }
  const dir = opts.serviceAccountDir ?? serviceAccountDir;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host && port && existsSync(join(dir, 'token'))) {
    // As KubeConfig.loadFromCluster, but from `env`: the token is read per request by client-node's
    // tokenFile provider, so rotated (bound) service-account tokens are picked up.
    kc.loadFromOptions({
      clusters: [{ name: 'inCluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
      users: [{ name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } }],
      contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser' }],
      currentContext: 'inClusterContext',
    });
    return kc;
  }
  throw new Error(
    'no Kubernetes configuration: set KUBECONFIG, or run in a pod with a service account (KUBERNETES_SERVICE_HOST and a token in ' + dir + ')',
  );
}

/**
 * Fails early, with the reason, where client-node would only fail at the first request: no cluster
 * for the current context, or an http:// server without `insecure-skip-tls-verify: true` (the
 * client refuses plain HTTP unless skipTLSVerify is set).
 */
function checkCluster(kc: KubeConfig, where: string): void {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${where}: context ${JSON.stringify(kc.getCurrentContext())} names no cluster`);
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error(`${where}: cluster ${cluster.name} uses plain http (${cluster.server}) without insecure-skip-tls-verify: true; client-node refuses that`);
  }
}

/** A copy of `kc` whose current context is `name` (the shared config is never mutated). */
export function withContext(kc: KubeConfig, name: string): KubeConfig {
  if (!kc.getContextObject(name)) {
    const known = kc.getContexts().map((c) => c.name).join(', ');
    throw new PermanentError('bad_params', `kubeconfig has no context ${JSON.stringify(name)} (known: ${known || 'none'})`);
  }
  const copy = new (k8s().KubeConfig)();
  copy.loadFromOptions({ clusters: kc.getClusters(), users: kc.getUsers(), contexts: kc.getContexts(), currentContext: name });
  try {
    checkCluster(copy, 'kubeconfig');
  } catch (err) {
    throw new PermanentError('bad_params', (err as Error).message);
  }
  return copy;
}

/**
 * Request options that abort the request when `signal` aborts (client-node has no request
 * timeout of its own: pass a deadline's signal, see src/core/deadline.ts). Pass the result to
 * setHeaderOptions to add headers.
 */
export function abortable(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (req) => {
      req.setSignal(signal);
      return new (k8s().Observable)(Promise.resolve(req));
    },
    post: (res) => new (k8s().Observable)(Promise.resolve(res)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** The `message` of a Kubernetes Status body (ApiException.body is the raw response text). */
function statusMessage(body: unknown): string | undefined {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim().slice(0, 300) || undefined;
    }
  }
  const msg = (parsed as { message?: unknown } | null)?.message;
  return typeof msg === 'string' ? msg : undefined;
}

/**
 * Translates a failed API call into the taxonomy: 404 not_found, 401/403 forbidden (permanent);
 * 408/429/5xx and network errors transient; any other 4xx bad_request (permanent: sending the same
 * request again cannot succeed). Errors already in the taxonomy pass through.
 */
export function kubeError(err: unknown, what: string): PermanentError | TransientError {
  if (err instanceof PermanentError || err instanceof TransientError) return err;
  // Without client-node loaded, no Kubernetes call was made: the error cannot be one of its exceptions.
  if (loaded && err instanceof loaded.ApiException) {
    const code = err.code;
    const text = `${what}: HTTP ${code}${statusMessage(err.body) ? `: ${statusMessage(err.body)}` : ''}`;
    const details = { status: code };
    if (code === 404) return new PermanentError('not_found', text, details);
    if (code === 401 || code === 403) return new PermanentError('forbidden', text, details);
    if (code === 408 || code === 504) return new TransientError('timeout', text, details);
    if (code === 429 || code >= 500) return new TransientError('unavailable', text, details);
    return new PermanentError('bad_request', text, details);
  }
  const e = err as { name?: string; message?: string; code?: string };
  if (e?.name === 'AbortError') return new TransientError('timeout', `${what}: request aborted (timeout)`);
  return new TransientError('unavailable', `${what}: ${e?.message ?? String(err)}`, e?.code ? { code: e.code } : {});
}
