import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { REDIS_URL, startTestService, type TestService } from '../helpers/service.js';
import { csrfOf, httpRequest, postForm, uiLogin } from '../helpers/ui.js';

/**
 * Who may do what on /ui and /api (viewer and operator tokens), sessions kept in Redis (logout ends
 * them on every process, a restart keeps them), logout and buttons refused cross-site, and a login
 * lockout per client.
 */
const RULES = {
  'r.yml': `
rules:
  - name: tell-someone
    match: ['alertname="X"']
    action: notify
`,
};
const ADMIN = 'test-admin-token';
const VIEWER = 'test-viewer-token';

describe('status page access: roles, sessions, logout, login lockout', () => {
  let a: TestService;
  let b: TestService | undefined;
  const html = { accept: 'text/html' };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const safety = async () => (await (await fetch(`${a.url}/api/safety`, { headers: bearer(ADMIN) })).json()) as { pauses: { scope: string; by: string; reason: string }[] };
  const pauseViaApi = (scope: string) =>
    fetch(`${a.url}/api/pause`, { method: 'POST', headers: { ...bearer(ADMIN), 'content-type': 'application/json' }, body: JSON.stringify({ scope, reason: 'maintenance', by: 'carol' }) });
  const receiver = () => startTestService({ rules: RULES, env: { VIEWER_TOKEN: VIEWER, REMEDIATOR_ROLE: 'receiver' }, keep: { schema: a.config.DATABASE_SCHEMA, prefix: a.config.QUEUE_PREFIX } });

  before(async () => {
    a = await startTestService({ rules: RULES, env: { VIEWER_TOKEN: VIEWER } });
    b = await receiver();
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  test('the API: the viewer token reads, only the admin token changes anything', async () => {
    for (const path of ['/api/runs', '/api/safety']) {
      assert.equal((await fetch(`${a.url}${path}`, { headers: bearer(VIEWER) })).status, 200, path);
      assert.equal((await fetch(`${a.url}${path}`, { headers: bearer('nope') })).status, 401, path);
    }
    const refused = await fetch(`${a.url}/api/pause`, { method: 'POST', headers: { ...bearer(VIEWER), 'content-type': 'application/json' }, body: JSON.stringify({ scope: 'all', reason: 'x', by: 'v' }) });
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { error: string }).error, /operator token \(ADMIN_TOKEN\)/);
    const approve = await fetch(`${a.url}/api/runs/j1/approve`, { method: 'POST', headers: { ...bearer(VIEWER), 'content-type': 'application/json' }, body: JSON.stringify({ by: 'v' }) });
    assert.equal(approve.status, 403);
    assert.deepEqual((await safety()).pauses, [], 'nothing was paused');
    assert.equal((await pauseViaApi('rule:tell-someone')).status, 201);
    try {
      assert.deepEqual((await safety()).pauses.map((p) => p.scope), ['rule:tell-someone']);
    } finally {
      await fetch(`${a.url}/api/resume`, { method: 'POST', headers: { ...bearer(ADMIN), 'content-type': 'application/json' }, body: JSON.stringify({ scope: 'rule:tell-someone', by: 'carol' }) });
    }
  });

  test('a viewer reads every page but sees no button and cannot press one; an operator can', async () => {
    assert.equal((await pauseViaApi('rule:tell-someone')).status, 201);
    const viewer = await uiLogin(a.url, VIEWER, 'vic');
    const operator = await uiLogin(a.url, ADMIN, 'olga');
    for (const path of ['/ui', '/ui/rules']) {
      const v = await httpRequest(`${a.url}${path}`, { headers: { ...html, cookie: viewer.cookie } });
      assert.equal(v.status, 200, path);
      assert.match(v.body, /data-role="viewer">vic · viewer/);
      assert.match(v.body, /data-kind="pause" data-key="rule:tell-someone"/, 'the viewer sees the pause');
      assert.doesNotMatch(v.body, /action="\/ui\/actions\//, `no operator form for a viewer on ${path}`);
      const o = await httpRequest(`${a.url}${path}`, { headers: { ...html, cookie: operator.cookie } });
      assert.match(o.body, /action="\/ui\/actions\/resume"/, `the operator has the Resume button on ${path}`);
    }
    assert.match((await httpRequest(`${a.url}/ui/rules`, { headers: { ...html, cookie: operator.cookie } })).body, /<form class="pause" id="pause"/);
    // Scripts read with the viewer token as a bearer header.
    assert.equal((await httpRequest(`${a.url}/ui/rules`, { headers: { ...html, ...bearer(VIEWER) } })).status, 200);

    // The viewer's own valid session and CSRF token are not enough.
    const byViewer = await postForm(a.url, '/ui/actions/resume', { csrf: viewer.csrf, scope: 'rule:tell-someone', back: '/ui/rules' }, { cookie: viewer.cookie });
    assert.equal(byViewer.status, 403);
    assert.match(byViewer.body, /Viewers only read/);
    // The operator's session without its CSRF token, or from another site, is refused too.
    assert.equal((await postForm(a.url, '/ui/actions/resume', { scope: 'rule:tell-someone' }, { cookie: operator.cookie })).status, 403);
    assert.equal((await postForm(a.url, '/ui/actions/resume', { csrf: viewer.csrf, scope: 'rule:tell-someone' }, { cookie: operator.cookie })).status, 403, "another session's token");
    const crossSite = await postForm(a.url, '/ui/actions/resume', { csrf: operator.csrf, scope: 'rule:tell-someone' }, { cookie: operator.cookie, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.deepEqual((await safety()).pauses.map((p) => p.scope), ['rule:tell-someone'], 'still paused after every refused press');

    const ok = await postForm(a.url, '/ui/actions/resume', { csrf: operator.csrf, scope: 'rule:tell-someone', back: '/ui/rules' }, { cookie: operator.cookie });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, '/ui/rules');
    assert.deepEqual((await safety()).pauses, []);
    const { rows } = await a.pool.query(`SELECT kind, scope, by_whom FROM "${a.config.DATABASE_SCHEMA}".operator_actions WHERE kind = 'resume' ORDER BY at DESC LIMIT 1`);
    assert.deepEqual(rows, [{ kind: 'resume', scope: 'rule:tell-someone', by_whom: 'ui:olga' }]);

    // Pausing from the rules page, with a duration; a bad one is a 400 naming the field.
    const bad = await postForm(a.url, '/ui/actions/pause', { csrf: operator.csrf, scope: 'all', reason: 'db failover', for: 'soon' }, { cookie: operator.cookie });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /for: &quot;soon&quot; is not a duration/);
    const paused = await postForm(a.url, '/ui/actions/pause', { csrf: operator.csrf, scope: 'all', reason: 'db failover', for: '30m', back: '//evil.example/' }, { cookie: operator.cookie });
    assert.equal(paused.status, 303);
    assert.equal(paused.headers.location, '/ui', 'never back to another site');
    assert.deepEqual((await safety()).pauses.map((p) => [p.scope, p.by, p.reason]), [['all', 'ui:olga', 'db failover']]);
    assert.equal((await postForm(a.url, '/ui/actions/resume', { csrf: operator.csrf, scope: 'all' }, { cookie: operator.cookie })).status, 303);
  });

  test('logout ends the session on every process; it needs a session and refuses cross-site requests', async () => {
    const s = await uiLogin(a.url, ADMIN, 'olga');
    // Another site's form: the browser sends no cookie (SameSite=Strict), and nothing is cleared.
    const noSession = await postForm(a.url, '/ui/logout', {}, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    assert.equal(noSession.status, 403);
    assert.equal(noSession.headers['set-cookie'], undefined);
    const noCookie = await postForm(a.url, '/ui/logout', {});
    assert.equal(noCookie.status, 401);
    assert.equal(noCookie.headers['set-cookie'], undefined);
    // Cross-site even with the cookie (an older browser, a lax proxy): refused, the session lives on.
    for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }]) {
      const r = await postForm(a.url, '/ui/logout', { csrf: s.csrf }, { cookie: s.cookie, ...headers });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(r.headers['set-cookie'], undefined);
    }
    const originOnly = await httpRequest(`${a.url}/ui/logout`, { method: 'POST', headers: { cookie: s.cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${s.csrf}` });
    assert.equal(originOnly.status, 403);
    assert.equal((await postForm(a.url, '/ui/logout', {}, { cookie: s.cookie })).status, 403, 'without the CSRF token');
    assert.equal((await httpRequest(`${a.url}/ui`, { headers: { ...html, cookie: s.cookie } })).status, 200, 'still logged in');

    // The session works on the other receiver, and logging out there ends it here too.
    assert.equal((await httpRequest(`${b!.url}/ui`, { headers: { ...html, cookie: s.cookie } })).status, 200);
    const out = await postForm(b!.url, '/ui/logout', { csrf: s.csrf }, { cookie: s.cookie });
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, '/ui/login');
    assert.match(String(out.headers['set-cookie']), /remediator_ui=;.*Expires=Thu, 01 Jan 1970/);
    for (const svc of [a, b!]) {
      const page = await httpRequest(`${svc.url}/ui`, { headers: { ...html, cookie: s.cookie } });
      assert.equal(page.status, 303, 'the old cookie no longer works');
      assert.equal(page.headers.location, '/ui/login');
      assert.equal((await httpRequest(`${svc.url}/ui/queues/api/queues`, { headers: { accept: 'application/json', cookie: s.cookie } })).status, 401);
    }
    assert.equal((await postForm(a.url, '/ui/logout', { csrf: s.csrf }, { cookie: s.cookie })).status, 401, 'logging out twice');
  });

  test('sessions live in Redis: a restarted receiver keeps them; Redis holds neither the cookie nor a token', async () => {
    const s = await uiLogin(b!.url, VIEWER, 'vic');
    await b!.close();
    b = await receiver();
    const page = await httpRequest(`${b.url}/ui`, { headers: { ...html, cookie: s.cookie } });
    assert.equal(page.status, 200);
    assert.match(page.body, /vic · viewer/);
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${a.config.QUEUE_PREFIX}:ui:session:*`);
      assert.ok(keys.length >= 1);
      const value = s.cookie.split('=')[1]!;
      for (const k of keys) {
        assert.ok(!k.includes(value), 'the key is a hash of the cookie');
        const v = (await redis.get(k)) ?? '';
        for (const secret of [value, ADMIN, VIEWER]) assert.ok(!v.includes(secret));
        const ttl = await redis.pttl(k);
        assert.ok(ttl > 0 && ttl <= 12 * 3600_000, 'expires with the cookie');
      }
    } finally {
      redis.disconnect();
    }
    // A forged or garbled cookie is refused without a lookup error.
    assert.equal((await httpRequest(`${a.url}/ui`, { headers: { ...html, cookie: 'remediator_ui=9999999999999.abc.def' } })).status, 303);
  });

  test('wrong tokens lock out only the client that sends them, on every receiver', async () => {
    const attacker = '127.0.0.2';
    const login = (svc: TestService, token: string, localAddress: string) =>
      httpRequest(`${svc.url}/ui/login`, { method: 'POST', localAddress, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'x', token }).toString() });
    for (let i = 0; i < 20; i++) assert.equal((await login(a, 'wrong', attacker)).status, 401, `attempt ${i + 1}`);
    const locked = await login(a, 'wrong', attacker);
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) > 0 && Number(locked.headers['retry-after']) <= 60);
    assert.equal((await login(a, ADMIN, attacker)).status, 429, 'the attacker stays locked out even with the token');
    // Everybody else logs in as usual, on the same process.
    assert.equal((await login(a, ADMIN, '127.0.0.1')).status, 303, 'another client is not locked out');
    assert.equal((await login(a, VIEWER, '127.0.0.3')).status, 303);
    // The count is shared: another receiver does not give the attacker 20 more guesses.
    assert.equal((await login(b!, 'wrong', attacker)).status, 429, 'the other receiver knows the count');
    assert.equal((await login(b!, ADMIN, '127.0.0.3')).status, 303);
    const fresh = await uiLogin(a.url, ADMIN, 'olga');
    assert.ok(await csrfOf(a.url, fresh.cookie));
  });
});
