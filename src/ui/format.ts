import { html, type Html } from './html.js';

/** UTC to the second: the page shows the same time to every reader, as the logs do. */
export function time(d: Date | null | undefined): string {
  return d ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

/** 850 ms, 12.3 s, 4m 05s, 2h 10m. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function between(from: Date | null | undefined, to: Date | null | undefined): string {
  return from && to ? duration(to.getTime() - from.getTime()) : '';
}

const good = new Set(['succeeded', 'dry_run', 'notified', 'sent']);
const bad = new Set(['failed', 'invalid', 'refused']);
const busy = new Set(['running', 'retrying', 'queued']);

/** A state as a coloured badge (the colour is a class; the word is always there too). */
export function badge(state: string): Html {
  const cls = good.has(state) ? 'ok' : bad.has(state) ? 'bad' : busy.has(state) ? 'busy' : 'other';
  return html`<span class="badge ${cls}">${state}</span>`;
}

export function percent(rate: number | null): string {
  return rate === null ? '–' : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)}%`;
}

/** Long text cut for a table cell; the full text is on the run's page. */
export function clip(s: string | null | undefined, n = 120): string {
  if (!s) return '';
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export const runHref = (jobId: string) => `/ui/runs/${encodeURIComponent(jobId)}`;
export const ruleRunsHref = (rule: string) => `/ui?${new URLSearchParams({ rule })}`;
