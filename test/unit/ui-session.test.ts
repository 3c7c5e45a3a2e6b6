import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readCookie, Sessions, SESSION_MS } from '../../src/ui/session.js';
import { escapeHtml, html, safeHref } from '../../src/ui/html.js';

test('a session cookie is signed with a key from the admin token and expires', () => {
  let now = 1_000_000;
  const s = new Sessions('admin-token', () => now);
  const { value } = s.issue();
  assert.ok(!value.includes('admin-token'));
  assert.ok(s.valid(value));
  assert.ok(!new Sessions('another-token', () => now).valid(value), 'a new token logs everyone out');
  const [expiry, nonce, mac] = value.split('.');
  assert.ok(!s.valid(`${Number(expiry) + 1}.${nonce}.${mac}`), 'the expiry cannot be extended');
  assert.ok(!s.valid(undefined) && !s.valid('') && !s.valid('garbage'));
  now += SESSION_MS + 1;
  assert.ok(!s.valid(value), 'expired');
});

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
