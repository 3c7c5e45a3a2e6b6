import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunState } from '../../src/core/run.js';
import { alertmanagerUrl, formatDetails, importantLabels, MAX_EVENTS_PER_REPLY, renderReplies, renderRoot, stateLabel, type ReplyEvent, type RootView, type SlackBlock } from '../../src/notifiers/slack/format.js';
import type { AlertInfo } from '../../src/core/alert.js';

// The two alerts of a real Alertmanager 0.25 payload (test/fixtures/alertmanager/01-firing-2alerts.json).
const base = {
  status: 'firing' as const, startsAt: '2026-11-22T07:39:57Z', endsAt: '0001-01-01T00:00:00Z', generatorURL: 'http://prometheus.local/graph?g0.expr=rate',
  labels: { alertname: 'HighErrorRate', deployment: 'checkout', instance: '10.0.0.1:8080', namespace: 'shop', remediation: 'rollout-restart', severity: 'critical' },
};
const withRunbook: AlertInfo = {
  ...base, fingerprint: '2cad25c23e8d4f87',
  annotations: { description: 'Error ratio 0.12 for 5m', runbook_url: 'https://runbooks.example/checkout', summary: 'checkout 5xx > 5%' },
};
const withoutRunbook: AlertInfo = {
  ...base, fingerprint: 'c4447145283e6e30', labels: { ...base.labels, instance: '10.0.0.2:8080' },
  annotations: { description: 'Error ratio 0.09 for 5m', summary: 'checkout 5xx > 5%' },
};
const payload = { externalURL: 'http://vm:9093' };

function view(over: Partial<RootView> = {}): RootView {
  return {
    rule: 'restart-checkout', action: 'rollout-restart', target: 'shop-checkout', dryRun: false, alert: withRunbook,
    externalURL: payload.externalURL, state: 'running', attempts: 1, ...over,
  };
}

let ids = 0;
function event(over: Partial<ReplyEvent>): ReplyEvent & { id: string } {
  return {
    id: String(++ids), type: 'step', rule: 'restart-checkout', target: 'shop-checkout', alertname: 'HighErrorRate', dryRun: false, attempt: 1,
    message: 'something happened', ...over,
  };
}
/** The one message a single event makes, or undefined. */
const renderReply = (e: ReplyEvent & { id: string }) => renderReplies([e], { interactive: true })[0];

/** Every mrkdwn and plain_text string in the blocks, joined. */
function blockText(blocks: SlackBlock[]): string {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.text === 'string') out.push(o.text);
      Object.values(o).forEach(walk);
    }
  };
  walk(blocks);
  return out.join('\n');
}

describe('renderRoot', () => {
  test('always has a plain text fallback naming the state, alert, rule, action and target', () => {
    const r = renderRoot(view());
    assert.match(r.text, /:gear: Running \(attempt 1\)/);
    assert.match(r.text, /HighErrorRate \(critical\) on shop-checkout/);
    assert.match(r.text, /Rule restart-checkout, action rollout-restart/);
    assert.match(r.text, /checkout 5xx &gt; 5%/, 'summary annotation, escaped for mrkdwn');
  });

  test('uses only phone-friendly block types, within Slack limits', () => {
    const r = renderRoot(view({ alert: { ...withRunbook, labels: { ...withRunbook.labels, alertname: 'A'.repeat(400) } } }));
    for (const b of r.blocks) assert.ok(['header', 'section', 'context'].includes(b.type), b.type);
    const header = r.blocks.find((b) => b.type === 'header') as unknown as { text: { text: string } };
    assert.ok(header.text.text.length <= 150);
  });

  test('links the runbook when the annotation is there, and Prometheus and Alertmanager', () => {
    const t = blockText(renderRoot(view()).blocks);
    assert.match(t, /<https:\/\/runbooks\.example\/checkout\|Runbook>/);
    assert.match(t, /<http:\/\/prometheus\.local\/graph\?g0\.expr=rate\|Prometheus>/);
    assert.match(t, /<http:\/\/vm:9093\/#\/alerts\?filter=[^|]+\|Alertmanager>/);
  });

  test('no runbook link without the annotation; generatorURL skipped when empty', () => {
    const t = blockText(renderRoot(view({ alert: { ...withoutRunbook, generatorURL: '' } })).blocks);
    assert.doesNotMatch(t, /Runbook/);
    assert.doesNotMatch(t, /Prometheus>/);
    assert.match(t, /Alertmanager>/);
  });

  test('a non-http runbook_url is not turned into a link', () => {
    const t = blockText(renderRoot(view({ alert: { ...withRunbook, annotations: { runbook_url: 'javascript:alert(1)' } } })).blocks);
    assert.doesNotMatch(t, /Runbook/);
  });

  test("the rule's guide: its runbook wins over the annotation, the impact is a line of its own, its links come first", () => {
    const guide = {
      runbook: 'https://runbooks.internal/samia-tarot/ops#voice-service-outage',
      impact: 'Voice calls unavailable: <!channel> readers cannot call',
      links: [{ text: 'Twilio status', url: 'https://status.twilio.com' }, { text: 'bad', url: 'javascript:alert(1)' }],
      instructions: 'Check Twilio.',
    };
    const r = renderRoot(view({ guide }));
    const t = blockText(r.blocks);
    const linkLine = (r.blocks.filter((b) => b.type === 'context').at(-1) as unknown as { elements: { text: string }[] }).elements[0]!.text;
    assert.equal(
      linkLine,
      '<https://runbooks.internal/samia-tarot/ops#voice-service-outage|Runbook> · <https://status.twilio.com|Twilio status> · ' +
        '<http://prometheus.local/graph?g0.expr=rate|Prometheus> · ' + linkLine.split(' · ').at(-1),
    );
    assert.doesNotMatch(t, /runbooks\.example\/checkout/, "the annotation's runbook is not shown when the rule has one");
    assert.doesNotMatch(t, /javascript/);
    assert.match(t, /:warning: \*Impact:\* Voice calls unavailable: &lt;!channel&gt; readers cannot call/, 'escaped: no mention');
    assert.match(r.text, /Impact: Voice calls unavailable: &lt;!channel&gt; readers cannot call\. Rule restart-checkout/);
    // Without a runbook of its own, the rule's links still show and the annotation's runbook is used.
    const fallback = blockText(renderRoot(view({ guide: { links: guide.links } })).blocks);
    assert.match(fallback, /<https:\/\/runbooks\.example\/checkout\|Runbook> · <https:\/\/status\.twilio\.com\|Twilio status>/);
  });

  test('shows important labels, not all of them', () => {
    const t = blockText(renderRoot(view()).blocks);
    assert.match(t, /namespace: `shop`/);
    assert.match(t, /deployment: `checkout`/);
    assert.doesNotMatch(t, /remediation: /, 'routing label hidden');
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`l${i}`, 'v']));
    const { shown, more } = importantLabels({ alertname: 'X', ...many, namespace: 'ns' });
    assert.equal(shown[0]![0], 'namespace', 'known labels first');
    assert.equal(shown.length, 6);
    assert.equal(more, 7);
  });

  test('escapes untrusted text so an alert cannot mention @channel', () => {
    const r = renderRoot(view({ alert: { ...withRunbook, annotations: { summary: 'hi <!channel> & <https://evil|x>' } } }));
    assert.doesNotMatch(r.text + blockText(r.blocks), /<!channel>/);
    assert.match(r.text, /&lt;!channel&gt; &amp;/);
  });

  test('dry run says so clearly', () => {
    const r = renderRoot(view({ dryRun: true, state: 'dry_run', summary: 'Would restart shop/checkout' }));
    assert.match(r.text, /Dry run: nothing was changed/);
    const t = blockText(r.blocks);
    assert.match(t, /\[DRY RUN\] HighErrorRate/);
    assert.match(t, /Dry run\*: the remediation only checks/);
    assert.match(renderRoot(view({ dryRun: true, state: 'running' })).text, /\[DRY RUN\]/);
    assert.doesNotMatch(renderRoot(view()).text + blockText(renderRoot(view()).blocks), /DRY RUN|Dry run/i);
  });

  test('alert resolved is shown', () => {
    const r = renderRoot(view({ state: 'succeeded', alertResolvedAt: new Date() }));
    assert.match(r.text, /Alert resolved\./);
    assert.match(blockText(r.blocks), /:large_green_circle: alert resolved/);
    assert.doesNotMatch(renderRoot(view({ state: 'succeeded' })).text, /resolved/i);
  });

  test('failure shows the error when there is no summary', () => {
    assert.match(renderRoot(view({ state: 'failed', error: 'deployment not found' })).text, /Failed: needs a human.*deployment not found/);
  });
});

describe('stateLabel', () => {
  const cases: [RunState, Parameters<typeof stateLabel>[1], string, RegExp][] = [
    ['queued', {}, ':hourglass_flowing_sand:', /Queued/],
    ['running', { attempts: 2 }, ':gear:', /Running \(attempt 2\)/],
    ['retrying', { attempts: 1 }, ':repeat:', /attempt 1 failed/],
    ['succeeded', {}, ':white_check_mark:', /Succeeded/],
    ['failed', {}, ':x:', /Failed/],
    ['skipped', { reason: 'cooldown' }, ':fast_forward:', /Skipped \(cooldown\)/],
    ['skipped', { reason: 'duplicate' }, ':fast_forward:', /duplicate/],
    ['skipped', {}, ':fast_forward:', /nothing to do/],
    ['dry_run', {}, ':test_tube:', /Dry run/],
    ['notified', {}, ':rotating_light:', /No automatic fix: escalated/],
  ];
  for (const [state, o, emoji, label] of cases) {
    test(`${state} ${JSON.stringify(o)}`, () => {
      const l = stateLabel(state, o);
      assert.equal(l.emoji, emoji);
      assert.match(l.label, label);
    });
  }
});

describe('renderReply', () => {
  test('queued and running have no reply (the root shows them)', () => {
    assert.equal(renderReply(event({ type: 'queued' })), undefined);
    assert.equal(renderReply(event({ type: 'running' })), undefined);
  });

  test('a step shows its message and details', () => {
    const r = renderReply(event({ type: 'step', message: 'Terminated 3 idle connections', details: { pids: [11, 12, 13], before: 'open' } }))!;
    assert.match(r.text, /Attempt 1: Terminated 3 idle connections/);
    assert.match(blockText(r.blocks), /pids: `\[11,12,13\]`/);
    assert.equal(r.broadcast, false);
  });

  test('failed is broadcast; a notify-only outcome is told by the root alone (not twice in the channel); others are not broadcast', () => {
    assert.equal(renderReply(event({ type: 'failed', message: 'boom', reason: 'forbidden' }))!.broadcast, true);
    assert.equal(renderReply(event({ type: 'notified', message: 'Call on-call' })), undefined);
    for (const type of ['step', 'retrying', 'succeeded', 'skipped', 'dry_run', 'alert_resolved', 'note', 'effective', 'ineffective'] as const) {
      assert.equal(renderReply(event({ type }))!.broadcast, false, type);
    }
  });

  test('a broadcast failure says what failed where, with the reason', () => {
    const r = renderReply(event({ type: 'failed', message: 'Failed after 3 attempts: 403', reason: 'forbidden' }))!;
    assert.match(r.text, /Remediation failed\* for HighErrorRate on shop-checkout \(rule restart-checkout\): Failed after 3 attempts/);
    assert.match(blockText(r.blocks), /reason: `forbidden`/);
  });

  test('events that came together are one message, in order, saying how far it told; an approval request goes alone with its buttons', () => {
    const evs = [
      event({ type: 'running' }), event({ message: 'one' }), event({ message: 'two' }),
      event({ type: 'approval_requested', message: 'Approval needed', details: { approval_request: 'j1' } }),
      event({ type: 'approved', message: 'Approved by slack:U1' }), event({ type: 'running' }),
    ];
    const out = renderReplies(evs, { interactive: true });
    assert.equal(out.length, 3);
    assert.deepEqual(out.map((m) => m.through), [evs[2]!.id, evs[3]!.id, evs[5]!.id]);
    assert.match(blockText(out[0]!.blocks), /one[\s\S]*two/);
    assert.match(out[0]!.text, /\+1 more/);
    assert.ok(out[1]!.blocks.some((b) => b.type === 'actions'), 'approve and reject buttons');
    assert.equal(out[1]!.broadcast, true, 'a person must see an approval request');
    const many = renderReplies(Array.from({ length: MAX_EVENTS_PER_REPLY * 2 + 1 }, (_, i) => event({ message: `step ${i}` })));
    assert.equal(many.length, 3, 'bounded messages');
  });
});

describe('helpers', () => {
  test('alertmanagerUrl filters on the labels, or is the bare externalURL', () => {
    const u = alertmanagerUrl('http://vm:9093/', { alertname: 'A', job: 'x"y' })!;
    assert.equal(decodeURIComponent(u.split('filter=')[1]!), '{alertname="A",job="x\\"y"}');
    assert.equal(alertmanagerUrl('http://vm:9093', {}), 'http://vm:9093');
    assert.equal(alertmanagerUrl('', { a: 'b' }), undefined);
  });

  test('formatDetails is compact and bounded', () => {
    assert.equal(formatDetails(undefined), undefined);
    assert.equal(formatDetails({}), undefined);
    const many = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'x'.repeat(1000)]));
    const t = formatDetails(many)!;
    assert.match(t, /\+2 more/);
    assert.ok(t.length < 8 * 320);
  });
});
