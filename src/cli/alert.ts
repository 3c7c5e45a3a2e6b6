import { parseMatcher } from '../rules/matchers.js';

/**
 * Builds the webhook Alertmanager would send for a label set, so rules can be tried without a
 * captured payload (`rules test --alert 'alertname="X",service="y"'`) and the demo fires its
 * alert exactly as Alertmanager does.
 */

export class LabelSetError extends Error {}

/** Parses `alertname="X",service="y"` (braces optional, values quoted or bare, as in amtool). */
export function parseLabelSet(text: string): Record<string, string> {
  const body = text.trim().replace(/^\{([\s\S]*)\}$/, '$1');
  const labels: Record<string, string> = {};
  for (const item of splitOutsideQuotes(body)) {
    if (item.trim() === '') continue;
    let m;
    try {
      m = parseMatcher(item);
    } catch (err) {
      throw new LabelSetError((err as Error).message.replace(/^bad matcher/, 'bad label'));
    }
    if (m.type !== '=') throw new LabelSetError(`bad label ${JSON.stringify(item.trim())}: an alert's labels are name="value" (no ${m.type})`);
    if (m.name in labels) throw new LabelSetError(`label ${m.name} is given twice`);
    labels[m.name] = m.value;
  }
  if (!labels.alertname) throw new LabelSetError(`${JSON.stringify(text)}: an alert needs an alertname label`);
  return labels;
}

/** Splits on commas that are not inside a quoted value. */
function splitOutsideQuotes(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted && c === '\\') {
      cur += c + (s[++i] ?? '');
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * Prometheus' label-set fingerprint, the one Alertmanager puts in `fingerprint`: FNV-1a 64 over
 * the sorted names and values, each followed by the 0xff separator (prometheus/common model
 * `labelSetToFingerprint`), as 16 hex digits.
 */
export function fingerprintOf(labels: Record<string, string>): string {
  let h = 0xcbf29ce484222325n;
  const add = (b: number) => {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  };
  for (const name of Object.keys(labels).sort()) {
    for (const b of Buffer.from(name)) add(b);
    add(0xff);
    for (const b of Buffer.from(labels[name]!)) add(b);
    add(0xff);
  }
  return h.toString(16).padStart(16, '0');
}

/** A version-4 webhook body for these alerts, grouped by alertname as a default Alertmanager route does. */
export function webhookFor(
  alerts: { labels: Record<string, string>; annotations?: Record<string, string>; status?: 'firing' | 'resolved' }[],
  opts: { receiver?: string; now?: Date; externalURL?: string } = {},
) {
  const now = opts.now ?? new Date();
  const built = alerts.map((a) => {
    const status = a.status ?? 'firing';
    return {
      status,
      labels: a.labels,
      annotations: a.annotations ?? {},
      // A new firing: a startsAt before an earlier run of the same alert would make it that run's duplicate.
      startsAt: now.toISOString(),
      endsAt: status === 'resolved' ? now.toISOString() : '0001-01-01T00:00:00Z',
      generatorURL: '',
      fingerprint: fingerprintOf(a.labels),
    };
  });
  const alertname = built[0]?.labels.alertname ?? '';
  const common = (key: 'labels' | 'annotations') =>
    Object.fromEntries(Object.entries(built[0]?.[key] ?? {}).filter(([k, v]) => built.every((a) => a[key][k] === v)));
  return {
    version: '4',
    groupKey: `{}:{alertname=${JSON.stringify(alertname)}}`,
    truncatedAlerts: 0,
    status: built.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: opts.receiver ?? 'remediate',
    groupLabels: { alertname },
    commonLabels: common('labels'),
    commonAnnotations: common('annotations'),
    externalURL: opts.externalURL ?? 'http://alertmanager.invalid:9093',
    alerts: built,
  };
}
