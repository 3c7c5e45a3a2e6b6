/** Prometheus-style durations: "500ms", "10s", "5m", "1h30m", "2d". */
const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const whole = /^(?:\d+(?:ms|s|m|h|d|w))+$/;
const part = /(\d+)(ms|s|m|h|d|w)/g;

/** Parses a duration to milliseconds; returns undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '0') return 0;
  if (!whole.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(part)) total += Number(m[1]) * unitMs[m[2]!]!;
  return total;
}

/** Lives in the core so deadlines and errors can format durations without importing rules/. */
export { formatDuration } from '../core/duration.js';
