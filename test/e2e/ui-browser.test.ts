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
 * The status page in headless Chromium, on a phone (390x844) and a laptop (1280x900): log in, read
 * every page, act on a banner, log out. Every page must fit the screen's width (no sideways
 * scrolling), not one request may leave 127.0.0.1 (air-gapped sites), and no CSP violation may be
 * reported. Screenshots go to test-output/ui-<page>-<width>.png for a person to look at.
 * Without Chromium the test is skipped on a workstation and FAILS in CI (CI=true).
 */
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = existsSync(chromium) ? undefined : `Chromium not found at ${chromium}: install it (apt-get install chromium) or set CHROMIUM_PATH`;
const out = join(import.meta.dirname, '../../test-output');
const LONG_RULE = 'checkout-breaker-reset-on-high-error-rate';
const INSTRUCTIONS = 'Check the voice provider status page, then the credentials in the vault (path voice/provider/prod), then call the provider support line and give them the account number from the runbook.';
const WIDTHS = [
  { width: 390, height: 844 },
  { width: 1280, height: 900 },
] as const;

describe('status page in a browser', { skip: missing && process.env.CI !== 'true' ? missing : false }, () => {
  let breaker: FakeBreaker;
  let svc: TestService;
  let browser: Browser;
  /** Requests that tried to leave 127.0.0.1 (aborted), and CSP violations Chromium reported. */
  const outside: string[] = [];
  const violations: string[] = [];

  /** A page that refuses (and records) any request to another host, and records CSP reports. */
  async function guardedPage(b: Browser | Awaited<ReturnType<Browser['createBrowserContext']>>): Promise<Page> {
    const page = await b.newPage();
    await page.setRequestInterception(true);
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol === 'data:' || u.protocol === 'about:' || u.hostname === '127.0.0.1') return void r.continue();
      outside.push(r.url());
      void r.abort();
    });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(`${page.url()}: ${m.text()}`);
    });
    return page;
  }

  async function logIn(page: Page, name: string, token: string): Promise<void> {
    await page.goto(`${svc.url}/ui`);
    assert.equal(new URL(page.url()).pathname, '/ui/login', 'any page without a session lands on the login form');
    await page.type('#name', name);
    await page.type('#token', token);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(new URL(page.url()).pathname, '/ui');
  }

  /** Fits the width: nothing scrolls sideways, the header's items are all on screen and "Log out" is one line. */
  async function assertFits(page: Page, what: string, width: number): Promise<void> {
    const m = (await page.evaluate(`(() => {
      const r = (e) => e ? e.getBoundingClientRect() : null;
      const out = { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, bodyScroll: document.body.scrollWidth };
      const header = document.querySelector('body > header');
      if (header) {
        out.headerRight = Math.max(...[...header.querySelectorAll('a, button, strong, .role')].map((e) => r(e).right));
        out.headerWidth = r(header).width;
        const button = header.querySelector('button');
        if (button) out.logoutLines = Math.round(r(button).height / parseFloat(getComputedStyle(button).lineHeight || '18'));
      }
      return out;
    })()`)) as { scrollWidth: number; innerWidth: number; bodyScroll: number; headerRight?: number; headerWidth?: number; logoutLines?: number };
    assert.equal(m.innerWidth, width);
    assert.ok(m.scrollWidth <= m.innerWidth, `${what} at ${width}px scrolls sideways: scrollWidth ${m.scrollWidth} > ${m.innerWidth}`);
    assert.ok(m.bodyScroll <= m.innerWidth, `${what} at ${width}px: body ${m.bodyScroll} wide`);
    if (m.headerWidth !== undefined) {
      assert.ok(m.headerWidth >= width, `${what} at ${width}px: the header covers ${m.headerWidth}px only`);
      assert.ok(m.headerRight! <= width, `${what} at ${width}px: a header item ends at ${m.headerRight}px`);
    }
    if (m.logoutLines !== undefined) assert.ok(m.logoutLines <= 1.5, `${what} at ${width}px: "Log out" wraps (${m.logoutLines} lines)`);
  }

  const shot = (page: Page, name: string, width: number) => page.screenshot({ path: join(out, `ui-${name}-${width}.png`), fullPage: true });

  before(async () => {
    if (missing) throw new Error(missing);
    await mkdir(out, { recursive: true });
    breaker = await new FakeBreaker().start();
    svc = await startTestService({
      rules: {
        'breakers.yml': `
targets:${breaker.targetYaml('checkout')}
rules:
  - name: ${LONG_RULE}
    description: Close the checkout circuit breaker when its error rate alert fires.
    match: ['alertname="HighErrorRate"', 'deployment="checkout"']
    action: breaker-reset
    target: checkout
    attempts: 1
    params: { poll_interval: 20ms, verify_timeout: 5s }
  - name: voice-calls-down
    match: ['alertname="VoiceCallInitiateFailing"']
    action: notify
    params:
      instructions: ${INSTRUCTIONS}
  - name: guarded
    match: ['alertname="Guarded"']
    action: notify
    approval: { approvers: [U0APPROVER], timeout: 10m }
`,
      },
      env: { BREAKER_TOKEN: breaker.token, VIEWER_TOKEN: 'test-viewer-token' },
    });
    browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'] });
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
    await breaker?.stop();
  });

  test('every page fits a phone and a laptop, shows what holds automation back, and loads nothing from outside', async () => {
    breaker.state = 'open';
    const hook = firingWebhook('HighErrorRate', 'b0b0000000000001', { labels: { deployment: 'checkout', severity: 'critical', probe: '<script>document.title="pwned"</script>' } });
    assert.equal((await postWebhook(svc.url, hook)).status, 200);
    assert.equal((await postWebhook(svc.url, firingWebhook('VoiceCallInitiateFailing', 'b0b0000000000002'))).status, 200);
    assert.equal((await postWebhook(svc.url, firingWebhook('Guarded', 'b0b0000000000003'))).status, 200);
    const runOf = (fp: string, state: string) =>
      eventually(async () => {
        const { rows } = await svc.pool.query(`SELECT job_id FROM "${svc.config.DATABASE_SCHEMA}".runs WHERE fingerprint = $1 AND state = $2`, [fp, state]);
        return rows[0] as { job_id: string } | undefined;
      }, `run of ${fp} ${state}`);
    const run = await runOf('b0b0000000000001', 'succeeded');
    await runOf('b0b0000000000002', 'notified');
    const guarded = await runOf('b0b0000000000003', 'queued');
    const pause = await fetch(`${svc.url}/api/pause`, {
      method: 'POST', headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'action:worker-restart', reason: 'cluster upgrade in progress, no restarts please', by: 'carol', for: '2h' }),
    });
    assert.equal(pause.status, 201);

    const page = await guardedPage(browser);
    await page.setViewport(WIDTHS[1]);
    await logIn(page, 'Olga Operator', 'test-admin-token');
    // The session cookie is not readable by scripts (HttpOnly). Browser code is passed as strings: no DOM types here.
    assert.equal(await page.evaluate('document.cookie'), '');
    await page.waitForSelector(`.banner[data-kind="approval"][data-key="${guarded.job_id}"]`);

    for (const { width, height } of WIDTHS) {
      await page.setViewport({ width, height });
      await page.goto(`${svc.url}/ui`);
      await assertFits(page, 'runs', width);
      const banners = await page.$$eval('.banners .banner', (els) => els.map((e) => `${e.getAttribute('data-kind')}: ${e.textContent}`));
      assert.equal(banners.length, 2, banners.join('\n'));
      assert.match(banners.find((b) => b.startsWith('pause'))!, /action:worker-restart · why: cluster upgrade in progress, no restarts please · by admin-api:carol · since .* · until \d{4}-/);
      assert.match(banners.find((b) => b.startsWith('approval'))!, /notify \(rule guarded\) waits for U0APPROVER/);
      const row = await page.$(`tr[data-job="${run.job_id}"]`);
      assert.ok(row, 'the run is listed');
      assert.match(await row.evaluate((e) => e.textContent ?? ''), /succeeded/);
      // Summaries are whole, not cut at 120 characters.
      assert.ok((await page.$eval('#runs', (e) => e.textContent ?? '')).includes(INSTRUCTIONS), 'the long summary is shown whole');
      if (width === 390) {
        // A card per run: the column headings are hidden and each cell says what it is.
        assert.equal(await page.evaluate(`getComputedStyle(document.querySelector('#runs thead')).display`), 'none');
        assert.equal(await page.evaluate(`getComputedStyle(document.querySelector('tr[data-job="${run.job_id}"] td[data-label="Rule"]'), '::before').content`), '"Rule"');
      } else {
        // Rule names on one line; no word cut in two (the alert name over its fingerprint, the target).
        assert.equal(await linesOf(page, `tr[data-job="${run.job_id}"] td[data-label="Rule"]`), 1, 'the rule name does not wrap');
        assert.equal(await linesOf(page, `tr[data-job="${run.job_id}"] td[data-label="Alert"]`), 2, 'alert name, then fingerprint');
        assert.equal(await linesOf(page, `tr[data-job="${run.job_id}"] td[data-label="Target"]`), 1);
      }
      await shot(page, 'runs', width);

      await page.goto(`${svc.url}/ui/runs/${encodeURIComponent(run.job_id)}`);
      await assertFits(page, 'run', width);
      const steps = await page.$$eval('#steps tbody tr td:nth-child(3)', (cells) => cells.map((c) => c.textContent?.trim()));
      assert.equal(steps[0], 'queued');
      assert.equal(steps.at(-1), 'succeeded');
      assert.deepEqual([...new Set(steps)].sort(), ['queued', 'running', 'step', 'succeeded']);
      const labels = await page.$$eval('#labels tr', (rows) => rows.map((r) => [r.querySelector('th')?.textContent, r.querySelector('td')?.textContent]));
      assert.deepEqual(labels.find(([k]) => k === 'probe'), ['probe', '<script>document.title="pwned"</script>'], 'the hostile label is shown as text');
      assert.notEqual(await page.title(), 'pwned');
      assert.equal(await page.$$eval('.banners .banner', (els) => els.length), 2, 'the banners are on the run page too');
      await shot(page, 'run', width);

      await page.goto(`${svc.url}/ui/rules`);
      await assertFits(page, 'rules', width);
      const rule = await page.$eval(`tr[data-rule="${LONG_RULE}"]`, (e) => e.textContent ?? '');
      assert.match(rule, /100%/);
      assert.match(rule, /\b1 attempt(?!s)/);
      assert.doesNotMatch(rule, /1 attempts/);
      if (width === 1280) {
        assert.equal(await linesOf(page, `tr[data-rule="${LONG_RULE}"] a.name`), 1, 'the rule name does not wrap');
        assert.equal(await linesOf(page, `tr[data-rule="${LONG_RULE}"] td[data-label="Matches"]`), 2, 'one line per matcher');
        assert.equal(await linesOf(page, `tr[data-rule="${LONG_RULE}"] td[data-label="Target"]`), 1);
      }
      assert.ok(await page.$('form#pause'), 'an operator can pause from the rules page');
      await shot(page, 'rules', width);

      await page.goto(`${svc.url}/ui/queues/`);
      await page.waitForSelector('[class*="queueCard-"]');
      await assertFits(page, 'queues', width);
      await assertBoardLayout(page, width);
      await shot(page, 'queues', width);

      // bull-board's jobs, behind the same session; its own API calls all succeed under the read-only guard.
      const refused: string[] = [];
      const onResponse = (r: { status(): number; url(): string; request(): { method(): string } }) => {
        if (r.status() >= 400) refused.push(`${r.status()} ${r.request().method()} ${r.url()}`);
      };
      page.on('response', onResponse);
      await page.goto(`${svc.url}/ui/queues/queue/remediations?status=completed`);
      await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify(run.job_id)})`, { timeout: 15_000 });
      page.off('response', onResponse);
      assert.deepEqual(refused, []);
      await assertFits(page, 'queue', width);
      await assertBoardLayout(page, width);
      await shot(page, 'queue', width);
    }

    // Between the two, nothing scrolls sideways either (a tablet, a split screen).
    for (const width of [600, 768, 1024]) {
      await page.setViewport({ width, height: 900 });
      for (const path of ['/ui', `/ui/runs/${encodeURIComponent(run.job_id)}`, '/ui/rules']) {
        await page.goto(`${svc.url}${path}`);
        await assertFits(page, path, width);
      }
      await page.goto(`${svc.url}/ui`);
      await shot(page, 'runs', width);
    }

    // A viewer sees the same banners, and no button.
    const viewerContext = await browser.createBrowserContext();
    const viewer = await guardedPage(viewerContext);
    await viewer.setViewport(WIDTHS[0]);
    await logIn(viewer, 'Vic Viewer', 'test-viewer-token');
    assert.equal(await viewer.$$eval('.banners .banner', (els) => els.length), 2);
    assert.equal(await viewer.$$eval('.banners form, form#pause', (els) => els.length), 0, 'no operator buttons for a viewer');
    await viewer.goto(`${svc.url}/ui/rules`);
    assert.equal(await viewer.$('form#pause'), null);
    await shot(viewer, 'rules-viewer', 390);
    await viewerContext.close();

    // The operator approves from the banner on a phone; the run goes on and the banner leaves.
    await page.setViewport(WIDTHS[0]);
    await page.goto(`${svc.url}/ui/runs/${encodeURIComponent(guarded.job_id)}`);
    await Promise.all([page.waitForNavigation(), page.click(`.banner[data-kind="approval"] button[data-action="approve"]`)]);
    assert.equal(new URL(page.url()).pathname, `/ui/runs/${guarded.job_id}`, 'back where the button was');
    await runOf('b0b0000000000003', 'notified');
    await page.reload();
    assert.equal(await page.$('.banner[data-kind="approval"]'), null);
    await shot(page, 'run-approved', 390);

    // Logging out ends the session: the same browser is sent to the login form again.
    await Promise.all([page.waitForNavigation(), page.click('header button[type=submit]')]);
    assert.equal(new URL(page.url()).pathname, '/ui/login');
    await page.goto(`${svc.url}/ui`);
    assert.equal(new URL(page.url()).pathname, '/ui/login');
    await assertFits(page, 'login', 390);
    await shot(page, 'login', 390);

    assert.deepEqual(outside, [], 'no request left 127.0.0.1');
    assert.deepEqual(violations, [], 'no CSP violation');
  });
});

/** How many lines the text of an element takes (a word cut in two adds one): the line boxes of its text nodes. */
function linesOf(page: Page, selector: string): Promise<number> {
  return page.evaluate(`(() => {
    const walk = document.createTreeWalker(document.querySelector(${JSON.stringify(selector)}), NodeFilter.SHOW_TEXT);
    const bottoms = new Set();
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const r = document.createRange();
      r.selectNodeContents(n);
      for (const x of r.getClientRects()) if (x.width > 0) bottoms.add(Math.round(x.bottom));
    }
    return bottoms.size;
  })()`) as Promise<number>;
}

/** bull-board: every status tab visible (none cut off at the edge), no card under its sidebar. */
async function assertBoardLayout(page: Page, width: number): Promise<void> {
  const m = (await page.evaluate(`(() => {
    const strip = document.querySelector('[class*="statusTabs-"]');
    const tabs = strip ? [...strip.querySelectorAll('li')].map((li) => li.getBoundingClientRect()) : [];
    const sr = strip ? strip.getBoundingClientRect() : null;
    const aside = document.querySelector('aside');
    const asideRight = aside && getComputedStyle(aside).display !== 'none' ? aside.getBoundingClientRect().right : 0;
    const cards = [...document.querySelectorAll('[class*="card-"]')].map((c) => c.getBoundingClientRect()).filter((r) => r.width > 0);
    return {
      tabs: tabs.length, stripScroll: strip ? strip.scrollWidth - strip.clientWidth : 0,
      cutTabs: tabs.filter((t) => sr && (t.right > sr.right + 1 || t.left < sr.left - 1)).length,
      asideRight, cardsLeft: cards.length ? Math.min(...cards.map((c) => c.left)) : null, cardsRight: cards.length ? Math.max(...cards.map((c) => c.right)) : null,
    };
  })()`)) as { tabs: number; stripScroll: number; cutTabs: number; asideRight: number; cardsLeft: number | null; cardsRight: number | null };
  assert.ok(m.tabs >= 8, `bull-board's status tabs (${m.tabs})`);
  assert.equal(m.cutTabs, 0, `at ${width}px ${m.cutTabs} status tabs are cut off`);
  assert.ok(m.stripScroll <= 1, `at ${width}px the status tabs scroll sideways by ${m.stripScroll}px`);
  assert.ok(m.cardsLeft !== null, 'cards are shown');
  assert.ok(m.cardsLeft! >= m.asideRight, `at ${width}px a card starts at ${m.cardsLeft}px, under the sidebar (ends at ${m.asideRight}px)`);
  assert.ok(m.cardsRight! <= width, `at ${width}px a card ends at ${m.cardsRight}px, off screen`);
}
