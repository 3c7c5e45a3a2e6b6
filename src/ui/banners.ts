import { html, safeHref, type Html } from './html.js';
import { time } from './format.js';
import { operates, type Frame } from './frame.js';
import type { InForce } from './in-force.js';

const LABEL: Record<InForce['kind'], string> = { pause: 'Paused', quarantine: 'Quarantined', hold: 'Hands off', approval: 'Waiting for approval' };

/**
 * The top of every page: a refused rules reload, then each pause, quarantine, human-ack hold and
 * waiting approval with who, why and until when; operators get the button that ends it.
 */
export function banners(f: Frame): Html {
  const items: Html[] = [];
  if (f.refusedReload) items.push(reloadBanner(f));
  if (f.inForce === undefined) {
    // No source: an app without the safety state (tests); nothing to claim either way.
  } else if ('error' in f.inForce) {
    items.push(html`<div class="banner bad" id="in-force-unknown" role="alert"><span class="what"><span class="kind">Unknown</span>Pauses, quarantines, holds and approvals could not be read (${f.inForce.error}): something may be held back that this page does not show.</span></div>`);
  } else {
    for (const e of f.inForce) items.push(entryBanner(f, e));
    if (f.inForce.length === 0 && items.length === 0) items.push(html`<p class="all-clear muted" id="in-force-none">Nothing is paused, quarantined, held by a person or waiting for approval.</p>`);
  }
  return html`<section class="banners" aria-label="In force">${items}</section>`;
}

function reloadBanner(f: Frame): Html {
  const r = f.refusedReload!;
  return html`<div class="banner bad" id="reload-refused" role="alert"><div class="what"><span class="kind">Rules reload refused</span>at ${time(r.at)} (${r.reason}): the edited rules are NOT in force.
The previous table keeps running${f.table ? html` (${plural(f.table.rules, 'rule')} loaded at ${time(f.table.loadedAt)})` : ''}. Fix:
<ul class="problems">${r.problems.map((p) => html`<li><code>${p}</code></li>`)}</ul></div></div>`;
}

function entryBanner(f: Frame, e: InForce): Html {
  const href = e.href ? safeHref(e.href) : undefined;
  const scope = href ? html`<a href="${href}" rel="noreferrer">${e.scope}</a>` : html`<strong>${e.scope}</strong>`;
  const until = e.until ? html`until <span class="t">${time(e.until)}</span>` : e.untilText ?? '';
  return html`<div class="banner" data-kind="${e.kind}" data-key="${e.key ?? ''}"><span class="what"><span class="kind">${LABEL[e.kind]}</span>${scope}${
    e.reason ? html` · why: ${e.reason}` : ''}${e.by ? html` · by ${e.by}` : ''}${e.since ? html` · since <span class="t">${time(e.since)}</span>` : ''} · ${until}</span>${operates(f) ? buttons(f, e) : ''}</div>`;
}

/** The operator's way to end it from here (POST forms with the session's CSRF token; no script). */
function buttons(f: Frame & { reader: { csrf: string } }, e: InForce): Html | '' {
  if (!e.key) return '';
  const form = (action: string, field: string, label: string) =>
    html`<form method="post" action="/ui/actions/${action}"><input type="hidden" name="csrf" value="${f.reader.csrf}"><input type="hidden" name="${field}" value="${e.key}"><input type="hidden" name="back" value="${f.path}"><button type="submit" data-action="${action}">${label}</button></form>`;
  switch (e.kind) {
    case 'pause':
      return form('resume', 'scope', 'Resume');
    case 'quarantine':
      return form('lift', 'quarantine', 'Lift quarantine');
    case 'approval':
      return html`${form('approve', 'job', 'Approve')}${form('reject', 'job', 'Reject')}`;
    case 'hold':
      return ''; // Ends when the PagerDuty incident resolves: nothing to press here.
  }
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
