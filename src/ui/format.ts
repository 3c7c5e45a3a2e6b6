import { formatElapsed } from '../core/duration.js';
import { truncate } from '../core/text.js';
import { html, type Html } from './html.js';

/** UTC to the second: the page shows the same time to every reader, as the logs do. */
export function time(d: Date | null | undefined): string {
  return d ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

/** 850 ms, 12.3 s, 4m 05s, 2h 10m (src/core/duration.ts). */
export const duration = formatElapsed;

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
  return s ? truncate(s, n) : '';
}

export const runHref = (jobId: string) => `/ui/runs/${encodeURIComponent(jobId)}`;
export const ruleRunsHref = (rule: string) => `/ui?${new URLSearchParams({ rule })}`;
