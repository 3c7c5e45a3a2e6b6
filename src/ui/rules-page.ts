import type { RuleStats } from '../store/status.js';
import type { RuleTable } from '../rules/load.js';
import { html, type Html } from './html.js';
import { badge, duration, percent, ruleRunsHref, runHref, time } from './format.js';
import { page } from './layout.js';
import { NAME_CHARS } from './runs-page.js';
import { plural } from './banners.js';
import { operates, type Frame } from './frame.js';

/** The rule table as loaded, each rule with its recent runs and success rate; operators can pause from here. */
export function rulesPage(f: Frame, table: RuleTable, stats: Map<string, RuleStats>, windowLabel: string): string {
  return page(f, 'Rules', 'rules', html`<h1>Rules <span class="muted">(${plural(table.rules.length, 'rule')} loaded at ${time(table.loadedAt)})</span></h1>
<table id="rules" class="cards"><thead><tr><th>Rule</th><th>Matches</th><th>Action</th><th>Target</th><th>Limits</th><th class="wrap">Runs (${windowLabel})</th><th>Success</th><th>Last runs</th></tr></thead><tbody>
${table.rules.map((r) => {
  const s = stats.get(r.spec.name);
  return html`<tr data-rule="${r.spec.name}"><td data-label="Rule"><div><a class="${r.spec.name.length <= NAME_CHARS ? 'name' : ''}" href="${ruleRunsHref(r.spec.name)}">${r.spec.name}</a>${r.spec.dry_run ? html` <span class="badge other">dry run</span>` : ''}
<br><span class="muted">${r.file}</span>${r.spec.description ? html`<br>${r.spec.description}` : ''}</div></td>
<td data-label="Matches"><div>${r.spec.match.map((m) => html`<code class="matcher">${m}</code><br>`)}${r.spec.when === 'resolved' ? html`<span class="muted">when resolved</span>` : ''}</div></td>
<td data-label="Action"><span class="name">${r.spec.action}</span></td><td data-label="Target">${r.spec.target ?? ''}</td>
<td data-label="Limits"><div class="nowrap">${plural(r.spec.attempts, 'attempt')}<br>timeout ${duration(r.spec.timeout)}${r.spec.cooldown ? html`<br>cooldown ${duration(r.spec.cooldown)}` : ''}</div></td>
<td class="num" data-label="Runs">${s?.total ?? 0}${s?.failed ? html`<br><span class="muted">${s.failed} failed</span>` : ''}</td>
<td class="num" data-label="Success">${percent(s?.successRate ?? null)}</td>
<td data-label="Last runs"><div>${(s?.recent ?? []).map((run) => html`<a href="${runHref(run.job_id)}" title="${time(run.queued_at)}">${badge(run.state)}</a> `)}</div></td></tr>`;
})}
</tbody></table>
${unknownRules(table, stats)}
${operates(f) ? pauseForm(f, table) : ''}`);
}

/** Runs of rules no longer in the table still count: show them, so nothing disappears silently. */
function unknownRules(table: RuleTable, stats: Map<string, RuleStats>): Html | '' {
  const names = new Set(table.rules.map((r) => r.spec.name));
  const gone = [...stats.values()].filter((s) => !names.has(s.rule));
  if (gone.length === 0) return '';
  return html`<h2>Rules with runs but no longer loaded</h2><ul>${gone.map((s) => html`<li><a href="${ruleRunsHref(s.rule)}">${s.rule}</a>: ${s.total} runs, success ${percent(s.successRate)}</li>`)}</ul>`;
}

/** The kill switch, for operators: what, why, and for how long (empty: until resumed). */
function pauseForm(f: Frame & { reader: { csrf: string } }, table: RuleTable): Html {
  const scopes = [
    'all',
    ...table.rules.map((r) => `rule:${r.spec.name}`),
    ...[...new Set(table.rules.map((r) => r.spec.action))].sort().map((a) => `action:${a}`),
    ...[...table.targets.keys()].sort().map((t) => `target:${t}`),
  ];
  return html`<h2>Pause automation</h2>
<form class="pause" id="pause" method="post" action="/ui/actions/pause"><input type="hidden" name="csrf" value="${f.reader.csrf}"><input type="hidden" name="back" value="${f.path}">
<label>What<select name="scope" required>${scopes.map((s) => html`<option value="${s}">${s}</option>`)}</select></label>
<label>Why<input name="reason" required maxlength="500" placeholder="db failover"></label>
<label>For<input name="for" maxlength="20" placeholder="30m (empty: until resumed)"></label>
<button type="submit" data-action="pause">Pause</button></form>`;
}
