import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { loadRules } from '../../src/rules/load.js';
import type { RuleSpec } from '../../src/rules/schema.js';
import { buildRegistry } from '../../src/remediations/registry.js';
import { FakeBreaker } from '../fakes/breaker.js';
import { startFakeKubeApi, writeKubeconfig, type FakeKubeApi } from '../fakes/kube-api.js';
import { closeServer, listenLoopback } from '../fakes/loopback.js';
import { FakePagerDuty, type PdRequest } from '../fakes/pagerduty.js';
import { FakeSlack, type SlackMessage } from '../fakes/slack.js';
import { startAlertmanager, type RunningAlertmanager } from '../helpers/alertmanager.js';
import { DATABASE_URL } from '../helpers/pg.js';
import { firingRunbookAlerts, RULES_DIR, RUNBOOK_TOLD, type ExpectedAlert } from '../helpers/runbook-alerts.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * Every runbook alert, end to end: the alerts promtool expects Prometheus to fire
 * (deploy/prometheus/runbook-alerts*.test.yml) go through one real Alertmanager to one remediator
 * running the rules shipped in rules/ (targets pointed at fakes), all at once. Per alert: the run
 * ends as its rule says, one Slack thread in the runbook's channel whose root links the runbook
 * section and the rule's status pages and says the impact, PagerDuty events with the runbook's
 * severity on the runbook's routing key (a page for notify-only rules, acknowledge for fixes),
 * and both resolved when the alert resolves.
 */

// Events API routing keys are 32 characters; the fake refuses others.
const KEYS: Record<string, string> = {
  PAGERDUTY_ROUTING_KEY: 'DEFAULTR0UT1NGKEY000000000000001',
  SAMIA_TAROT_PAGERDUTY_ROUTING_KEY: 'SAM1ATAR0TR0UT1NGKEY000000000002',
};
const HOOK_TOKEN = `hook-${randomBytes(8).toString('hex')}`;
/** The idle-connection-kill rule runs against the shared PostgreSQL: scoped to backends named this (there are none). */
const PG_APP = `runbooks-e2e-${randomBytes(4).toString('hex')}`;
/** The final run state each action reaches against the fakes. */
const FINAL: Record<string, string> = {
  notify: 'notified', 'breaker-reset': 'succeeded', 'worker-restart': 'succeeded', 'number-rotation': 'succeeded',
  'idle-connection-kill': 'skipped', // no backend idle for 10 minutes under PG_APP: nothing to terminate
};

interface RunRow { job_id: string; rule: string; action: string; state: string; group_key: string; alert_resolved_at: Date | null; summary: string | null }

describe('e2e: every runbook alert through Alertmanager to the shipped rules, Slack and PagerDuty', () => {
  const alerts = firingRunbookAlerts();
  let slack: FakeSlack;
  let pd: FakePagerDuty;
  let breaker: FakeBreaker;
  let kube: FakeKubeApi;
  let kubeconfig: string;
  let hook: { url: string; calls: { path: string; authorization?: string }[]; close(): Promise<void> };
  let svc: TestService;
  let am: RunningAlertmanager;
  let specs: Map<string, RuleSpec>;
  let runs: Map<string, RunRow>;
  /** Each alert's Slack root as it was while the alert fired (its text history keeps every version). */
  const firingRoots = new Map<string, { text: string; blocks: string }>();
  let timings = '';

  const readRuns = async () =>
    new Map((await svc.pool.query<RunRow>(`SELECT job_id, rule, action, state, group_key, alert_resolved_at, summary FROM "${svc.config.DATABASE_SCHEMA}".runs`)).rows.map((r) => [r.rule, r]));
  const dedupOf = (a: ExpectedAlert) => createHash('sha256').update(runs.get(RUNBOOK_TOLD[a.alertname]!.rule)!.group_key).digest('hex');
  const rootOf = (a: ExpectedAlert): SlackMessage[] =>
    slack.roots(RUNBOOK_TOLD[a.alertname]!.channel).filter((m) => headerOf(m).startsWith(`${a.alertname} · `));
  const events = (a: ExpectedAlert) => pd.enqueued(dedupOf(a));

  before(async () => {
    const started = Date.now();
    [slack, pd, breaker, kube] = await Promise.all([new FakeSlack().start(), new FakePagerDuty().start(), new FakeBreaker().start(), startFakeKubeApi()]);
    kube.add('Deployment', 'stario', 'video-gen-worker');
    kube.add('Deployment', 'stario', 'face-similarity');
    kubeconfig = await writeKubeconfig(kube.url, kube.token, { namespace: 'stario' });
    hook = await startHook();
    specs = new Map((await loadRules(RULES_DIR, buildRegistry())).rules.map((r) => [r.spec.name, r.spec]));
    svc = await startTestService({
      rules: await shippedRulesPointedAtFakes({ breaker: breaker.url, hook: hook.url }),
      env: {
        SLACK_BOT_TOKEN: slack.token,
        SLACK_API_URL: slack.url,
        // No SLACK_CHANNEL: every rule must name its own, or nobody is told.
        PAGERDUTY_EVENTS_URL: pd.url,
        ...KEYS,
        ALGORHYTHMIC_ADMIN_TOKEN: breaker.token,
        STARIO_PRIMARY_DATABASE_URL: DATABASE_URL,
        KUBECONFIG: kubeconfig,
        PROJECT_ONE_DELIVERY_TOKEN: HOOK_TOKEN,
      },
    });
    am = await startAlertmanager({ webhookUrl: `${svc.url}/webhooks/alertmanager`, bearerToken: 'test-webhook-token', groupBy: ['alertname'], groupWait: '1s', groupInterval: '1s' });

    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const postable = (endsAt?: string) => alerts.map((a) => ({ labels: a.labels, annotations: a.annotations, startsAt, ...(endsAt ? { endsAt } : {}) }));
    breaker.state = 'open';
    await am.postAlerts(postable());

    // Firing: every run ends, and each one's page (or acknowledge) and Slack root are out.
    const finalOf = (a: ExpectedAlert) => FINAL[RUNBOOK_TOLD[a.alertname]!.action]!;
    await settle(async () => {
      runs = await readRuns();
      return alerts.filter((a) => runs.get(RUNBOOK_TOLD[a.alertname]!.rule)?.state !== finalOf(a)).map((a) => a.alertname);
    }, 60_000);
    await settle(async () => alerts.filter((a) => {
      const told = RUNBOOK_TOLD[a.alertname]!;
      const run = runs.get(told.rule);
      if (!run) return true;
      const root = rootOf(a)[0];
      const paged = told.action !== 'notify' || events(a).some((e) => e.body.event_action === 'trigger');
      return !paged || !root || !root.text.includes(stateWord(run.state));
    }).map((a) => a.alertname), 60_000);
    for (const a of alerts) {
      const root = rootOf(a)[0];
      if (root) firingRoots.set(a.alertname, { text: root.text, blocks: JSON.stringify(root.blocks) });
    }
    timings += `fired and told: ${Date.now() - started} ms; `;

    // Resolved: Alertmanager sends the resolution; each run records it, PagerDuty and Slack follow.
    await am.postAlerts(postable(new Date().toISOString()));
    await settle(async () => {
      runs = await readRuns();
      return alerts.filter((a) => {
        const run = runs.get(RUNBOOK_TOLD[a.alertname]!.rule);
        const root = rootOf(a)[0];
        return !run?.alert_resolved_at || !events(a).some((e) => e.body.event_action === 'resolve') || !root?.text.includes('Alert resolved');
      }).map((a) => a.alertname);
    }, 60_000);
    timings += `resolved everywhere: ${Date.now() - started} ms`;
  });

  after(async () => {
    await am?.stop();
    await svc?.close();
    await Promise.all([slack?.stop(), pd?.stop(), breaker?.stop(), kube?.close(), hook?.close()]);
    if (kubeconfig) await rm(dirname(kubeconfig), { recursive: true, force: true });
    if (timings) console.log(`# runbooks e2e: ${alerts.length} alerts; ${timings}`);
  });

  test('the remediations acted on their fakes, and nothing was told outside the runbooks\' channels and keys', () => {
    assert.equal(breaker.resets, 1, 'the image-gen breaker was reset once');
    assert.deepEqual(kube.patches().map((p) => p.path).sort(), ['/apis/apps/v1/namespaces/stario/deployments/face-similarity', '/apis/apps/v1/namespaces/stario/deployments/video-gen-worker']);
    assert.equal(hook.calls.length, 2, 'the delivery service heard of both rotations');
    assert.ok(hook.calls.every((c) => c.authorization === `Bearer ${HOOK_TOKEN}`));
    const channels = new Set(Object.values(RUNBOOK_TOLD).map((t) => t.channel));
    const posted = new Set(slack.okCalls('chat.postMessage').map((c) => slack.channelId(String(c.args.channel))));
    assert.deepEqual([...posted].sort(), [...channels].map((c) => slack.channelId(c)).sort());
    for (const c of channels) {
      const expected = Object.values(RUNBOOK_TOLD).filter((t) => t.channel === c).length;
      assert.equal(slack.roots(c).length, expected, `${c}: one thread per alert`);
    }
    const keys = new Set(Object.values(KEYS));
    assert.ok(pd.enqueued().every((r) => keys.has(r.body.routing_key) && r.status === 202), 'every PagerDuty event accepted, on a known key');
    assert.equal(runs.size, alerts.length, 'one run per alert');
  });

  for (const a of alerts) {
    const told = RUNBOOK_TOLD[a.alertname]!;
    test(`${a.alertname}: ${told.rule} -> ${told.channel}, PagerDuty ${told.severity} on ${told.routingKeyEnv}, runbook link; resolved in both`, () => {
      const spec = specs.get(told.rule)!;
      const run = runs.get(told.rule);
      assert.ok(run, `a run of ${told.rule}`);
      assert.equal(run.state, FINAL[told.action], `${told.rule}: ${run.summary}`);
      assert.ok(run.alert_resolved_at, 'the resolution reached the run');

      // Slack: one thread in the runbook's channel; the root gives the runbook, the impact and the status pages.
      const roots = rootOf(a);
      assert.equal(roots.length, 1, `one root in ${told.channel}`);
      const root = roots[0]!;
      const firing = firingRoots.get(a.alertname)!;
      assert.ok(firing, 'the root was out while the alert fired');
      assert.ok(firing.blocks.includes(`<${told.runbook}|Runbook>`), `runbook link in ${firing.blocks}`);
      assert.ok(firing.blocks.includes(`*Impact:* ${esc(spec.impact!)}`), 'the impact line');
      assert.match(firing.text, new RegExp(`Impact: ${escapeRe(esc(spec.impact!))}`));
      for (const l of spec.links) assert.ok(firing.blocks.includes(`<${l.url}|${esc(l.text)}>`), `link ${l.text}`);
      if (told.action === 'notify') {
        assert.ok(firing.text.includes(esc((spec.params as { instructions: string }).instructions)), 'the first moves');
        // One message says it: no broadcast copy of the root in the thread (nor in the channel).
        const replies = slack.replies(told.channel, root.ts);
        assert.ok(replies.every((r) => !r.reply_broadcast), 'nothing broadcast');
        assert.deepEqual(slack.threadLines(told.channel, root.ts).map((l) => l.replace(/^:\w+: /, '')), ['Alert resolved in Alertmanager.']);
      }
      assert.match(root.text, /Alert resolved/, 'the root says the alert resolved');

      // PagerDuty: every event on the runbook's routing key; a notify-only rule pages with its words.
      const sent = events(a);
      const key = KEYS[told.routingKeyEnv]!;
      assert.ok(sent.length > 0);
      assert.ok(sent.every((e) => e.body.routing_key === key), `all on ${told.routingKeyEnv}`);
      const actions = sent.map((e) => e.body.event_action);
      if (told.action === 'notify') {
        assert.deepEqual(actions, ['trigger', 'resolve']);
        const page = sent[0]!.body as PdRequest['body'];
        assert.equal(page.payload.severity, told.severity);
        const source = a.labels.service!;
        assert.equal(page.payload.source, source, 'the service label is the source');
        assert.ok(
          (page.payload.summary as string).startsWith(`No automatic remediation for ${a.alertname} on ${source}: ${spec.impact}`),
          page.payload.summary,
        );
        assert.equal(page.payload.custom_details.impact, spec.impact);
        assert.equal(page.payload.custom_details.instructions, (spec.params as { instructions: string }).instructions);
        assert.deepEqual(page.links.slice(0, 1 + spec.links.length), [
          { href: told.runbook, text: 'Runbook' },
          ...spec.links.map((l) => ({ href: l.url, text: l.text })),
        ]);
        const incident = pd.incident(page.dedup_key);
        assert.equal(incident?.status, 'resolved', 'the page is resolved in PagerDuty');
        assert.equal(incident?.routing_key, key);
      } else {
        // A fix acknowledges the incident Alertmanager's own PagerDuty integration opened while it
        // runs (unless it ended before PagerDuty heard of it), pages nobody, and resolves it.
        assert.ok(['acknowledge,resolve', 'resolve'].includes(actions.join()), actions.join());
        assert.equal(spec.notify.pagerduty !== false && spec.notify.pagerduty?.severity, told.severity, 'a failed fix would page with this severity');
      }
    });
  }
});

/** Every rules file shipped in rules/, with its targets pointed at this test's fakes. */
async function shippedRulesPointedAtFakes(fakes: { breaker: string; hook: string }): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const at = (url: string, base: string) => {
    const u = new URL(url);
    return new URL(u.pathname + u.search, base).toString();
  };
  for (const name of (await readdir(RULES_DIR)).filter((f) => f.endsWith('.yml')).sort()) {
    const doc = parse(await readFile(join(RULES_DIR, name), 'utf8')) as { targets?: Record<string, any>; rules: Record<string, any>[] };
    for (const t of Object.values(doc.targets ?? {})) {
      if (t.kind === 'http-breaker') {
        t.status.url = at(t.status.url, fakes.breaker);
        t.reset.url = at(t.reset.url, fakes.breaker);
      } else if (t.kind === 'number-pool') {
        t.hook.url = at(t.hook.url, fakes.hook);
        // The two numbers the alerts name are active; two hot spares take over.
        t.seed = [
          { provider_id: '106540352242922', number: '+919800000001', state: 'active' },
          { provider_id: '106540352242923', number: '+919800000002', state: 'active' },
          { provider_id: '106540352242990', number: '+919800000090', state: 'spare' },
          { provider_id: '106540352242991', number: '+919800000091', state: 'spare' },
        ];
      } else if (t.kind !== 'postgres' && t.kind !== 'kubernetes') {
        // postgres: STARIO_PRIMARY_DATABASE_URL; kubernetes: KUBECONFIG. Anything else needs a fake here.
        throw new Error(`${name}: target kind ${t.kind} is not pointed at a fake`);
      }
    }
    for (const r of doc.rules) {
      // Waits between polls are the only timing changed: the fakes settle at once.
      if (r.params?.poll_interval) r.params.poll_interval = '100ms';
      // The PostgreSQL server is shared with other tests: touch only backends of this test.
      if (r.action === 'idle-connection-kill') r.params.applications = [PG_APP];
    }
    out[name] = stringify(doc);
  }
  return out;
}

/** The delivery service's hook: records each call, answers 200. */
async function startHook() {
  const calls: { path: string; authorization?: string }[] = [];
  const { server, url } = await listenLoopback((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      calls.push({ path: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  return { url, calls, close: () => closeServer(server) };
}

/** Polls until `pending()` lists nothing or the deadline passes; the tests then say what is missing. */
async function settle(pending: () => Promise<string[]>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = await pending().catch(() => ['(error)']);
    if (left.length === 0 || Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function headerOf(m: SlackMessage): string {
  const header = (m.blocks ?? []).find((b) => (b as { type?: string }).type === 'header') as { text?: { text?: string } } | undefined;
  return header?.text?.text ?? '';
}

/** The words the root's fallback text uses for a final run state. */
function stateWord(state: string): string {
  return { notified: 'No automatic fix', succeeded: 'Succeeded', skipped: 'Skipped' }[state] ?? state;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
