import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { storable } from '../../src/core/text.js';

/**
 * A fuzz of the webhook: real Alertmanager payloads (test/fixtures/alertmanager), mutated the way
 * an attacker or a broken sender would (NUL, lone surrogates, huge and crafted values, impossible
 * timestamps, wrong types, missing fields, malformed JSON). Deterministic for a seed. Used by
 * test/integration/fuzz.test.ts (a few hundred) and bench/fuzz.ts (thousands).
 */
const fixturesDir = join(import.meta.dirname, '../fixtures/alertmanager');
export const basePayloads: Record<string, unknown>[] = readdirSync(fixturesDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(fixturesDir, f), 'utf8')));

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = [
  '\u0000', 'image-gen\u0000', 'checkout\u0000', '\ud800', 'x\udfff', '\udc00\ud800', 'a\u0000\ud83d', '😀\ud83d',
  'x'.repeat(20_000), '"}{{ labels.deployment }}', '{{ annotations.summary }}', '../../../etc/passwd', 'checkout\n', ' checkout',
  '(a+)+$', 'a'.repeat(40) + '!', '\u202eevil', "'; DROP TABLE runs; --", '\\x00', '%00', '\r\n\r\nHTTP/1.1 200 OK', '',
];
const TIMES: unknown[] = [
  '-000001-01-01T00:00:00Z', '+275760-09-13T00:00:00.000Z', 'garbage', '2026-02-30T00:00:00Z', '', 12345, null,
  '0001-01-01T00:00:00Z', '2026-11-29T10:00:00.123456789+05:30', '9999-12-31T23:59:59Z', '2026-11-29 10:00:00Z',
];
const FINGERPRINTS: unknown[] = ['zz', '', 123, 'a'.repeat(65), null, 'abc\u0000'];

const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

export interface FuzzCase {
  /** The body as sent: an object (JSON-encoded on send) or raw text. */
  body: unknown;
  raw?: string;
  /** The groupKey the audit will hold when it is accepted (already made storable). */
  groupKey?: string;
  /** How many alerts an accepted delivery carries. */
  alerts?: number;
}

export function makeCase(i: number, rnd: () => number, runId: string): FuzzCase {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const hex = () => Array.from({ length: 16 }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('');
  const p = structuredClone(pick(basePayloads)) as Record<string, any>;
  let groupKey = `fuzz-${runId}-${i}`;
  if (rnd() < 0.1) groupKey += pick(['\u0000', '\ud800', '{}:{x="y"}']);
  p.groupKey = groupKey;
  const now = new Date(Date.now() - Math.floor(rnd() * 3_600_000)).toISOString();
  for (const a of p.alerts as Record<string, any>[]) {
    a.fingerprint = hex();
    a.startsAt = now;
  }
  const mutations = 1 + Math.floor(rnd() * 4);
  for (let m = 0; m < mutations; m++) {
    const alerts = Array.isArray(p.alerts) ? (p.alerts as Record<string, any>[]) : [];
    const picked = alerts.length ? pick(alerts) : undefined;
    const a = picked && typeof picked === 'object' && isObj(picked.labels) ? picked : undefined;
    switch (Math.floor(rnd() * 18)) {
      case 0: case 1: case 2:
        if (a) a.labels[pick(Object.keys(a.labels).length ? Object.keys(a.labels) : ['x'])] = pick(HOSTILE);
        break;
      case 3:
        if (a) a.labels[pick(HOSTILE) || 'empty'] = pick(HOSTILE);
        break;
      case 4:
        if (a) a.annotations = { ...(isObj(a.annotations) ? a.annotations : {}), [pick(['summary', 'description', 'runbook_url', '\u0000k'])]: pick(HOSTILE) };
        break;
      case 5:
        if (a) a.startsAt = pick(TIMES);
        break;
      case 6:
        if (a) a.endsAt = pick(TIMES);
        break;
      case 7:
        if (a) a.fingerprint = pick(FINGERPRINTS);
        break;
      case 8:
        if (a) a.status = pick(['exploded', undefined, 1, 'FIRING']);
        break;
      case 9:
        if (a) a.labels = pick([null, [], 5, { n: 1 }, { alertname: null }]);
        break;
      case 10:
        if (a) delete a[pick(['labels', 'startsAt', 'fingerprint', 'status', 'annotations', 'endsAt', 'generatorURL'])];
        break;
      case 11:
        if (a) alerts.push({ ...structuredClone(a) }); // the same alert twice in one delivery
        break;
      case 12:
        if (a) for (let k = 0; k < 30; k++) alerts.push({ ...structuredClone(a), fingerprint: hex() });
        break;
      case 13:
        p.alerts = rnd() < 0.5 ? [] : pick([null, {}, 'x']);
        break;
      case 14:
        p.version = pick(['3', 4, undefined, '4']);
        break;
      case 15:
        p[pick(['routeLabels', 'notification_reason', '__proto__x'])] = pick([{ a: 1 }, 'x', null]);
        if (a) a[pick(['silenceURL', 'extra'])] = pick(HOSTILE);
        break;
      case 16:
        p.truncatedAlerts = pick([-1, 'x', 5, 1.5]);
        break;
      case 17:
        p[pick(['receiver', 'externalURL', 'status'])] = pick([...HOSTILE, 7, null]);
        if (a) a.generatorURL = pick(HOSTILE);
        break;
    }
  }
  if (rnd() < 0.03) {
    // Malformed JSON: cut somewhere.
    const text = JSON.stringify(p);
    return { body: undefined, raw: text.slice(0, Math.floor(rnd() * text.length)) };
  }
  const alertsOut = Array.isArray(p.alerts) ? p.alerts.length : undefined;
  return { body: p, groupKey: typeof p.groupKey === 'string' ? storable(p.groupKey) : undefined, alerts: alertsOut };
}

export interface FuzzReport {
  sent: number;
  byStatus: Record<string, number>;
  accepted: number;
  acceptedAlerts: number;
  fiveHundreds: { status: number; body: string }[];
  /** Accepted deliveries whose alerts are not all in the audit (groupKey -> [expected, found]). */
  missing: [string, number, number][];
}

/** Posts `count` fuzz cases to `url` (`parallel` at a time) and returns what came back. */
export async function sendFuzz(o: { url: string; token: string; count: number; seed: number; parallel?: number; runId: string }): Promise<{ report: FuzzReport; expected: Map<string, number> }> {
  const rnd = prng(o.seed);
  const cases = Array.from({ length: o.count }, (_, i) => makeCase(i, rnd, o.runId));
  const report: FuzzReport = { sent: 0, byStatus: {}, accepted: 0, acceptedAlerts: 0, fiveHundreds: [], missing: [] };
  const expected = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const c = cases[next++];
      if (!c) return;
      const res = await fetch(`${o.url}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${o.token}` },
        body: c.raw ?? JSON.stringify(c.body),
      });
      const text = await res.text();
      report.sent++;
      report.byStatus[res.status] = (report.byStatus[res.status] ?? 0) + 1;
      if (res.status >= 500) report.fiveHundreds.push({ status: res.status, body: text.slice(0, 300) });
      if (res.status === 200) {
        report.accepted++;
        if (c.groupKey === undefined || c.alerts === undefined) throw new Error(`accepted a case the fuzz thought invalid: ${text.slice(0, 200)}`);
        if (c.alerts > 0) expected.set(c.groupKey, (expected.get(c.groupKey) ?? 0) + c.alerts);
        report.acceptedAlerts += c.alerts;
      }
    }
  };
  await Promise.all(Array.from({ length: o.parallel ?? 8 }, worker));
  return { report, expected };
}

/** Accepted deliveries whose alerts the audit does not hold (yet): [groupKey, expected, found]. */
export async function missingFromAudit(pool: pg.Pool, schema: string, expected: Map<string, number>): Promise<[string, number, number][]> {
  const { rows } = await pool.query<{ group_key: string; n: number }>(
    `SELECT group_key, count(*)::int AS n FROM "${schema}".alerts WHERE group_key = ANY($1::text[]) GROUP BY group_key`,
    [[...expected.keys()]],
  );
  const found = new Map(rows.map((r) => [r.group_key, r.n]));
  return [...expected].filter(([k, n]) => found.get(k) !== n).map(([k, n]) => [k, n, found.get(k) ?? 0]);
}

/**
 * The rules the fuzz runs against: a breaker reset on a target templated from a label (so hostile
 * labels meet the target check) and a notify rule with a templated param. `extra` is added to both
 * rules (e.g. `cooldown: 1m` for the thousands of the bench).
 */
export function fuzzRules(breaker: { targetYaml(name: string): string }, extra = ''): string {
  const more = extra ? `\n    ${extra.trim().split('\n').join('\n    ')}` : '';
  return `
targets:${breaker.targetYaml('checkout')}${breaker.targetYaml('cart')}
rules:
  - name: breaker-by-deployment
    match: ['alertname=~"HighErrorRate|Retry500|Lab.*"']
    action: breaker-reset
    target: "{{ labels.deployment }}"
    params: { poll_interval: 10ms, verify_timeout: 2s }${more}
  - name: page-the-rest
    match: ['severity=~".+"', 'remediation!="rollout-restart"']
    action: notify
    params: { instructions: "Look at {{ labels.instance }}" }${more}
`;
}
