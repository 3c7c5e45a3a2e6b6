import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeBreaker } from '../fakes/breaker.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/** The status page over HTTP: authentication, the session cookie, escaping of hostile labels, bull-board. */
describe('status page (/ui)', () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  let cookie = '';
  const evil = '<script>alert("pwned")</script>';
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${svc.url}${path}`, { headers: { accept: 'text/html', ...headers }, redirect: 'manual' });
  const login = (token: string) =>
    fetch(`${svc.url}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'alice', token }), redirect: 'manual' });

  before(async () => {
    breaker = await new FakeBreaker().start();
    svc = await startTestService({
      rules: {
        'breakers.yml': `
targets:${breaker.targetYaml('checkout')}
rules:
  - name: checkout-breaker
    match: ['deployment="checkout"']
    action: breaker-reset
    target: checkout
    params: { poll_interval: 20ms, verify_timeout: 5s }
`,
      },
      env: { BREAKER_TOKEN: breaker.token },
    });
  });
  after(async () => {
    await svc?.close();
    await breaker?.stop();
  });

  test('without a session: pages redirect to the login, APIs answer 401', async () => {
    for (const path of ['/ui', '/ui/rules', '/ui/runs/x', '/ui/queues/']) {
      const res = await get(path);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get('location'), '/ui/login');
    }
    const api = await get('/ui/queues/api/queues', { accept: 'application/json' });
    assert.equal(api.status, 401);
    const forged = await get('/ui', { cookie: 'remediator_ui=9999999999999.abc.def' });
    assert.equal(forged.status, 303);
  });

  test('a wrong token is refused; the right one sets an HttpOnly SameSite=Strict cookie without the token', async () => {
    const wrong = await login('not-the-token');
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /Wrong token/);
    const ok = await login('test-admin-token');
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/ui');
    const set = ok.headers.get('set-cookie') ?? '';
    assert.match(set, /^remediator_ui=[^;]+;/);
    assert.match(set, /HttpOnly/i);
    assert.match(set, /SameSite=Strict/i);
    assert.match(set, /Path=\/ui/);
    assert.doesNotMatch(set, /test-admin-token/);
    cookie = set.split(';')[0]!;
    // A cookie changed by one character names no session.
    const tampered = cookie.slice(0, -1) + (cookie.endsWith('A') ? 'B' : 'A');
    assert.equal((await get('/ui', { cookie: tampered })).status, 303);
    assert.equal((await get('/ui', { cookie })).status, 200);
    // The bearer token works too (scripts, curl).
    assert.equal((await get('/ui', { authorization: 'Bearer test-admin-token' })).status, 200);
  });

  test('hostile labels and annotations are escaped everywhere they are shown', async () => {
    breaker.state = 'open';
    const hook = firingWebhook(evil, 'e5c0000000000001', { labels: { deployment: 'checkout', note: '"><img src=x onerror=alert(1)>' } });
    hook.alerts[0]!.annotations = { summary: `</td></tr></table>${evil}` };
    hook.alerts[0]!.generatorURL = 'javascript:alert(1)';
    assert.equal((await postWebhook(svc.url, hook)).status, 200);
    const run = await eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT * FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'e5c0000000000001' AND state = 'succeeded'`);
      return rows[0];
    }, 'run succeeded');

    const list = await (await get('/ui', { cookie })).text();
    assert.ok(list.includes(`/ui/runs/${encodeURIComponent(run.job_id)}`), 'the list links the run');
    const page = await get(`/ui/runs/${encodeURIComponent(run.job_id)}`, { cookie });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const body = await page.text();
    for (const text of [list, body]) {
      assert.ok(!text.includes('<script>'), 'no script element');
      assert.ok(!text.includes('<img'), 'no injected element');
    }
    assert.ok(body.includes('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;'), 'the label is shown, escaped');
    assert.ok(body.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'), 'the attribute-breaking label is shown, escaped');
    assert.ok(!body.includes('javascript:'), 'a javascript: generator URL is not linked');
    // Its steps: queued, running, succeeded.
    for (const state of ['queued', 'running', 'succeeded']) assert.match(body, new RegExp(`class="badge [a-z]+">${state}<`));

    const rules = await (await get('/ui/rules', { cookie })).text();
    assert.match(rules, /data-rule="checkout-breaker"/);
    assert.match(rules, /<td class="num" data-label="Success">100%<\/td>/);
    assert.ok(rules.includes(`/ui/runs/${encodeURIComponent(run.job_id)}`), 'the rule lists its last run');
    assert.match(rules, /id="in-force-none"/);
  });

  test('a bad filter is a 400, an unknown run a 404', async () => {
    assert.equal((await get('/ui?state=nope', { cookie })).status, 400);
    assert.equal((await get('/ui?cursor=%%%', { cookie })).status, 400);
    const missing = await get(`/ui/runs/${encodeURIComponent(evil)}`, { cookie });
    assert.equal(missing.status, 404);
    assert.ok(!(await missing.text()).includes('<script>'));
  });

  test('bull-board lists the queues, read-only, behind the same login', async () => {
    const board = await get('/ui/queues/', { cookie });
    assert.equal(board.status, 200);
    assert.match(await board.text(), /remediator queues|bull/i);
    const api = await get('/ui/queues/api/queues', { cookie, accept: 'application/json' });
    assert.equal(api.status, 200);
    const { queues } = (await api.json()) as { queues: { name: string; readOnlyMode: boolean }[] };
    assert.deepEqual(queues.map((q) => q.name).sort(), ['notify', 'remediations', 'verify']);
    assert.ok(queues.every((q) => q.readOnlyMode));
    const retry = await fetch(`${svc.url}/ui/queues/api/queues/remediations/retry/failed`, { method: 'PUT', headers: { cookie } });
    assert.equal(retry.status, 405);
  });

  test('no X-Powered-By anywhere, a CSP on every /ui answer, and nothing on the pages loaded from another site', async () => {
    const board = await (await get('/ui/queues/', { cookie })).text();
    const script = /<script defer src="(static\/js\/[^"]+)"/.exec(board)?.[1];
    assert.ok(script, "bull-board's page names its scripts");
    const paths: [string, Record<string, string>][] = [
      ['/ui', { cookie }], ['/ui/rules', { cookie }], ['/ui/runs/nope', { cookie }], ['/ui/login', {}], ['/ui', {}], ['/ui/style.css', {}], ['/ui/board.css', {}],
      ['/ui/queues/', { cookie }], ['/ui/queues/queue/remediations', { cookie }], [`/ui/queues/${script}`, { cookie }],
      ['/ui/queues/api/queues', { cookie, accept: 'application/json' }], ['/ui/queues/', {}], ['/ui/nothing-here', { cookie }],
      ['/api/runs', { authorization: 'Bearer test-admin-token' }], ['/healthz', {}], ['/readyz', {}], ['/metrics', {}], ['/nothing-here', {}],
    ];
    for (const [path, headers] of paths) {
      const res = await get(path, headers);
      assert.equal(res.headers.get('x-powered-by'), null, `${path} answered ${res.status} with X-Powered-By`);
      if (path.startsWith('/ui')) {
        const csp = res.headers.get('content-security-policy') ?? '';
        assert.match(csp, /default-src 'none'/, `${path} (${res.status}) has a CSP`);
        assert.match(csp, /frame-ancestors 'none'/, path);
        assert.doesNotMatch(csp, /https?:|\*/, `${path}: the CSP allows no other site`);
      }
      if ((res.headers.get('content-type') ?? '').includes('html')) {
        const body = await res.text();
        assert.doesNotMatch(body, /(?:href|src)=["']?(?:https?:)?\/\//i, `${path} links nothing from another site`);
      }
    }
    // bull-board's own page: its scripts from here only; its font host link is gone, our layout fixes are in.
    assert.match((await get('/ui/queues/', { cookie })).headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.doesNotMatch(board, /fonts\.googleapis|fonts\.gstatic/);
    assert.match(board, /<link href="\/ui\/board\.css" rel="stylesheet"><\/head>/);
  });
});
