import type { RunRow } from '../store/runs.js';
import type { RunAlert } from '../store/status.js';
import { html, safeHref, type Html } from './html.js';
import { badge, between, clip, duration, ruleRunsHref, runHref, time } from './format.js';
import { page } from './layout.js';
import { plural } from './banners.js';
import type { Frame } from './frame.js';

export const RUN_STATES = ['queued', 'running', 'retrying', 'succeeded', 'failed', 'skipped', 'dry_run', 'notified'] as const;

export interface RunsFilter {
  rule?: string;
  state?: string;
}

/** The recent runs, newest first, with a filter and an "older" link carrying the cursor. */
export function runsPage(f: Frame, runs: RunRow[], filter: RunsFilter, ruleNames: string[], next: string | undefined): string {
  const option = (value: string, selected: string | undefined) => html`<option value="${value}" ${value === selected ? 'selected' : ''}>${value}</option>`;
  const older = next ? `/ui?${new URLSearchParams({ ...definedOnly(filter), cursor: next })}` : undefined;
  return page(f, 'Runs', 'runs', html`<h1>Recent runs</h1>
<form class="filters" method="get" action="/ui">
<label>Rule<select name="rule"><option value="">any</option>${ruleNames.map((r) => option(r, filter.rule))}</select></label>
<label>State<select name="state"><option value="">any</option>${RUN_STATES.map((s) => option(s, filter.state))}</select></label>
<button type="submit">Filter</button></form>
${runs.length === 0 ? html`<p class="muted">No runs${filter.rule || filter.state ? ' match this filter' : ' yet'}.</p>` : runsTable(runs)}
${older ? html`<p class="pager"><a href="${older}" rel="next">Older runs →</a></p>` : ''}`);
}

/** A table on wide screens, one card per run on a phone (table.cards, see style.ts). */
function runsTable(runs: RunRow[]): Html {
  return html`<table id="runs" class="cards"><thead><tr><th>Queued</th><th>Rule</th><th>Alert</th><th>Target</th><th>Outcome</th><th>Timing</th><th>Summary</th></tr></thead><tbody>
${runs.map((r) => html`<tr data-job="${r.job_id}">
<td class="nowrap" data-label="Queued"><a href="${runHref(r.job_id)}">${time(r.queued_at)}</a></td>
<td data-label="Rule">${name(r.rule)}</td><td data-label="Alert">${r.alertname ?? ''}<br><code class="muted">${r.fingerprint}</code></td><td data-label="Target">${r.target ?? ''}</td>
<td data-label="Outcome">${badge(r.state)}${r.dry_run ? html` <span class="muted">dry run</span>` : ''}<br><span class="muted">${plural(r.attempts, 'attempt')}</span></td>
<td data-label="Timing" class="nowrap">${r.started_at ? html`waited ${between(r.queued_at, r.started_at)}` : ''}${r.duration_ms !== null ? html`<br>took ${duration(r.duration_ms)}` : ''}</td>
<td data-label="Summary" class="summary">${clip(r.summary, SUMMARY_CHARS)}</td></tr>`)}
</tbody></table>`;
}

/** Names up to this long stay on one line (48 characters fit beside the other columns at 1280 px). */
export const NAME_CHARS = 48;

/** A rule name on one line, unless it is so long that it would push the page sideways. */
export function name(n: string): Html {
  return html`<span class="${n.length <= NAME_CHARS ? 'name' : ''}">${n}</span>`;
}

/** Summaries are shown whole; only a runaway one (a dumped error body) is cut, and its run page has it all. */
const SUMMARY_CHARS = 600;

type RunEventRow = { at: Date; state: string; attempt: number | null; message: string; details: unknown };

/** One run: what it acted on, its timings, the alert as received, and every step it went through. */
export function runPage(f: Frame, run: RunRow, events: RunEventRow[], alert: RunAlert | undefined, decisions: { decided_at: Date; decision: string; reason: string | null }[]): string {
  const fact = (label: string, value: Html | string | number | null | undefined) => html`<dt>${label}</dt><dd>${value ?? ''}</dd>`;
  return page(f, `Run ${run.job_id}`, 'runs', html`<h1>Run of ${run.rule} ${badge(run.state)}</h1>
<dl class="facts">
${fact('Job id', html`<code>${run.job_id}</code>`)}
${fact('Rule', html`<a href="${ruleRunsHref(run.rule)}">${run.rule}</a>`)}
${fact('Action', run.action)}${fact('Target', run.target)}
${fact('Alert', run.alertname)}${fact('Fingerprint', html`<code>${run.fingerprint}</code>`)}
${fact('Alert started', time(run.starts_at))}${fact('Alert resolved', time(run.alert_resolved_at))}
${fact('Dry run', run.dry_run ? 'yes' : 'no')}${fact('Attempts', plural(run.attempts, 'attempt'))}
${fact('Queued', time(run.queued_at))}${fact('Started', html`${time(run.started_at)} <span class="muted">${run.started_at ? `(waited ${between(run.queued_at, run.started_at)})` : ''}</span>`)}
${fact('Finished', time(run.finished_at))}${fact('Took', duration(run.duration_ms))}
${fact('Summary', run.summary)}
${run.error_reason || run.error_message ? fact('Error', html`${run.error_reason ? html`<code>${run.error_reason}</code> ` : ''}${run.error_message ?? ''}`) : ''}
</dl>
${run.details ? html`<h2>Details</h2><pre>${JSON.stringify(run.details, null, 2)}</pre>` : ''}
<h2>Steps</h2>
${events.length === 0 ? html`<p class="muted">No steps recorded yet.</p>` : html`<table id="steps" class="cards"><thead><tr><th>At</th><th>+</th><th>State</th><th>Attempt</th><th>Message</th></tr></thead><tbody>
${events.map((e) => html`<tr><td class="nowrap" data-label="At">${time(e.at)}</td><td class="num" data-label="After">${between(run.queued_at, e.at)}</td><td data-label="State">${badge(e.state)}</td><td class="num" data-label="Attempt">${e.attempt ?? ''}</td>
<td data-label="">${e.message}${e.details ? html`<pre>${JSON.stringify(e.details, null, 2)}</pre>` : ''}</td></tr>`)}
</tbody></table>`}
${alert ? alertSection(alert) : ''}
${decisions.length ? html`<h2>Deliveries</h2><table id="deliveries" class="cards"><thead><tr><th>At</th><th>Decision</th><th>Reason</th></tr></thead><tbody>
${decisions.map((d) => html`<tr><td class="nowrap" data-label="At">${time(d.decided_at)}</td><td data-label="Decision">${badge(d.decision)}</td><td data-label="Reason">${d.reason ?? ''}</td></tr>`)}</tbody></table>` : ''}`);
}

function alertSection(a: RunAlert): Html {
  const pairs = (o: Record<string, string>) =>
    Object.entries(o)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`);
  const source = safeHref(a.generator_url);
  return html`<h2>Alert (as last received, receiver ${a.receiver})</h2>
<table id="labels" class="kv"><tbody>${pairs(a.labels)}</tbody></table>
${Object.keys(a.annotations).length ? html`<h2>Annotations</h2><table id="annotations" class="kv"><tbody>${pairs(a.annotations)}</tbody></table>` : ''}
${source ? html`<p><a href="${source}" rel="noreferrer noopener">Source expression</a></p>` : ''}`;
}

function definedOnly(f: RunsFilter): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (v) out[k] = v;
  return out;
}
