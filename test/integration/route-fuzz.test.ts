import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import type { Express } from 'express';
import { createApp, type AppDeps } from '../../src/app.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { prng } from '../helpers/fuzz.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * Every route of the HTTP app, fuzzed: hostile path parameters (bad %-escapes, NUL, 2,000
 * characters), odd query strings, wrong methods, every kind of credential, and bodies that are too
 * large, malformed, deeply nested, in an unsupported charset or encoding. A client's mistake is a
 * 4xx, quietly: no 5xx and no error-level log line. Loopback only, bounded (a few hundred requests).
 */

/** Every [method, path] the app routes, read from its router (so a new route is fuzzed too). */
function routesOf(app: Express): { method: string; path: string }[] {
  type Layer = { rawPath?: string; route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: Layer[]; router?: { stack: Layer[] }; _router?: { stack: Layer[] } } };
  const out: { method: string; path: string }[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const l of stack) {
      const sub = l.handle?.stack ?? l.handle?.router?.stack ?? l.handle?._router?.stack; // a Router, or a mounted app (bull-board's)
      if (l.route) {
        for (const p of [l.route.path].flat()) for (const m of Object.keys(l.route.methods)) out.push({ method: m.toUpperCase(), path: prefix + p });
      } else if (sub) walk(sub, prefix + (l.rawPath && l.rawPath !== '/' ? l.rawPath : ''));
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  const seen = new Set<string>();
  return out.filter((r) => !r.method.startsWith('_') && !seen.has(`${r.method} ${r.path}`) && seen.add(`${r.method} ${r.path}`));
}

/** The app as the service builds it, for its routes only (never listens, never called). */
function appForRoutes(): Express {
  const stub = new Proxy({}, { get: () => () => undefined });
  return createApp({
    metrics: createMetrics(), queues: () => [], log: silentLogger, table: () => undefined, auth: {}, maxBytes: 1 << 20, prefix: 'x', adminToken: 'x',
    redis: stub, pool: stub, audit: stub, schema: 'x', operator: { store: stub, audit: stub, approvals: stub, now: () => new Date() },
    slackSigningSecret: 'x', pagerDutyWebhookSecret: 'x',
  } as unknown as AppDeps);
}

const PARAMS = ['%E0%A4%A', '%', '%ZZ', '%00', '%C0%AF', 'x'.repeat(2000), '..%2F..%2Fetc%2Fpasswd', '%F0%9F%98%80', 'job-1', "'%3B DROP TABLE runs%3B--", '%0d%0aSet-Cookie:%20x=y', '-1', 'aGVsbG8'];
const QUERIES = ['', '?limit=-1', '?limit=abc&limit=2', '?cursor=%E0%A4%A', '?cursor=garbage', '?state=a&state=b', '?limit[]=1', `?x=${'y'.repeat(4000)}`, '?%', '?rule=%00&target[a]=1', '?state=failed&limit=100000', '?queueName=%E0%A4%A&status=x'];
const big = 'x'.repeat(2 * 1024 * 1024);
const deep = '['.repeat(50_000) + ']'.repeat(50_000);
const BODIES: { type?: string; encoding?: string; body: string | Uint8Array }[] = [
  { type: 'application/json', body: big },
  { type: 'application/x-www-form-urlencoded', body: `token=${'a'.repeat(5000)}` },
  { type: 'application/x-www-form-urlencoded', body: `payload=${encodeURIComponent(big)}` },
  { type: 'application/x-www-form-urlencoded; charset=koi8-r', body: 'token=%F4%C5%D3%D4' },
  { type: 'application/json; charset=utf-32', body: '{}' },
  { type: 'text/plain', body: big },
  { body: big },
  { type: 'application/json', body: '{"scope":' },
  { type: 'application/json', body: deep },
  { type: 'application/json', body: '{"scope":"all","reason":"fuzz","by":"\\ud800","until":"\\u0000"}' },
  { type: 'application/json', body: '{"quarantine":"@@@","by":{"a":1}}' },
  { type: 'application/json', body: '["not","an","object"]' },
  { type: 'application/json', body: 'null' },
  { type: 'application/json', encoding: 'gzip', body: 'not gzip at all' },
  { type: 'application/json', encoding: 'gzip', body: gzipSync(Buffer.from(big)) },
  { type: 'application/json', encoding: 'compress', body: '{}' },
  { type: 'application/json', encoding: 'br', body: 'garbage' },
  { type: 'multipart/form-data; boundary=x', body: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--' },
  { type: 'application/x-www-form-urlencoded', body: 'payload=%7B%22type%22%3A%22block_actions%22%7D&payload=x' },
  { body: new Uint8Array(Array.from({ length: 1000 }, (_, i) => (i * 37) % 256)) },
];
const AUTHS: Record<string, string>[] = [
  {},
  { authorization: 'Bearer test-admin-token' },
  { authorization: 'Bearer test-admin-token' },
  { authorization: 'Bearer test-webhook-token' },
  { authorization: 'Bearer wrong' },
  { authorization: 'Basic %%%garbage' },
  { authorization: `Bearer ${'t'.repeat(5000)}` },
  { cookie: 'remediator_session=garbage.%E0%A4%A' },
  { 'x-slack-signature': 'v0=00', 'x-slack-request-timestamp': '1' },
  { 'x-pagerduty-signature': 'v1=zz' },
];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];

let svc: TestService;
const lines: { level: string; msg: string; [k: string]: unknown }[] = [];
before(async () => {
  svc = await startTestService({
    rules: { 'r.yml': "rules:\n  - name: tell\n    match: ['alertname=\"Fuzz\"']\n    action: notify\n" },
    env: { SLACK_SIGNING_SECRET: 'fuzz-slack-secret', PAGERDUTY_WEBHOOK_SECRET: 'fuzz-pd-secret', LOG_LEVEL: 'debug' },
    log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l))),
  });
});
after(async () => {
  await svc.close();
});

test('a fuzz of every route answers 0 5xx and logs no error', async () => {
  const routes = routesOf(appForRoutes());
  const names = routes.map((r) => `${r.method} ${r.path}`);
  // The enumeration itself must work: these are there whatever else is added later.
  for (const r of ['POST /webhooks/alertmanager', 'GET /api/runs/:jobId', 'POST /api/pause', 'POST /slack/interactions', 'POST /webhooks/pagerduty', 'POST /ui/login', 'GET /ui/runs/:jobId', 'GET /ui/queues/api/queues']) {
    assert.ok(names.includes(r), `${r} in ${names.join(', ')}`);
  }
  routes.push({ method: 'GET', path: '/no/such/:thing' });

  const rnd = prng(20261204);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const cases: { method: string; url: string; headers: Record<string, string>; body?: string | Uint8Array }[] = [];
  const PER_ROUTE = 24;
  for (const r of routes) {
    for (let i = 0; i < PER_ROUTE; i++) {
      const path = r.path.replace(/\{?\*[A-Za-z]+\}?|:[A-Za-z]+/g, () => pick(PARAMS)) + (rnd() < 0.15 ? `/${pick(PARAMS)}` : '');
      const method = rnd() < 0.7 ? r.method : pick(METHODS);
      const headers: Record<string, string> = { ...pick(AUTHS) };
      let body: string | Uint8Array | undefined;
      // The first cases of a route send each hostile body once; then at random.
      if (method !== 'GET' && method !== 'HEAD' && (i < BODIES.length || rnd() < 0.7)) {
        const b = i < BODIES.length ? BODIES[i]! : pick(BODIES);
        if (b.type) headers['content-type'] = b.type;
        if (b.encoding) headers['content-encoding'] = b.encoding;
        body = b.body;
      }
      cases.push({ method, url: `${svc.url}${path}${pick(QUERIES)}`, headers, body });
    }
  }

  const before = lines.length;
  const fiveHundreds: string[] = [];
  const byStatus: Record<number, number> = {};
  let next = 0;
  const worker = async () => {
    for (let c = cases[next++]; c; c = cases[next++]) {
      let status: number;
      let text = '';
      try {
        const res = await fetch(c.url, { method: c.method, headers: c.headers, body: c.body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
        status = res.status;
        text = await res.text().catch(() => '');
      } catch (err) {
        // The server may drop a connection it refused (413 with Connection: close) while the body is still being sent.
        const code = ((err as Error).cause as { code?: string } | undefined)?.code;
        if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') continue;
        throw new Error(`${c.method} ${c.url.slice(0, 200)}: ${(err as Error).message} ${code ?? ''}`);
      }
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (status >= 500) fiveHundreds.push(`${c.method} ${c.url.slice(svc.url.length, svc.url.length + 120)} [${c.headers['content-type'] ?? '-'}${c.headers['content-encoding'] ? ` ${c.headers['content-encoding']}` : ''}] -> ${status} ${text.slice(0, 120)}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));

  const errors = lines.slice(before).filter((l) => l.level === 'error' || l.level === 'fatal');
  assert.deepEqual(fiveHundreds, [], `${fiveHundreds.length} 5xx of ${cases.length} requests`);
  assert.deepEqual(errors.map((l) => `${l.msg} ${JSON.stringify(l.error ?? '').slice(0, 200)}`), []);
  assert.ok(cases.length >= routes.length * PER_ROUTE);
  assert.ok((byStatus[413] ?? 0) > 0 && (byStatus[400] ?? 0) > 0 && (byStatus[401] ?? 0) > 0, JSON.stringify(byStatus));
});

test('the cases of the issue, one by one: 413, 415 and 400, each logged at debug without a stack', async () => {
  const before = lines.length;
  const post = (path: string, type: string, body: string) => fetch(`${svc.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  const cases: [string, Promise<Response>, number][] = [
    ['slack oversize', post('/slack/interactions', 'application/x-www-form-urlencoded', 'payload=' + 'x'.repeat(300 * 1024)), 413],
    ['pagerduty oversize', post('/webhooks/pagerduty', 'application/json', 'x'.repeat(600 * 1024)), 413],
    ['login 5 KB form', post('/ui/login', 'application/x-www-form-urlencoded', `token=${'a'.repeat(5000)}`), 413],
    ['login koi8-r form', post('/ui/login', 'application/x-www-form-urlencoded; charset=koi8-r', 'token=abc'), 415],
    ['api bad escape', fetch(`${svc.url}/api/runs/%E0%A4%A`, { headers: { authorization: 'Bearer test-admin-token' } }), 400],
    ['ui bad escape', fetch(`${svc.url}/ui/runs/%E0%A4%A`, { headers: { authorization: 'Bearer test-admin-token' } }), 400],
  ];
  for (const [what, res, status] of cases) {
    const r = await res;
    const text = await r.text();
    assert.equal(r.status, status, `${what}: ${text}`);
    assert.equal(typeof (JSON.parse(text) as { error?: unknown }).error, 'string', `${what}: ${text}`);
  }
  const logged = lines.slice(before).filter((l) => l.msg === 'request refused' || l.msg === 'request failed');
  assert.ok(logged.length >= cases.length, JSON.stringify(logged));
  for (const l of logged) {
    assert.equal(l.level, 'debug', JSON.stringify(l));
    assert.doesNotMatch(JSON.stringify(l), /\n\s+at |stack/);
  }
});
