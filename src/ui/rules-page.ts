import type { RuleStats } from '../store/status.js';
import type { RuleTable } from '../rules/load.js';
import { html, type Html } from './html.js';
import { badge, duration, percent, ruleRunsHref, runHref, time } from './format.js';
import { page } from './layout.js';

/**
 * Pauses and quarantines (src/safety), as `controls()` returns them; the service reads them from
 * the safety store in Redis. Without a source (a test app) the section says it is not available.
 */
export interface ControlEntry {
  kind: 'pause' | 'quarantine';
  /** What is held: a rule name, a target, or "all". */
  scope: string;
  reason?: string;
  by?: string;
  since?: Date;
  until?: Date;
}
export type ControlsSource = () => Promise<ControlEntry[]>;

/** The rule table as loaded, each rule with its recent runs and success rate. */
export function rulesPage(table: RuleTable, stats: Map<string, RuleStats>, windowLabel: string, controls: ControlEntry[] | undefined): string {
  return page('Rules', 'rules', html`<h1>Rules <span class="muted">(${table.rules.length} loaded at ${time(table.loadedAt)})</span></h1>
<table id="rules"><thead><tr><th>Rule</th><th>Matches</th><th>Action</th><th>Target</th><th>Limits</th><th>Runs (${windowLabel})</th><th>Success</th><th>Last runs</th></tr></thead><tbody>
${table.rules.map((r) => {
  const s = stats.get(r.spec.name);
  return html`<tr data-rule="${r.spec.name}"><td><a href="${ruleRunsHref(r.spec.name)}">${r.spec.name}</a>${r.spec.dry_run ? html` <span class="badge other">dry run</span>` : ''}
<br><span class="muted">${r.file}</span>${r.spec.description ? html`<br>${r.spec.description}` : ''}</td>
<td>${r.spec.match.map((m) => html`<code>${m}</code><br>`)}${r.spec.when === 'resolved' ? html`<span class="muted">when resolved</span>` : ''}</td>
<td>${r.spec.action}</td><td>${r.spec.target ?? ''}</td>
<td class="nowrap">${r.spec.attempts} attempts<br>timeout ${duration(r.spec.timeout)}${r.spec.cooldown ? html`<br>cooldown ${duration(r.spec.cooldown)}` : ''}</td>
<td class="num">${s?.total ?? 0}${s?.failed ? html`<br><span class="muted">${s.failed} failed</span>` : ''}</td>
<td class="num">${percent(s?.successRate ?? null)}</td>
<td>${(s?.recent ?? []).map((run) => html`<a href="${runHref(run.job_id)}" title="${time(run.queued_at)}">${badge(run.state)}</a> `)}</td></tr>`;
})}
</tbody></table>
${unknownRules(table, stats)}
<h2>Pauses and quarantines</h2>
${controlsSection(controls)}`);
}

/** Runs of rules no longer in the table still count: show them, so nothing disappears silently. */
function unknownRules(table: RuleTable, stats: Map<string, RuleStats>): Html | '' {
  const names = new Set(table.rules.map((r) => r.spec.name));
  const gone = [...stats.values()].filter((s) => !names.has(s.rule));
  if (gone.length === 0) return '';
  return html`<h2>Rules with runs but no longer loaded</h2><ul>${gone.map((s) => html`<li><a href="${ruleRunsHref(s.rule)}">${s.rule}</a>: ${s.total} runs, success ${percent(s.successRate)}</li>`)}</ul>`;
}

function controlsSection(controls: ControlEntry[] | undefined): Html {
  if (!controls) return html`<div class="hook" id="controls">Not available in this build: pauses and quarantines appear here once the operator controls are installed.</div>`;
  if (controls.length === 0) return html`<p class="muted" id="controls">Nothing is paused or quarantined.</p>`;
  return html`<table id="controls"><thead><tr><th>Kind</th><th>Scope</th><th>Reason</th><th>By</th><th>Since</th><th>Until</th></tr></thead><tbody>
${controls.map((c) => html`<tr><td>${badge(c.kind)}</td><td>${c.scope}</td><td>${c.reason ?? ''}</td><td>${c.by ?? ''}</td><td>${time(c.since)}</td><td>${time(c.until)}</td></tr>`)}</tbody></table>`;
}
