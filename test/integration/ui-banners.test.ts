import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { SafetyState } from '../../src/redis/safety-state.js';
import { eventually, REDIS_URL, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';
import { httpRequest, postForm, uiLogin } from '../helpers/ui.js';

/**
 * The on-call view: whatever holds automation back (pause, quarantine, human-ack hold, waiting
 * approval) is a banner on every page with who, why and until; an operator ends it from there.
 * A refused rules reload is a banner too, and /readyz says it (still ready).
 */
const RULES = `
rules:
  - name: guarded
    match: ['alertname="Guarded"']
    action: notify
    approval: { approvers: [U0APPROVER], timeout: 10m }
  - name: plain
    match: ['alertname="Plain"']
    action: notify
`;

describe('banners on every page', () => {
  let svc: TestService;
  let redis: Redis;
  let store: SafetyState;
  let operator: { cookie: string; csrf: string };
  let jobId = '';
  const get = (path: string, cookie = operator.cookie) => httpRequest(`${svc.url}${path}`, { headers: { accept: 'text/html', cookie } });
  /** The banners section of a page, where every check below looks. */
  const bannersOf = (page: string) => page.slice(page.indexOf('<section class="banners"'), page.indexOf('</section>'));

  before(async () => {
    svc = await startTestService({ rules: { 'r.yml': RULES }, env: { VIEWER_TOKEN: 'test-viewer-token' } });
    redis = new Redis(REDIS_URL);
    store = new SafetyState(redis, svc.config.QUEUE_PREFIX);
    operator = await uiLogin(svc.url, 'test-admin-token', 'olga');
  });
  after(async () => {
    redis?.disconnect();
    await svc?.close();
  });

  test('with nothing in force every page says so', async () => {
    const page = await get('/ui');
    assert.match(page.body, /id="in-force-none"/);
    assert.doesNotMatch(page.body, /class="banner[ "]/);
  });

  test('a pause, a quarantine, a human-ack hold and a waiting approval are on every page, with who, why and until', async () => {
    const until = new Date(Date.now() + 3600_000);
    const pause = await fetch(`${svc.url}/api/pause`, {
      method: 'POST', headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'rule:plain', reason: 'storage <maintenance>', by: 'carol', until: until.toISOString() }),
    });
    assert.equal(pause.status, 201);
    await store.quarantine({ rule: 'plain', target: 'db-7', at: new Date().toISOString(), runs: ['r1', 'r2', 'r3'], reason: '3 ineffective fixes in a row' });
    await store.hold({ dedupKey: 'remediator/abc', by: 'Ann Oncall', incident: 'PABC123', at: new Date().toISOString(), url: 'https://acme.pagerduty.com/incidents/PABC123' });
    assert.equal((await postWebhook(svc.url, firingWebhook('Guarded', 'a99a000000000001'))).status, 200);
    jobId = await eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT job_id FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'a99a000000000001'`);
      const id = rows[0]?.job_id as string | undefined;
      return id && (await redis.exists(`${svc.config.QUEUE_PREFIX}:safety:approval:request:${id}`)) ? id : undefined;
    }, 'the run waits for an approval');

    // A request past its expiry that no worker has marked expired yet is not "waiting" any more.
    const past = new Date(Date.now() - 60_000).toISOString();
    await redis.set(`${svc.config.QUEUE_PREFIX}:safety:approval:request:stale-job`, JSON.stringify({ jobId: 'stale-job', rule: 'guarded', action: 'notify', approvers: ['U0APPROVER'], requestedAt: past, expiresAt: past }));
    const viewer = await uiLogin(svc.url, 'test-viewer-token', 'vic');
    for (const path of ['/ui', '/ui/rules', `/ui/runs/${jobId}`, '/ui/runs/no-such-run', '/ui?state=failed']) {
      const page = await get(path);
      assert.ok(page.status === 200 || page.status === 404, `${path}: ${page.status}`);
      const b = bannersOf(page.body);
      assert.match(b, /data-kind="pause" data-key="rule:plain"><span class="what"><span class="kind">Paused<\/span><strong>rule:plain<\/strong> · why: storage &lt;maintenance&gt; · by admin-api:carol · since <span class="t">[^<]+<\/span> · until <span class="t">\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ<\/span>/, path);
      assert.match(b, /data-kind="quarantine" data-key="plain@db-7">.*rule plain on db-7.*why: 3 ineffective fixes in a row \(runs r1, r2, r3\).*until an operator lifts it/, path);
      assert.match(b, /data-kind="hold".*href="https:\/\/acme\.pagerduty\.com\/incidents\/PABC123".*PagerDuty incident PABC123 acknowledged · by Ann Oncall · since .* until the incident resolves/, path);
      assert.doesNotMatch(b, /stale-job/, path);
      assert.match(b, new RegExp(`data-kind="approval" data-key="${jobId}">.*href="/ui/runs/${jobId}".*notify \\(rule guarded\\) waits for U0APPROVER.*until `), path);
      // Operators get the buttons that end them; viewers see the same banners without any.
      for (const action of ['resume', 'lift', 'approve', 'reject']) assert.match(b, new RegExp(`action="/ui/actions/${action}"`), `${path}: ${action}`);
      const v = bannersOf((await get(path, viewer.cookie)).body);
      assert.match(v, /data-kind="approval"/);
      assert.doesNotMatch(v, /<form/);
    }
  });

  test('an operator approves from the banner: the run goes on, the banner goes away', async () => {
    const r = await postForm(svc.url, '/ui/actions/approve', { csrf: operator.csrf, job: jobId, back: `/ui/runs/${jobId}` }, { cookie: operator.cookie });
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, `/ui/runs/${jobId}`);
    const run = await eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT state FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE job_id = $1 AND state = 'notified'`, [jobId]);
      return rows[0];
    }, 'the approved run ran');
    assert.equal(run.state, 'notified');
    const { rows } = await svc.pool.query(`SELECT by_whom FROM "${svc.config.DATABASE_SCHEMA}".operator_actions WHERE kind = 'approval_approved' AND scope = $1`, [`run:${jobId}`]);
    assert.deepEqual(rows, [{ by_whom: 'ui:olga' }]);
    assert.doesNotMatch(bannersOf((await get('/ui')).body), /data-kind="approval"/);
    // Deciding twice says why not.
    const again = await postForm(svc.url, '/ui/actions/reject', { csrf: operator.csrf, job: jobId }, { cookie: operator.cookie });
    assert.equal(again.status, 409);
    assert.match(again.body, /already approved by ui:olga/);
    // And lifting the quarantine from its banner.
    assert.equal((await postForm(svc.url, '/ui/actions/lift', { csrf: operator.csrf, quarantine: 'plain@db-7' }, { cookie: operator.cookie })).status, 303);
    assert.equal(await store.quarantined('plain', 'db-7'), undefined);
    assert.doesNotMatch(bannersOf((await get('/ui')).body), /data-kind="quarantine"/);
  });

  test('a refused reload is a banner on every page and a warning in /readyz (still ready), with the positioned errors', async () => {
    await svc.writeRules({ 'r.yml': RULES.replace('action: notify\n    approval', 'action: notfy\n    approval') });
    assert.equal(await svc.service.reload('test edit'), false);
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; checks: { rules: { ok: boolean; count: number; warning?: string; problems?: string[] } } };
    assert.equal(body.status, 'ready');
    assert.equal(body.checks.rules.ok, true);
    assert.equal(body.checks.rules.count, 2);
    assert.match(body.checks.rules.warning ?? '', /rules reload at .* \(test edit\) was refused: the edited files are not in force; the previous table \(2 rules loaded at .*\) keeps running/);
    assert.equal(body.checks.rules.problems?.length, 1);
    assert.match(body.checks.rules.problems![0]!, /r\.yml:5:13: rule "guarded": action: unknown action/);
    for (const path of ['/ui', '/ui/rules', `/ui/runs/${jobId}`]) {
      const b = bannersOf((await get(path)).body);
      assert.match(b, /id="reload-refused" role="alert">.*Rules reload refused.*\(test edit\): the edited rules are NOT in force/s, path);
      assert.match(b, /The previous table keeps running \(2 rules loaded at /, path);
      assert.match(b, /<li><code>[^<]*r\.yml:5:13: rule &quot;guarded&quot;: action: unknown action/, path);
    }
    // Fixed: the next reload clears both.
    await svc.writeRules({ 'r.yml': RULES });
    assert.equal(await svc.service.reload('fixed'), true);
    assert.equal(((await (await fetch(`${svc.url}/readyz`)).json()) as { checks: { rules: { warning?: string } } }).checks.rules.warning, undefined);
    assert.doesNotMatch((await get('/ui')).body, /reload-refused/);
  });
});
