import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { FakeBreaker } from '../fakes/breaker.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook, postWebhook } from '../helpers/webhook.js';

/**
 * The status page in headless Chromium: log in, open the runs list and the run this test created,
 * find its steps, and keep screenshots in test-output/ (gitignored) for a human to look at.
 * Without Chromium the test is skipped on a workstation and FAILS in CI (CI=true).
 */
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = existsSync(chromium) ? undefined : `Chromium not found at ${chromium}: install it (apt-get install chromium) or set CHROMIUM_PATH`;
const out = join(import.meta.dirname, '../../test-output');

describe('status page in a browser', { skip: missing && process.env.CI !== 'true' ? missing : false }, () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  let browser: Browser;
  let page: Page;

  before(async () => {
    if (missing) throw new Error(missing);
    await mkdir(out, { recursive: true });
    breaker = await new FakeBreaker().start();
    svc = await startTestService({
      rules: {
        'breakers.yml': `
targets:${breaker.targetYaml('checkout')}
rules:
  - name: checkout-breaker
    description: Close the checkout circuit breaker when its error rate alert fires.
    match: ['alertname="HighErrorRate"', 'deployment="checkout"']
    action: breaker-reset
    target: checkout
    params: { poll_interval: 20ms, verify_timeout: 5s }
`,
      },
      env: { BREAKER_TOKEN: breaker.token },
    });
    browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
    await breaker?.stop();
  });

  test('log in, see the run this test made and its steps', async () => {
    breaker.state = 'open';
    const hook = firingWebhook('HighErrorRate', 'b0b0000000000001', { labels: { deployment: 'checkout', severity: 'critical', probe: '<script>document.title="pwned"</script>' } });
    assert.equal((await postWebhook(svc.url, hook)).status, 200);
    const run = await eventually(async () => {
      const { rows } = await svc.pool.query(`SELECT job_id FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = 'b0b0000000000001' AND state = 'succeeded'`);
      return rows[0] as { job_id: string } | undefined;
    }, 'run succeeded');

    // Any page without a session lands on the login form.
    await page.goto(`${svc.url}/ui`);
    assert.equal(new URL(page.url()).pathname, '/ui/login');
    await page.type('#token', 'wrong');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(await page.$eval('[role=alert]', (e) => e.textContent ?? ''), /Wrong token/);
    await page.type('#token', 'test-admin-token');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(new URL(page.url()).pathname, '/ui');
    // The session cookie is not readable by scripts (HttpOnly). Browser code is passed as strings: no DOM types here.
    assert.equal(await page.evaluate('document.cookie'), '');

    const row = await page.waitForSelector(`tr[data-job="${run.job_id}"]`);
    assert.ok(row, 'the run is listed');
    assert.match(await row.evaluate((e) => e.textContent ?? ''), /succeeded/);
    await page.screenshot({ path: join(out, 'ui-runs.png'), fullPage: true });

    await Promise.all([page.waitForNavigation(), page.click(`tr[data-job="${run.job_id}"] a`)]);
    const steps = await page.$$eval('#steps tbody tr td:nth-child(3)', (cells) => cells.map((c) => c.textContent?.trim()));
    // queued, running, the remediation's own steps, succeeded.
    assert.equal(steps[0], 'queued');
    assert.equal(steps.at(-1), 'succeeded');
    assert.deepEqual([...new Set(steps)].sort(), ['queued', 'running', 'step', 'succeeded']);
    const labels = await page.$$eval('#labels tr', (rows) => rows.map((r) => [r.querySelector('th')?.textContent, r.querySelector('td')?.textContent]));
    assert.deepEqual(labels.find(([k]) => k === 'probe'), ['probe', '<script>document.title="pwned"</script>'], 'the hostile label is shown as text');
    assert.notEqual(await page.title(), 'pwned');
    await page.screenshot({ path: join(out, 'ui-run.png'), fullPage: true });

    await page.goto(`${svc.url}/ui/rules`);
    assert.match(await page.$eval('tr[data-rule="checkout-breaker"]', (e) => e.textContent ?? ''), /100%/);
    await page.screenshot({ path: join(out, 'ui-rules.png'), fullPage: true });

    // bull-board renders its queues behind the same session.
    // Its own API calls all succeed under the read-only guard (no refused method, no lost session).
    const refused: string[] = [];
    page.on('response', (r) => {
      if (r.status() >= 400) refused.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
    await page.goto(`${svc.url}/ui/queues/queue/remediations?status=completed`);
    await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify(run.job_id)}) || document.body.innerText.includes('#${run.job_id}')`, { timeout: 15_000 });
    assert.deepEqual(refused, []);
    await page.screenshot({ path: join(out, 'ui-queues.png'), fullPage: true });
  });
});
