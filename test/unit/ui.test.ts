import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Request } from 'express';
import { readCookie } from '../../src/ui/session.js';
import { escapeHtml, html, safeHref } from '../../src/ui/html.js';
import { clientOf } from '../../src/ui/login-limit.js';
import { crossSite } from '../../src/ui/same-origin.js';
import { backTo } from '../../src/ui/actions.js';
import { airGapped } from '../../src/ui/board.js';
import { banners } from '../../src/ui/banners.js';
import type { Frame } from '../../src/ui/frame.js';
import { ConfigError, loadConfig } from '../../src/config.js';

test('readCookie finds one cookie among several', () => {
  assert.equal(readCookie('a=1; remediator_ui=x.y.z; b=2', 'remediator_ui'), 'x.y.z');
  assert.equal(readCookie('a=1', 'remediator_ui'), undefined);
  assert.equal(readCookie(undefined, 'remediator_ui'), undefined);
});

test('html escapes every interpolated value, keeps nested html, and links only http(s) or paths', () => {
  const label = `<script>x</script>"'&\``;
  assert.equal(escapeHtml(label), '&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;&#96;');
  assert.equal(html`<td title="${label}">${[label, html`<b>${label}</b>`]}</td>`.text,
    '<td title="&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;&#96;">&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;&#96;<b>&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;&#96;</b></td>');
  assert.equal(safeHref('javascript:alert(1)'), undefined);
  assert.equal(safeHref('//evil.example/x'), undefined);
  assert.equal(safeHref('/ui/runs/a'), '/ui/runs/a');
  assert.equal(safeHref('http://prom:9090/graph?g0.expr=up'), 'http://prom:9090/graph?g0.expr=up');
});

test('a login attempt counts against its address; IPv6 by /64, IPv4-mapped as IPv4', () => {
  assert.equal(clientOf('10.1.2.3'), '10.1.2.3');
  assert.equal(clientOf('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(clientOf('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
  assert.equal(clientOf('2001:0db8:0000:0001:ffff:ffff:ffff:ffff'), '2001:db8:0:1::/64');
  assert.equal(clientOf('::1'), '0:0:0:0::/64');
  assert.equal(clientOf(undefined), 'unknown');
});

test('cross-site requests are told by Sec-Fetch-Site, else by Origin against Host', () => {
  const req = (headers: Record<string, string>) => ({ headers: { host: 'remediator.example:9095', ...headers } }) as unknown as Request;
  assert.equal(crossSite(req({ 'sec-fetch-site': 'same-origin' })), undefined);
  assert.equal(crossSite(req({ 'sec-fetch-site': 'none' })), undefined);
  assert.match(crossSite(req({ 'sec-fetch-site': 'cross-site', origin: 'http://remediator.example:9095' }))!, /cross-site/);
  assert.match(crossSite(req({ 'sec-fetch-site': 'same-site' }))!, /same-site/);
  assert.equal(crossSite(req({ origin: 'https://remediator.example:9095' })), undefined);
  assert.match(crossSite(req({ origin: 'https://evil.example' }))!, /evil\.example/);
  assert.match(crossSite(req({ origin: 'null' }))!, /null/);
  assert.equal(crossSite(req({})), undefined, 'no browser: curl and scripts');
});

test('after an action the browser goes back only to a page of ours', () => {
  assert.equal(backTo('/ui/rules'), '/ui/rules');
  assert.equal(backTo('/ui?rule=x&state=failed'), '/ui?rule=x&state=failed');
  assert.equal(backTo('/ui'), '/ui');
  for (const bad of ['//evil.example/ui', 'https://evil.example/ui', '/uix', '/ui\\..\\x', '/api/pause', undefined, 3]) assert.equal(backTo(bad), '/ui', String(bad));
});

test("bull-board's page loses its public font link and gains our layout fixes", () => {
  const page = `<head><link rel="alternate icon" href="static/favicon-32x32.png"><link href="https://fonts.googleapis.com/css2?family=IBM+Plex+Sans" rel="stylesheet">
<link href=//cdn.example/x.css rel=stylesheet><link href="static/css/main.css" rel="stylesheet"></head>`;
  const out = airGapped(page);
  assert.doesNotMatch(out, /googleapis|cdn\.example/);
  assert.match(out, /static\/favicon-32x32\.png/);
  assert.match(out, /static\/css\/main\.css" rel="stylesheet"><link href="\/ui\/board\.css" rel="stylesheet"><\/head>/);
});

test('banners: who, why, until for each; buttons only for an operator session', () => {
  const base: Frame = {
    reader: { role: 'viewer', name: 'vic', csrf: 'c5rf' }, path: '/ui/rules',
    inForce: [
      { kind: 'pause', scope: 'rule:checkout', reason: 'db <failover>', by: 'admin-api:carol', since: new Date('2026-01-01T10:00:00Z'), until: new Date('2026-01-01T11:00:00Z'), key: 'rule:checkout' },
      { kind: 'approval', scope: 'run j1', reason: 'breaker-reset', by: 'rule r', since: new Date('2026-01-01T10:00:00Z'), until: new Date('2026-01-01T10:15:00Z'), key: 'j1', href: '/ui/runs/j1' },
      { kind: 'hold', scope: 'alert group k', by: 'Ann', untilText: 'until the incident resolves', href: 'javascript:alert(1)' },
    ],
  };
  const viewer = banners(base).text;
  assert.match(viewer, /Paused.*rule:checkout.*why: db &lt;failover&gt;.*by admin-api:carol.*since <span class="t">2026-01-01 10:00:00Z<\/span>.*until <span class="t">2026-01-01 11:00:00Z<\/span>/);
  assert.match(viewer, /Waiting for approval.*href="\/ui\/runs\/j1"/);
  assert.match(viewer, /Hands off.*until the incident resolves/);
  assert.doesNotMatch(viewer, /javascript:/);
  assert.doesNotMatch(viewer, /<form/);
  const operator = banners({ ...base, reader: { role: 'operator', name: 'olga', csrf: 'c5rf' } }).text;
  assert.match(operator, /action="\/ui\/actions\/resume".*name="csrf" value="c5rf".*name="scope" value="rule:checkout".*name="back" value="\/ui\/rules"/);
  assert.match(operator, /action="\/ui\/actions\/approve"/);
  assert.match(operator, /action="\/ui\/actions\/reject"/);
  // A bearer-token operator (a script) has no session, no CSRF token: no forms.
  assert.doesNotMatch(banners({ ...base, reader: { role: 'operator' } }).text, /<form/);
  assert.match(banners({ ...base, inForce: [] }).text, /id="in-force-none"/);
  assert.match(banners({ ...base, inForce: { error: 'Connection is closed.' } }).text, /could not be read \(Connection is closed\.\)/);
  const refused = banners({ ...base, inForce: [], refusedReload: { ok: false, at: new Date('2026-01-01T10:00:00Z'), reason: 'SIGHUP', problems: ['rules/a.yml:3:5: rule "x": action: unknown'] }, table: { rules: 1, loadedAt: new Date('2026-01-01T09:00:00Z') } }).text;
  assert.match(refused, /Rules reload refused.*2026-01-01 10:00:00Z \(SIGHUP\).*NOT in force.*1 rule loaded at 2026-01-01 09:00:00Z/s);
  assert.match(refused, /<code>rules\/a\.yml:3:5: rule &quot;x&quot;: action: unknown<\/code>/);
  assert.doesNotMatch(refused, /in-force-none/);
});

test('VIEWER_TOKEN: optional, and never the same as ADMIN_TOKEN (the error does not show it)', () => {
  assert.equal(loadConfig({ ADMIN_TOKEN: 'a-secret-1', VIEWER_TOKEN: 'v-secret-2' }).VIEWER_TOKEN, 'v-secret-2');
  assert.equal(loadConfig({}).VIEWER_TOKEN, undefined);
  assert.throws(() => loadConfig({ ADMIN_TOKEN: 'same-secret', VIEWER_TOKEN: 'same-secret' }), (e: Error) => e instanceof ConfigError && /VIEWER_TOKEN: must differ from ADMIN_TOKEN/.test(e.message) && !e.message.includes('same-secret'));
});
