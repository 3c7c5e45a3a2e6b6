/**
 * Block Kit rendering of a remediation run for Slack: pure functions, no I/O.
 *
 * Phone first: header, sections, fields and context blocks only (no wide tables), and always a
 * plain `text` fallback, which Slack uses for notifications, screen readers and old clients.
 * Labels, annotations and messages are untrusted: mrkdwn control characters are escaped so an
 * alert cannot inject mentions (`<!channel>`) or links, and only http(s) URLs become links.
 * Limits: https://docs.slack.dev/reference/block-kit/blocks (header 150, section text 3000,
 * field 2000, context 10 elements).
 */
import { formatElapsed } from '../../core/duration.js';
import { truncate } from '../../core/text.js';
import type { AlertInfo } from '../../core/alert.js';
import type { RunEventType, RunState } from '../../core/run.js';
import { sentence, type RuleGuide } from '../guide.js';

/** A Block Kit block, structurally (the SDK's KnownBlock lives in @slack/types, not a direct dependency). */
export interface SlackBlock {
  type: string;
  [key: string]: unknown;
}

export interface SlackBody {
  text: string;
  blocks: SlackBlock[];
}

/** What the root message shows: the run row (source of truth for the state) plus the alert. */
export interface RootView {
  rule: string;
  action: string;
  target?: string | null;
  dryRun: boolean;
  alert: AlertInfo;
  externalURL: string;
  state: RunState;
  attempts: number;
  summary?: string | null;
  reason?: string | null;
  error?: string | null;
  alertResolvedAt?: Date | null;
  durationMs?: number | null;
  /** The run id, carried by the "Pause this rule" button. */
  jobId?: string;
  /** Slack interactivity is set up (SLACK_SIGNING_SECRET): show the buttons. */
  interactive?: boolean;
  /** What the rule tells people: its runbook (else the alert's runbook_url annotation), impact and links. */
  guide?: RuleGuide;
}

/** Labels worth a line on a phone, in this order; alertname and severity are shown apart. */
const IMPORTANT = ['namespace', 'deployment', 'statefulset', 'daemonset', 'service', 'job', 'pod', 'container', 'instance',
  'cluster', 'env', 'environment', 'region', 'app', 'team', 'pool', 'database', 'datname', 'queue', 'provider_id'];
const HIDDEN = new Set(['alertname', 'severity', 'remediation', '__name__', 'prometheus', 'prometheus_replica']);
const MAX_LABELS = 6;

const SKIP_REASONS: Record<string, string> = {
  cooldown: 'cooldown',
  duplicate: 'duplicate of an earlier run',
  paused: 'paused by an operator',
  quarantined: 'quarantined: fixes did not hold',
  human_ack: 'a person acknowledged in PagerDuty',
  resolved: 'alert resolved before it ran',
  budget: 'run budget spent',
  rejected: 'rejected by an approver',
  approval_expired: 'nobody approved in time',
};

/** The emoji and words for a run state, as the root and the fallback text show them. */
export function stateLabel(state: RunState, o: { attempts?: number; reason?: string | null } = {}): { emoji: string; label: string } {
  const n = o.attempts ?? 0;
  switch (state) {
    case 'queued':
      return { emoji: ':hourglass_flowing_sand:', label: 'Queued' };
    case 'running':
      return { emoji: ':gear:', label: `Running (attempt ${Math.max(1, n)})` };
    case 'retrying':
      return { emoji: ':repeat:', label: `Retrying (attempt ${Math.max(1, n)} failed)` };
    case 'succeeded':
      return { emoji: ':white_check_mark:', label: 'Succeeded: fixed automatically' };
    case 'failed':
      return { emoji: ':x:', label: 'Failed: needs a human' };
    case 'skipped':
      return { emoji: ':fast_forward:', label: `Skipped (${(o.reason && SKIP_REASONS[o.reason]) ?? 'nothing to do'})` };
    case 'dry_run':
      return { emoji: ':test_tube:', label: 'Dry run: nothing was changed' };
    case 'notified':
      return { emoji: ':rotating_light:', label: 'No automatic fix: escalated' };
  }
}

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** At most `max` characters, never cutting a surrogate pair in two (Slack would refuse the half). */
export const clip = truncate;

/** A mrkdwn link, or undefined when the URL is not http(s). */
export function link(url: string | undefined, label: string): string | undefined {
  if (!url || !/^https?:\/\/[^\s]+$/i.test(url)) return undefined;
  const safe = url.replace(/\|/g, '%7C').replace(/</g, '%3C').replace(/>/g, '%3E');
  return `<${safe}|${esc(label)}>`;
}

/** The labels worth showing (known important ones first, then others), and how many were left out. */
export function importantLabels(labels: Record<string, string>): { shown: [string, string][]; more: number } {
  const rest = Object.keys(labels).filter((k) => !HIDDEN.has(k));
  const known = IMPORTANT.filter((k) => rest.includes(k));
  const others = rest.filter((k) => !IMPORTANT.includes(k)).sort();
  const ordered = [...known, ...others];
  const shown = ordered.slice(0, MAX_LABELS).map((k): [string, string] => [k, labels[k]!]);
  return { shown, more: ordered.length - shown.length };
}

/** Alertmanager's UI filtered on this alert's labels, or its home page. */
export function alertmanagerUrl(externalURL: string, labels: Record<string, string>): string | undefined {
  if (!/^https?:\/\//i.test(externalURL)) return undefined;
  const base = externalURL.replace(/\/+$/, '');
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return base;
  const matchers = keys.map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  return `${base}/#/alerts?filter=${encodeURIComponent(`{${matchers.join(',')}}`)}`;
}

/** The root message of a run's thread. */
export function renderRoot(v: RootView): SlackBody {
  const { labels, annotations } = v.alert;
  const alertname = labels.alertname ?? 'Alert';
  const severity = labels.severity;
  const st = stateLabel(v.state, { attempts: v.attempts, reason: v.reason });
  const resolved = v.alertResolvedAt ? ' · :large_green_circle: alert resolved' : '';
  const detail = v.state === 'failed' ? (v.summary ?? v.error) : v.summary;
  const where = v.target ? ` on ${v.target}` : '';
  const impact = v.guide?.impact;

  // The fallback is mrkdwn too (notifications): escaped like the blocks.
  const text = clip(esc(
    `${st.emoji} ${st.label}${v.dryRun && v.state !== 'dry_run' ? ' [DRY RUN]' : ''}: ${alertname}${severity ? ` (${severity})` : ''}${where}` +
      `${annotations.summary ? ` - ${annotations.summary}` : ''}.${impact ? ` Impact: ${sentence(impact)}` : ''} Rule ${v.rule}, action ${v.action}.` +
      `${v.alertResolvedAt ? ' Alert resolved.' : ''}${detail ? ` ${detail}` : ''}`),
    3000,
  );

  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${v.dryRun ? '[DRY RUN] ' : ''}${alertname}${severity ? ` · ${severity}` : ''}`, 150), emoji: true } },
  ];
  const lines = [
    annotations.summary ? `*${esc(clip(annotations.summary, 300))}*` : undefined,
    impact ? `:warning: *Impact:* ${esc(clip(impact, 300))}` : undefined,
    `${st.emoji} *${esc(st.label)}*${resolved}`,
    detail ? esc(clip(detail, 1500)) : undefined,
  ].filter((l): l is string => l !== undefined);
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } });
  if (v.dryRun) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: ':test_tube: *Dry run*: the remediation only checks and reports what it would do; it changes nothing.' }] });
  }
  const fields = [
    `*Rule*\n${esc(clip(v.rule, 200))}`,
    `*Action*\n${esc(clip(v.action, 200))}`,
    v.target ? `*Target*\n${esc(clip(v.target, 200))}` : undefined,
    v.attempts > 0 ? `*Attempts*\n${v.attempts}${v.durationMs != null ? ` (${formatElapsed(v.durationMs)})` : ''}` : undefined,
  ].filter((f): f is string => f !== undefined);
  blocks.push({ type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: f })) });

  const { shown, more } = importantLabels(labels);
  if (shown.length > 0) {
    const txt = shown.map(([k, val]) => `${esc(k)}: \`${esc(clip(val, 120))}\``).join(' · ') + (more > 0 ? ` · +${more} more` : '');
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(txt, 2000) }] });
  }
  // The runbook and the rule's links (status pages) first: they are the person's first moves.
  const links = [
    link(v.guide?.runbook ?? annotations.runbook_url, 'Runbook'),
    ...(v.guide?.links ?? []).map((l) => link(l.url, l.text)),
    link(v.alert.generatorURL, 'Prometheus'),
    link(alertmanagerUrl(v.externalURL, labels), 'Alertmanager'),
  ].filter((l): l is string => l !== undefined);
  if (links.length > 0) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: links.join(' · ') }] });
  if (v.interactive && v.jobId) blocks.push(pauseButton(v.rule, v.jobId));
  return { text, blocks };
}

/** One event of a run as a thread reply shows it. */
export interface ReplyEvent {
  type: RunEventType;
  message: string;
  attempt?: number | null;
  reason?: string | null;
  details?: Record<string, unknown> | null;
  rule: string;
  target?: string | null;
  dryRun: boolean;
  alertname?: string | null;
}

/** The words of one event in a thread, or undefined when the root alone tells it (queued, running, notified). */
export function replyLine(e: ReplyEvent): { head: string; notes: string[]; broadcast: boolean } | undefined {
  const alertname = e.alertname ?? 'alert';
  const where = e.target ? ` on ${e.target}` : '';
  const attempt = e.attempt ? `Attempt ${e.attempt}: ` : '';
  let head: string;
  let broadcast = false;
  switch (e.type) {
    case 'queued':
    case 'running':
    // A notify-only run: the root says it all (a reply would say it twice in the channel).
    case 'notified':
      return undefined;
    case 'step':
      head = `:small_blue_diamond: ${attempt}${e.message}`;
      break;
    case 'retrying':
      head = `:repeat: ${e.message}`;
      break;
    case 'succeeded':
      head = `:white_check_mark: *Succeeded*: ${e.message}`;
      break;
    case 'failed':
      head = `:x: *Remediation failed* for ${alertname}${where} (rule ${e.rule}): ${e.message}`;
      broadcast = true;
      break;
    case 'skipped':
      head = `:fast_forward: *Skipped*${e.reason ? ` (${SKIP_REASONS[e.reason] ?? e.reason})` : ''}: ${e.message}`;
      break;
    case 'dry_run':
      head = `:test_tube: *Dry run*, nothing was changed: ${e.message}`;
      break;
    case 'alert_resolved':
      head = ':large_green_circle: Alert resolved in Alertmanager.';
      break;
    case 'approval_requested':
      head = `:raising_hand: ${e.message}`;
      broadcast = true; // a person must see it
      break;
    case 'approved':
      head = `:white_check_mark: ${e.message}`;
      break;
    case 'rejected':
    case 'expired':
      head = `:no_entry: ${e.message}`;
      break;
    case 'note':
      head = `:speech_balloon: ${e.message}`;
      break;
    case 'effective':
      head = `:white_check_mark: ${e.message}`;
      break;
    case 'ineffective':
      head = `:warning: ${e.message}`;
      break;
  }
  const notes: string[] = [];
  if (e.reason && (e.type === 'failed' || e.type === 'retrying')) notes.push(`reason: \`${esc(e.reason)}\``);
  if (e.dryRun && e.type !== 'dry_run') notes.push(':test_tube: dry run');
  const { page: _page, decision: _decision, approval_request: _req, to: _to, ...shown } = e.details ?? {};
  const details = formatDetails(shown);
  if (details) notes.push(details);
  return { head, notes, broadcast };
}

/** Most events told in one thread message: a run whose events came while it waited is told in one post. */
export const MAX_EVENTS_PER_REPLY = 10;

/**
 * The thread messages for a run's events not told yet: consecutive events share one message (at
 * most MAX_EVENTS_PER_REPLY), an approval request goes alone with its buttons. Each message says
 * which event it tells up to (`through`), so the thread records its progress message by message.
 */
export function renderReplies<E extends ReplyEvent & { id: string }>(events: E[], o: { interactive?: boolean; jobId?: string } = {}): (SlackBody & { broadcast: boolean; through: string })[] {
  const out: (SlackBody & { broadcast: boolean; through: string })[] = [];
  let group: { head: string; notes: string[]; broadcast: boolean }[] = [];
  let through = '';
  const flush = () => {
    if (group.length === 0) return;
    const blocks: SlackBlock[] = [];
    for (const g of group) {
      blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(esc(g.head), 3000) } });
      if (g.notes.length > 0) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(g.notes.join('\n'), 3000) }] });
    }
    const first = group.find((g) => g.broadcast) ?? group[group.length - 1]!;
    const more = group.length > 1 ? ` (+${group.length - 1} more in the thread)` : '';
    out.push({ text: clip(esc(first.head) + more, 3000), blocks, broadcast: group.some((g) => g.broadcast), through });
    group = [];
  };
  for (const e of events) {
    const line = replyLine(e);
    if (!line) {
      through = e.id; // told by the root: counts as told with the messages around it
      continue;
    }
    const approvalFor = e.type === 'approval_requested' && typeof e.details?.approval_request === 'string' ? e.details.approval_request : undefined;
    if (approvalFor) {
      flush();
      const blocks: SlackBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: clip(esc(line.head), 3000) } }];
      if (o.interactive) blocks.push(approvalButtons(approvalFor));
      through = e.id;
      out.push({ text: clip(esc(line.head), 3000), blocks, broadcast: true, through });
      continue;
    }
    group.push(line);
    through = e.id;
    if (group.length >= MAX_EVENTS_PER_REPLY) flush();
  }
  flush();
  // Events after the last message that need none count as told with it.
  const last = events.at(-1);
  if (last && out.length) out[out.length - 1]!.through = last.id;
  return out;
}

/** `key: value` lines for a step's details (pids, rollout progress, numbers, breaker states). */
export function formatDetails(details: Record<string, unknown> | undefined): string | undefined {
  if (!details) return undefined;
  const entries = Object.entries(details).filter(([, v]) => v !== undefined && v !== null);
  if (entries.length === 0) return undefined;
  const lines = entries.slice(0, 8).map(([k, v]) => `${esc(k)}: \`${esc(clip(typeof v === 'string' ? v : JSON.stringify(v), 300))}\``);
  if (entries.length > 8) lines.push(`+${entries.length - 8} more`);
  return lines.join('\n');
}


/** action_id of the "Pause this rule" button (src/receivers/slack-interactions.ts handles it). */
export const PAUSE_RULE_ACTION = 'remediator_pause_rule';

/** The "Pause this rule" button; its value is the run id, from which the handler finds the rule. */
export function pauseButton(rule: string, jobId: string): SlackBlock {
  return {
    type: 'actions',
    block_id: 'remediator_run_actions',
    elements: [{
      type: 'button', action_id: PAUSE_RULE_ACTION, style: 'danger', value: jobId,
      text: { type: 'plain_text', text: 'Pause this rule', emoji: false },
      confirm: {
        title: { type: 'plain_text', text: 'Pause this rule?' },
        text: { type: 'mrkdwn', text: esc(clip(`No run of rule ${rule} will act until someone resumes it (remediator resume rule:${rule}).`, 300)) },
        confirm: { type: 'plain_text', text: 'Pause' },
        deny: { type: 'plain_text', text: 'Cancel' },
      },
    }],
  };
}

export const APPROVE_ACTION = 'remediator_approve';
export const REJECT_ACTION = 'remediator_reject';

/** Approve and Reject for a run waiting for a person; the value is the run id. */
export function approvalButtons(jobId: string): SlackBlock {
  return {
    type: 'actions',
    block_id: 'remediator_approval',
    elements: [
      { type: 'button', action_id: APPROVE_ACTION, style: 'primary', value: jobId, text: { type: 'plain_text', text: 'Approve' } },
      { type: 'button', action_id: REJECT_ACTION, style: 'danger', value: jobId, text: { type: 'plain_text', text: 'Reject' } },
    ],
  };
}
