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
