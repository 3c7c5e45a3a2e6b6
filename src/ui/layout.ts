import { html, type Html } from './html.js';

/** The whole stylesheet, served at /ui/style.css so the pages' CSP needs no inline style. */
export const STYLE = `
:root { --fg:#1d2433; --muted:#5b6478; --line:#dde1ea; --bg:#f6f7fa; --ok:#1f7a3d; --bad:#b42318; --busy:#9a6700; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2433; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:center; }
header strong { font-size:16px; margin-right:12px; }
header a { color:#cdd5e6; text-decoration:none; }
header a.here, header a:hover { color:#fff; text-decoration:underline; }
header form { margin-left:auto; }
header button { background:none; border:1px solid #5b6478; color:#cdd5e6; border-radius:4px; padding:3px 10px; cursor:pointer; }
main { padding:18px 24px; max-width:1400px; }
h1 { font-size:20px; margin:4px 0 14px; }
h2 { font-size:16px; margin:22px 0 8px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef0f5; font-weight:600; white-space:nowrap; }
td.num { text-align:right; white-space:nowrap; }
td.nowrap { white-space:nowrap; }
code, pre { font:12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background:#fff; border:1px solid var(--line); padding:10px; overflow:auto; white-space:pre-wrap; word-break:break-all; }
a { color:#2457c5; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:#e7e9ef; color:var(--muted); }
.badge.ok { background:#dcf3e3; color:var(--ok); } .badge.bad { background:#fde4e1; color:var(--bad); } .badge.busy { background:#fff1cc; color:var(--busy); }
.muted { color:var(--muted); }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; background:#fff; border:1px solid var(--line); padding:12px 16px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; word-break:break-word; }
form.filters { display:flex; gap:10px; align-items:end; margin-bottom:12px; flex-wrap:wrap; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); }
input, select, button { font:inherit; padding:4px 8px; }
.pager { margin-top:10px; }
.hook { border:1px dashed #aab1c2; background:#fff; padding:10px 14px; }
.login { max-width:360px; margin:80px auto; background:#fff; border:1px solid var(--line); padding:24px; }
.login input { width:100%; margin:8px 0 12px; }
.error { color:var(--bad); }
`;

export type Section = 'runs' | 'rules' | 'queues';

/** Every page but the login: navigation, logout (a POST, so a link cannot log anyone out). */
export function page(title: string, here: Section, body: Html): string {
  const nav = (s: Section, href: string, label: string) => html`<a href="${href}" class="${s === here ? 'here' : ''}">${label}</a>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · remediator</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><header><strong>remediator</strong>${nav('runs', '/ui', 'Runs')}${nav('rules', '/ui/rules', 'Rules')}${nav('queues', '/ui/queues/', 'Queues')}
<form method="post" action="/ui/logout"><button type="submit">Log out</button></form></header>
<main>${body}</main></body></html>`.text;
}

export function loginPage(error?: string): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · remediator</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><form class="login" method="post" action="/ui/login">
<h1>remediator</h1>
<p class="muted">Status page. Log in with the admin token (ADMIN_TOKEN).</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Log in</button>
</form></body></html>`.text;
}
