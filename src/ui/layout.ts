import { html, type Html } from './html.js';
import { banners } from './banners.js';
import type { Frame } from './frame.js';

export type Section = 'runs' | 'rules' | 'queues';

/** Every page but the login: navigation, who is logged in, logout (a POST), the banners. */
export function page(f: Frame, title: string, here: Section, body: Html): string {
  const nav = (s: Section, href: string, label: string) => html`<a href="${href}" class="${s === here ? 'here' : ''}">${label}</a>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · remediator</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><header><strong>remediator</strong><nav>${nav('runs', '/ui', 'Runs')}${nav('rules', '/ui/rules', 'Rules')}${nav('queues', '/ui/queues/', 'Queues')}</nav>
${who(f)}</header>
${banners(f)}
<main>${body}</main></body></html>`.text;
}

function who(f: Frame): Html {
  const role = html`<span class="role" data-role="${f.reader.role}">${f.reader.name ? html`${f.reader.name} · ` : ''}${f.reader.role}</span>`;
  if (!f.reader.csrf) return html`<span class="who">${role}</span>`;
  return html`<span class="who">${role}<form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${f.reader.csrf}"><button type="submit">Log out</button></form></span>`;
}

export function loginPage(error?: string, name?: string): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · remediator</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><form class="login" method="post" action="/ui/login">
<h1>remediator</h1>
<p class="muted">Status page. Log in with the viewer token (VIEWER_TOKEN, read-only) or the operator token (ADMIN_TOKEN: also pause, resume, lift and approve).</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<label for="name">Your name</label>
<input id="name" name="name" autocomplete="username" maxlength="64" required value="${name ?? ''}" ${name ? '' : 'autofocus'}>
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required ${name ? 'autofocus' : ''}>
<button type="submit">Log in</button>
</form></body></html>`.text;
}
