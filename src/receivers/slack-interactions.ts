import { createHmac, timingSafeEqual } from 'node:crypto';
import { answerAndClose } from './http-edge.js';
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { WebClient } from '@slack/web-api';
import { APPROVE_ACTION, esc, PAUSE_RULE_ACTION, REJECT_ACTION } from '../notifiers/slack/format.js';
import type { RuleTable } from '../rules/load.js';
import { decideApproval, noteOnRun, pause, type Operator } from '../run/operator.js';

/** Slack refuses requests older than this itself; so do we (replay window). */
export const SLACK_MAX_AGE_S = 5 * 60;

/**
 * Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>`
 * with the app's signing secret; timestamps more than 5 minutes away are refused.
 * https://api.slack.com/authentication/verifying-requests-from-slack
 */
export function slackSignatureValid(raw: Buffer, timestamp: string | undefined, signature: string | undefined, secret: string, nowS: number): boolean {
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowS - Number(timestamp)) > SLACK_MAX_AGE_S) return false;
  const m = /^v0=([0-9a-f]{64})$/.exec(signature);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`v0:${timestamp}:`).update(raw).digest();
  return timingSafeEqual(Buffer.from(m[1]!, 'hex'), expected);
}

/** The fields of a block_actions payload we read (Slack sends many more). */
const blockActions = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().min(1), username: z.string().optional(), name: z.string().optional() }).passthrough(),
  trigger_id: z.string().min(1),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional(), action_ts: z.string() }).passthrough()).min(1),
  container: z.object({ channel_id: z.string().optional(), message_ts: z.string().optional() }).passthrough().optional(),
}).passthrough();
type BlockActions = z.output<typeof blockActions>;

export interface SlackInteractionDeps {
  slackSigningSecret?: string;
  slack?: WebClient;
  operator: Operator;
  table: () => RuleTable | undefined;
  log: Logger;
}

/**
 * POST /slack/interactions: button clicks from run messages. Every request is verified (signature,
 * 5-minute window) and handled once: its trigger_id is remembered in Redis (SET NX EX), so a
 * replay inside the window changes nothing and gets 401 like a bad signature.
 */
export function slackInteractionsRouter(deps: SlackInteractionDeps): Router {
  const router = express.Router();
  router.post('/slack/interactions', express.raw({ type: () => true, limit: '256kb' }), async (req, res) => {
    const secret = deps.slackSigningSecret;
    if (!secret) return void res.status(403).json({ error: 'Slack interactivity disabled: set SLACK_SIGNING_SECRET' });
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const nowS = Math.floor(deps.operator.now().getTime() / 1000);
    if (!slackSignatureValid(raw, req.header('x-slack-request-timestamp'), req.header('x-slack-signature'), secret, nowS)) {
      return answerAndClose(res, 401, { error: 'bad, missing or stale Slack signature' });
    }
    let payload: unknown;
    try {
      payload = JSON.parse(new URLSearchParams(raw.toString('utf8')).get('payload') ?? '');
    } catch {
      return void res.status(400).json({ error: 'payload: not a JSON form field' });
    }
    const parsed = blockActions.safeParse(payload);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return void res.status(400).json({ error: `payload.${i.path.join('.')}: ${i.message}` });
    }
    const p = parsed.data;
    if (!(await deps.operator.store.firstSeen('slack', p.trigger_id, SLACK_MAX_AGE_S * 2))) {
      return answerAndClose(res, 401, { error: 'replayed Slack request' });
    }
    const action = p.actions[0]!;
    if (action.action_id === PAUSE_RULE_ACTION) return void res.status(200).json(await pauseRule(deps, p.user.id, action.value ?? ''));
    if (action.action_id === APPROVE_ACTION || action.action_id === REJECT_ACTION) {
      return void res.status(200).json(await decide(deps, p, action.value ?? '', action.action_id === APPROVE_ACTION));
    }
    res.status(200).json({ ignored: `unknown action ${action.action_id}` });
  });
  return router;
}

/** "Pause this rule": pauses the rule of the run the message is about, and says so in its thread. */
async function pauseRule(deps: SlackInteractionDeps, user: string, jobId: string): Promise<Record<string, unknown>> {
  const run = await deps.operator.runs.getRun(jobId);
  if (!run) return { ignored: 'no such run' };
  const p = await pause(deps.operator, { scope: `rule:${run.rule}`, by: `slack:${user}`, reason: `paused from Slack by user ${user}` });
  const message = `Slack user ${user} paused rule ${run.rule} from Slack: no run of it acts until someone resumes it (remediator resume rule:${run.rule}).`;
  await noteOnRun(deps.operator, run, message, { pause: p, to: 'slack' });
  return { paused: p.scope };
}

/**
 * Approve / Reject: only a listed approver (a user id, or a member of a listed user group) decides;
 * the decision is recorded (who, when) and the message is updated to say it, without buttons.
 */
async function decide(deps: SlackInteractionDeps, p: BlockActions, jobId: string, approve: boolean): Promise<Record<string, unknown>> {
  const req = await deps.operator.approvals.requestOf(jobId);
  if (!req) return { ignored: 'this run is not waiting for an approval' };
  const user = p.user.id;
  if (!(await isApprover(deps, req.approvers, user))) {
    deps.log.warn('approval click by a user who is not an approver', { user, job: jobId });
    return { refused: `${user} is not an approver of rule ${req.rule}` };
  }
  const r = await decideApproval(deps.operator, { jobId, decision: approve ? 'approved' : 'rejected', by: `slack:${user}` });
  const text = r.ok
    ? `${approve ? ':white_check_mark: Approved' : ':no_entry: Rejected'} by Slack user ${user} at ${r.decision.at}: ${req.action}${req.target ? ` on ${req.target}` : ''} (rule ${req.rule}).`
    : `:information_source: ${r.error}`;
  const channel = p.container?.channel_id;
  const ts = p.container?.message_ts;
  if (deps.slack && channel && ts) {
    await deps.slack.chat
      .update({ channel, ts, text: esc(text), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: esc(text) } }] })
      .catch((err: Error) => deps.log.warn('could not update the approval message', { error: err.message }));
  }
  return r.ok ? { decision: r.decision.decision } : { ignored: r.error };
}

async function isApprover(deps: SlackInteractionDeps, approvers: string[], user: string): Promise<boolean> {
  if (approvers.includes(user)) return true;
  for (const group of approvers.filter((a) => a.startsWith('S'))) {
    if (!deps.slack) continue;
    const r = await deps.slack.usergroups.users.list({ usergroup: group }).catch((err: Error) => {
      deps.log.warn('could not read an approver user group', { group, error: err.message });
      return undefined;
    });
    if (r?.users?.includes(user)) return true;
  }
  return false;
}
