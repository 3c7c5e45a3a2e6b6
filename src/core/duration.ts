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

/** Formats milliseconds the short way, for messages ("48h", "10m", "1m30s", "500ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const out: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [u, s] of [['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / s);
    if (n > 0) out.push(`${n}${u}`);
    rest -= n * s;
  }
  return out.join('');
}

/** An elapsed time for people reading it (a run's duration): 850 ms, 12.3 s, 4m 05s, 2h 10m. */
export function formatElapsed(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
