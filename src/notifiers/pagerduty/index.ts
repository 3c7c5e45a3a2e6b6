import type { RecordedEvent } from '../../core/run.js';
import { PermanentError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { RuleTable } from '../../rules/load.js';
import type { RuleSpec } from '../../rules/schema.js';
import type { IncidentRow, NotifyState } from '../../store/notify-state.js';
import type { Notifier, Route, SyncContext } from '../types.js';
import { guideOf } from '../guide.js';
import { PagerDutyClient, type PagerDutyClientOptions } from './client.js';
import { noteContent, pageEvent, planIncident, policyOf, stateEvent, type PagerDutyPolicy } from './events.js';

export interface PagerDutyNotifierOptions extends PagerDutyClientOptions {
  /** Where routing keys are read from, by the name a rule gives (`routing_key_env`). */
  env: NodeJS.ProcessEnv;
  /** Env var holding the routing key of rules that name none. Default PAGERDUTY_ROUTING_KEY. */
  defaultRoutingKeyEnv?: string;
  state: NotifyState;
  table: () => RuleTable | undefined;
  log?: Logger;
  /** remediator's public URL (PUBLIC_URL): pages link to the run's page. */
  linkBase?: string;
  /** Events per second per routing key, and the burst (PagerDuty: 120 per minute). */
  pace?: { rate: number; burst: number };
}

/** Events PagerDuty hears about at once: a fix starting (acknowledge), failing, a notify-only page, a page. */
const URGENT = new Set(['running', 'failed', 'notified']);
/** Events that can change what an incident needs. */
const PLANNED = new Set(['running', 'succeeded', 'failed', 'skipped', 'notified', 'alert_resolved', 'dry_run']);
/** Events told as incident notes (with a REST token). */
const NOTED = new Set(['step', 'retrying', 'note', 'approval_requested', 'approved', 'rejected', 'expired', 'effective', 'ineffective']);

/**
 * The PagerDuty notifier: one state per incident (dedup key) and routing key, brought up to date
 * from the journal: one acknowledge when a fix starts, a page when a fix fails or no fix exists
 * (or a safety decision needs a person), one resolve when the incident's alerts resolved and its
 * runs fixed them; with a REST token, the incident's runs' steps as notes (several per note when
 * they came together). Dry runs never reach PagerDuty: a dry run must neither silence
 * (acknowledge) nor wake anyone.
 */
export function createPagerDutyNotifier(o: PagerDutyNotifierOptions): Notifier {
  const log = (o.log ?? silentLogger).child({ notifier: 'pagerduty' });
  const client = new PagerDutyClient(o);
  const defaultKeyEnv = o.defaultRoutingKeyEnv ?? 'PAGERDUTY_ROUTING_KEY';
  if (o.apiToken && !o.from) log.warn('PAGERDUTY_API_TOKEN is set but PAGERDUTY_FROM is not: incident notes are off (PagerDuty requires a From user)');
  const warned = new Set<string>();
  const once = (key: string, level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => {
    if (warned.has(key)) return;
    warned.add(key);
    log[level](msg, fields);
  };
  const keyEnvOf = (p: PagerDutyPolicy) => p.routing_key_env ?? defaultKeyEnv;
  const keyOf = (env: string) => (o.env[env] === undefined || o.env[env] === '' ? undefined : o.env[env]);

  async function syncIncident(routing: string, dedupKey: string, ctx: SyncContext): Promise<Record<string, unknown> | void> {
    const found = keyOf(routing);
    if (!found) throw new PermanentError('missing_secret', `routing key env var ${routing} is not set`);
    const key: string = found;
    const table = o.table();
    const rules = (table?.rules ?? []).filter((r) => {
      const p = policyOf(r.spec.notify);
      return p && keyEnvOf(p) === routing;
    });
    const policies = new Map(rules.map((r) => [r.spec.name, policyOf(r.spec.notify)!]));
    let inc = await o.state.incident(dedupKey, routing);
    let runs = await o.state.incidentRuns(dedupKey, [...policies.keys()]);
    if (inc.resolved_at && runs.some((r) => r.queued_at > inc.resolved_at!)) {
      // The alert group fired again after remediator resolved its incident: a new cycle.
      const opened = inc.resolved_at;
      await o.state.saveIncident(dedupKey, routing, { acked_at: null, resolved_at: null, paged: [], opened_at: opened });
      inc = { ...inc, acked_at: null, resolved_at: null, paged: [], opened_at: opened };
    }
    runs = runs.filter((r) => r.queued_at > inc.opened_at);
    if (runs.length === 0) return;
    const pages = await o.state.incidentPages(dedupKey, [...policies.keys()], inc.opened_at);
    const actions = planIncident({ dedupKey, incident: inc, runs, pages, policyOfRule: (r) => policies.get(r) });
    const sent: Record<string, unknown>[] = [];
    try {
      await send(actions);
    } catch (err) {
      // A final failure is recorded against the incident's first run (notifications are per run).
      if (err instanceof PermanentError) err.details.job_id ??= runs[0]!.job_id;
      throw err;
    }
    async function send(actions: ReturnType<typeof planIncident>): Promise<void> {
    for (const a of actions) {
      await ctx.paced();
      if (a.kind === 'acknowledge') {
        sent.push(await client.enqueue(stateEvent('acknowledge', dedupKey), key, ctx.signal, ctx.log));
        inc.acked_at = new Date();
        await o.state.saveIncident(dedupKey, routing, { acked_at: inc.acked_at });
      } else if (a.kind === 'resolve') {
        sent.push(await client.enqueue(stateEvent('resolve', dedupKey), key, ctx.signal, ctx.log));
        inc.resolved_at = new Date();
        await o.state.saveIncident(dedupKey, routing, { resolved_at: inc.resolved_at });
      } else {
        const spec = rules.find((r) => r.spec.name === a.runs[0]!.rule)?.spec;
        sent.push(await client.enqueue(pageEvent(a, { baseKey: dedupKey, linkBase: o.linkBase, words: { severity: policyOf(spec?.notify)?.severity, ...guideOf(spec) }, now: new Date() }), key, ctx.signal, ctx.log));
        inc.paged = [...inc.paged, ...a.marks];
        await o.state.saveIncident(dedupKey, routing, { paged: inc.paged });
      }
    }
    if (client.canNote) await note(dedupKey, routing, inc, [...policies.keys()], ctx, sent);
    }
    for (const s of sent) {
      await o.state.recorded({ jobId: runs[0]!.job_id, notifier: 'pagerduty', eventType: String(s.event_action ?? 'note'), state: 'sent', attempt: 1, detail: s })
        .catch((err: Error) => ctx.log.warn('could not record a PagerDuty notification', { error: err.message }));
    }
    return sent.length ? { sent: sent.length } : undefined;
  }

  async function note(dedupKey: string, routing: string, inc: IncidentRow, rules: string[], ctx: SyncContext, sent: Record<string, unknown>[]): Promise<void> {
    const events = (await o.state.incidentEvents(dedupKey, rules, inc.notes_through, 50)).filter((e) => NOTED.has(e.state));
    const last = events.at(-1);
    if (!last) return;
    await ctx.paced();
    sent.push(await client.note(dedupKey, noteContent(events), ctx.signal));
    await o.state.saveIncident(dedupKey, routing, { notes_through: last.id });
  }

  return {
    name: 'pagerduty',
    pace: o.pace ?? { rate: 2, burst: 10 },
    route(e: RecordedEvent, rule: RuleSpec | undefined): Route[] {
      if (e.dryRun || !e.incident || e.details?.to === 'slack') return [];
      const policy = rule ? policyOf(rule.notify) : undefined;
      if (!policy) {
        if (rule) once(`off:${rule.name}`, 'info', 'PagerDuty is off for this rule (notify.pagerduty: false)', { rule: rule.name });
        return [];
      }
      const env = keyEnvOf(policy);
      if (!keyOf(env)) {
        once(`key:${rule!.name}:${env}`, 'warn', 'PagerDuty routing key env var is not set: nothing is sent to PagerDuty for this rule', { rule: rule!.name, routing_key_env: env });
        return [];
      }
      const page = e.details?.page !== undefined;
      if (!page && !PLANNED.has(e.type) && !(client.canNote && NOTED.has(e.type))) return [];
      return [{ destination: `pagerduty:${env}`, item: `incident:${e.incident}`, urgent: page || URGENT.has(e.type) }];
    },
    async sync(destination, item, ctx) {
      if (!item.startsWith('incident:')) return ctx.log.warn('pagerduty: unknown outbox item', { item });
      return syncIncident(destination.slice('pagerduty:'.length), item.slice('incident:'.length), ctx);
    },
  };
}
