import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { Redis } from 'ioredis';
import { createLogger, silentLogger } from '../../src/log.js';
import { PagerDutyClient } from '../../src/notifiers/pagerduty/client.js';
import { stateEvent } from '../../src/notifiers/pagerduty/events.js';
import { createSlackClient, slackCall } from '../../src/notifiers/slack/client.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { breakerReset } from '../../src/remediations/breaker-reset.js';
import { PermanentError } from '../../src/core/errors.js';
import { loadKubeConfig } from '../../src/remediations/kube.js';
import { numberRotation } from '../../src/remediations/number-rotation.js';
import { workerRestart } from '../../src/remediations/worker-restart.js';
import { compileRules } from '../../src/rules/load.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { startFakeKubeApi, writeKubeconfig } from '../fakes/kube-api.js';
import { closeServer, listenLoopback } from '../fakes/loopback.js';
import { alert, makeContext } from '../helpers/context.js';
import { testSchema } from '../helpers/pg.js';
import { eventually, REDIS_URL, startTestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/**
 * No outbound call follows a redirect (src/core/redirect.ts). Each client is pointed at a server
 * answering 302/307 with a Location on a decoy server that would answer what the caller hopes to
 * hear ({"state":"closed"}, 200, 202); the decoy must receive nothing, and the call must fail for
 * good with an error naming the Location.
 */

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  body: string;
}

/** A loopback server that records requests and answers each with `answer(req)`. */
async function recorder(answer: (r: Seen) => { status: number; headers?: Record<string, string>; body?: unknown }) {
  const seen: Seen[] = [];
  const { server, url } = await listenLoopback((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const r: Seen = { method: req.method ?? '', path: req.url ?? '', authorization: (req.headers as IncomingHttpHeaders).authorization, body };
      seen.push(r);
      const a = answer(r);
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(JSON.stringify(a.body ?? {}));
    });
  });
  return { server, url, seen };
}

/** What every client hopes to hear: a closed breaker, an ok, an accepted event. */
const decoyAnswer = () => ({ status: 200, body: { state: 'closed', ok: true, status: 'success', incidents: [], channel: 'C1', ts: '1.1' } });

let decoy: Awaited<ReturnType<typeof recorder>>;
const servers: Server[] = [];
before(async () => {
  decoy = await recorder(decoyAnswer);
});
after(async () => {
  await Promise.all([decoy.server, ...servers].map((s) => closeServer(s)));
});

/** A server answering every request with `status` and Location `location(path)`. */
async function redirector(status: number, location: (path: string) => string) {
  const r = await recorder((req) => ({ status, headers: { location: location(req.path) }, body: { state: 'closed' } }));
  servers.push(r.server);
  return r;
}

const isRedirected = (location: string) => (err: unknown) => {
  assert.ok(err instanceof PermanentError, `expected PermanentError, got ${String(err)}`);
  assert.equal(err.reason, 'redirected', err.message);
  assert.ok(err.message.includes(location), `${err.message} names ${location}`);
  assert.match(err.message, /redirect .* refused/);
  return true;
};

describe('remediations never follow a redirect', () => {
  test('breaker status 302 to another host: the other host is not read, the run fails (not "already closed")', async () => {
    const status = await redirector(302, () => `${decoy.url}/api/admin/circuit-breaker-status?sig=secret-sig`);
    const before = decoy.seen.length;
    const ctx = makeContext(breakerReset, {
      target: { status: { url: `${status.url}/api/admin/circuit-breaker-status`, token_env: 'T' }, reset: { url: `${status.url}/reset`, token_env: 'T' } },
      deps: { env: { T: 'target-token' } },
    });
    await assert.rejects(breakerReset.run(ctx), isRedirected(`${decoy.url}/api/admin/circuit-breaker-status`));
    assert.equal(decoy.seen.length - before, 0, 'nothing sent to the Location');
    assert.equal(status.seen.length, 1);
    await assert.rejects(breakerReset.run(ctx), (err: Error) => !err.message.includes('secret-sig'), 'the query of the Location is not repeated');
  });

  test('reset 307 to another host: the reset is not POSTed there', async () => {
    const breaker = await new FakeBreaker().start();
    try {
      const reset = await redirector(307, () => `${decoy.url}/api/admin/reset-circuit-breaker`);
      const before = decoy.seen.length;
      const ctx = makeContext(breakerReset, {
        target: { status: { url: `${breaker.url}/api/admin/circuit-breaker-status`, token_env: 'T' }, reset: { method: 'POST', url: `${reset.url}/api/admin/reset-circuit-breaker`, token_env: 'T' } },
        params: { poll_interval: '10ms', verify_timeout: '1s' },
        deps: { env: { T: breaker.token } },
      });
      await assert.rejects(breakerReset.run(ctx), isRedirected(`${decoy.url}/api/admin/reset-circuit-breaker`));
      assert.deepEqual(decoy.seen.slice(before), []);
      assert.deepEqual(reset.seen.map((r) => r.method), ['POST']);
      assert.equal(breaker.state, 'open');
    } finally {
      await breaker.stop();
    }
  });

  test('same-host 307 to an undeclared path: the token is not sent to that path', async () => {
    const host = await recorder((r) =>
      r.path === '/status' ? { status: 200, body: { state: 'open' } } : r.path === '/reset' ? { status: 307, headers: { location: '/undeclared/reset' } } : { status: 200, body: { ok: true } },
    );
    servers.push(host.server);
    const ctx = makeContext(breakerReset, {
      target: { status: { url: `${host.url}/status`, token_env: 'T' }, reset: { method: 'POST', url: `${host.url}/reset`, token_env: 'T' } },
      deps: { env: { T: 'target-token' } },
    });
    await assert.rejects(breakerReset.run(ctx), isRedirected(`${host.url}/undeclared/reset`));
    assert.deepEqual(host.seen.map((r) => `${r.method} ${r.path}`), ['GET /status', 'POST /reset']);
  });

  test('number-rotation hook 307 to another host: not delivered there, not recorded as delivered', async () => {
    const db = await testSchema('redir');
    try {
      const pool = 'redirect-senders';
      for (const [id, state] of [['r1', 'active'], ['r2', 'spare']]) {
        await db.pool.query(`INSERT INTO "${db.schema}".sender_numbers (pool, provider_id, number, state) VALUES ($1, $2, $3, $4)`, [pool, `${id}-${randomBytes(3).toString('hex')}`, `+9198${randomBytes(4).readUInt32BE() % 1e8}`, state]);
      }
      const active = (await db.pool.query(`SELECT provider_id FROM "${db.schema}".sender_numbers WHERE pool = $1 AND state = 'active'`, [pool])).rows[0].provider_id;
      const hook = await redirector(307, () => `${decoy.url}/api/sender-numbers`);
      const before = decoy.seen.length;
      const ctx = makeContext(numberRotation, {
        params: { phone_number_id: active },
        target: { pool, hook: { url: `${hook.url}/api/sender-numbers`, token_env: 'HOOK_TOKEN' } },
        alert: alert({ alertname: 'WhatsAppNumberRateLimited', phone_number_id: active }),
        deps: { pool: db.pool, schema: db.schema, env: { HOOK_TOKEN: 'hook-token' } },
      });
      await assert.rejects(numberRotation.run(ctx), isRedirected(`${decoy.url}/api/sender-numbers`));
      assert.deepEqual(decoy.seen.slice(before), []);
      assert.equal(hook.seen.length, 1);
      const rot = (await db.pool.query(`SELECT hook_delivered_at, hook_last_error FROM "${db.schema}".number_rotations WHERE pool = $1`, [pool])).rows[0];
      assert.equal(rot.hook_delivered_at, null);
      assert.match(rot.hook_last_error, /redirect to .* refused/);
      assert.ok(!ctx.steps.some((s) => s.message.startsWith('Hook delivered')));
    } finally {
      await db.drop();
    }
  });

  test('Kubernetes API 302 on read and 307 on patch: client-node does not follow either', async () => {
    const fake = await startFakeKubeApi();
    const kubeconfig = await writeKubeconfig(fake.url, fake.token, { namespace: 'stario' });
    try {
      fake.add('Deployment', 'stario', 'video-gen-worker', { replicas: 1 });
      const ctx = () =>
        makeContext(workerRestart, {
          params: { namespace: 'stario', name: 'video-gen-worker', poll_interval: '10ms', wait_timeout: '2s' },
          target: { namespaces: ['stario'], names: ['video-gen-worker'] },
          deps: { kubeConfig: () => loadKubeConfig({ KUBECONFIG: kubeconfig }) },
        });
      const before = decoy.seen.length;
      fake.fail({ method: 'GET', status: 302, times: 1, location: `${decoy.url}/apis/apps/v1/namespaces/stario/deployments/video-gen-worker` });
      await assert.rejects(workerRestart.run(ctx()), isRedirected(`${decoy.url}/apis/apps/v1/namespaces/stario/deployments/video-gen-worker`));
      fake.clearFailures();
      fake.fail({ method: 'PATCH', status: 307, times: 1, location: `${decoy.url}/apis/apps/v1/namespaces/stario/deployments/video-gen-worker` });
      await assert.rejects(workerRestart.run(ctx()), isRedirected(decoy.url));
      assert.deepEqual(decoy.seen.slice(before), []);
      assert.equal(fake.get('Deployment', 'stario', 'video-gen-worker')!.spec.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'], undefined);
    } finally {
      await fake.close();
      await rm(dirname(kubeconfig), { recursive: true, force: true });
    }
  });
});

describe('notifiers and the Alertmanager API never follow a redirect', () => {
  const signal = new AbortController().signal;

  test('PagerDuty Events API 307 and REST API 302: neither the routing key nor the token goes to the Location', async () => {
    const events = await redirector(307, () => `${decoy.url}/v2/enqueue`);
    const rest = await redirector(302, (p) => `${decoy.url}${p}`);
    const client = new PagerDutyClient({ eventsUrl: events.url, apiUrl: rest.url, apiToken: 'pd-api-token', from: 'ops@example.com' });
    const before = decoy.seen.length;
    await assert.rejects(client.enqueue(stateEvent('acknowledge', 'dedup-1'), randomBytes(16).toString('hex'), signal, silentLogger), isRedirected(`${decoy.url}/v2/enqueue`));
    await assert.rejects(client.note('dedup-1', 'a note', signal), isRedirected(`${decoy.url}/incidents`));
    assert.deepEqual(decoy.seen.slice(before), []);
    assert.equal(events.seen.length, 1);
    assert.equal(rest.seen.length, 1);
  });

  test('Slack Web API 302: the bot token does not go to the Location', async () => {
    const slack = await redirector(302, (p) => `${decoy.url}${p}`);
    const client = createSlackClient({ token: 'xoxb-redirect-test', apiUrl: `${slack.url}/api/` });
    const before = decoy.seen.length;
    await assert.rejects(slackCall('chat.postMessage', () => client.chat.postMessage({ channel: '#ops', text: 'x' })), isRedirected(`${decoy.url}/api/chat.postMessage`));
    assert.deepEqual(decoy.seen.slice(before), []);
    assert.deepEqual(slack.seen.map((r) => r.path), ['/api/chat.postMessage']);
  });

  test('Alertmanager API 302: reconciliation counts it as failed, names the Location, and asks nobody else', async () => {
    const am = await redirector(302, (p) => `${decoy.url}${p}`);
    const lines: { msg: string; error?: string }[] = [];
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const table = compileRules([{ file: 'r.yml', text: 'rules:\n  - name: n\n    match: [\'alertname="X"\']\n    action: notify\n' }], buildRegistry());
      const reconciler = new Reconciler({
        urls: [`http://user:pw@${am.url.slice('http://'.length)}`], receiver: 'remediate', intervalMs: 60_000, log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l))),
        deps: { table: () => table, redis, prefix: `redir-${randomBytes(3).toString('hex')}`, dryRun: false, log: silentLogger },
      });
      const before = decoy.seen.length;
      const result = await reconciler.runOnce();
      assert.equal(result.failed, 1);
      assert.deepEqual(decoy.seen.slice(before), []);
      const warn = lines.find((l) => /Alertmanager API not reachable/.test(l.msg));
      assert.ok(warn?.error?.includes(`${decoy.url}/api/v2/alerts`), JSON.stringify(lines));
    } finally {
      redis.disconnect();
    }
  });
});

test('through the service: a breaker status redirect fails the run with reason redirected (never "already closed")', async () => {
  const status = await redirector(302, () => `${decoy.url}/api/admin/circuit-breaker-status`);
  const svc = await startTestService({
    env: { T: 'target-token' },
    rules: {
      'r.yml': `
targets:
  svc:
    kind: http-breaker
    status: { url: '${status.url}/api/admin/circuit-breaker-status', token_env: T }
    reset: { method: POST, url: '${status.url}/api/admin/reset-circuit-breaker', token_env: T }
rules:
  - name: reset
    match: ['alertname="Open"']
    action: breaker-reset
    target: svc
`,
    },
  });
  try {
    const before = decoy.seen.length;
    assert.equal((await postWebhook(svc.url, firingWebhook('Open', 'ab00000000000001'))).status, 200);
    const s = `"${svc.config.DATABASE_SCHEMA}"`;
    const run = await eventually(async () => (await svc.pool.query(`SELECT state, attempts, error_reason, error_message FROM ${s}.runs WHERE state IN ('failed', 'skipped', 'succeeded')`)).rows[0], 'the run ended');
    assert.equal(run.state, 'failed');
    assert.equal(run.error_reason, 'redirected');
    assert.equal(run.attempts, 1, 'permanent: not retried');
    assert.ok(String(run.error_message).includes(`${decoy.url}/api/admin/circuit-breaker-status`), run.error_message);
    assert.deepEqual(decoy.seen.slice(before), []);
  } finally {
    await svc.close();
  }
});
