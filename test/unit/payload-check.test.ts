import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basePayloads, makeCase, prng } from '../helpers/fuzz.js';
import { certainlyValid } from '../../src/core/alert-check.js';
import { webhookSchema } from '../../src/core/alert.js';

// The quick check may only say "valid" where the schema does: otherwise a bad body would be accepted.
test('the quick check never passes a body the schema refuses (fuzz corpus), and passes the reference payloads', () => {
  for (const p of basePayloads) assert.equal(certainlyValid(p), true, JSON.stringify(p).slice(0, 200));
  const rnd = prng(11);
  let refused = 0;
  let agreed = 0;
  for (let i = 0; i < 3000; i++) {
    const c = makeCase(i, rnd, 'unit');
    let body: unknown = c.body;
    if (c.raw !== undefined) {
      try {
        body = JSON.parse(c.raw);
      } catch {
        continue;
      }
    }
    // As the receiver sees it: after a trip through JSON (undefined keys gone, -0 is 0...).
    body = JSON.parse(JSON.stringify(body) ?? 'null');
    const schema = webhookSchema.safeParse(body).success;
    const quick = certainlyValid(body);
    if (quick) assert.ok(schema, `quick check passed what the schema refuses: ${JSON.stringify(body).slice(0, 300)}`);
    if (!schema) refused++;
    if (quick === schema) agreed++;
  }
  assert.ok(refused > 300, `the corpus has bad bodies (${refused})`);
  assert.ok(agreed > 2500, `and the quick check agrees on nearly all (${agreed}/3000)`);
});

test('the quick check refuses each kind of bad field', () => {
  const good = basePayloads[0] as { alerts: Record<string, unknown>[] } & Record<string, unknown>;
  const alert = good.alerts[0]!;
  const bad: unknown[] = [
    null, [], 'x', { ...good, version: 4 }, { ...good, groupKey: 1 }, { ...good, status: 'ok' }, { ...good, truncatedAlerts: -1 },
    { ...good, truncatedAlerts: 1.5 }, { ...good, commonLabels: { a: 1 } }, { ...good, groupLabels: null }, { ...good, externalURL: 3 },
    { ...good, alerts: {} }, { ...good, alerts: [null] }, { ...good, alerts: [{ ...alert, labels: undefined }] },
    { ...good, alerts: [{ ...alert, labels: { a: null } }] }, { ...good, alerts: [{ ...alert, startsAt: '2026-13-01T00:00:00Z' }] },
    { ...good, alerts: [{ ...alert, endsAt: null }] }, { ...good, alerts: [{ ...alert, fingerprint: 'xyz' }] },
    { ...good, alerts: [{ ...alert, generatorURL: 1 }] }, { ...good, alerts: [{ ...alert, annotations: [] }] },
  ];
  for (const b of bad) {
    assert.equal(certainlyValid(b), false, JSON.stringify(b)?.slice(0, 200));
    assert.equal(webhookSchema.safeParse(b).success, false, `the schema refuses it too: ${JSON.stringify(b)?.slice(0, 200)}`);
  }
});
