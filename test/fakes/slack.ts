import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback } from './loopback.js';

/** One request the fake received, as parsed. `error` is set when it did not answer ok:true. */
export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  /** Date.now() when the request arrived. */
  at: number;
  contentType: string;
  status: number;
  error?: string;
  /** The ts answered (chat.postMessage, chat.update). */
  ts?: string;
}

export interface SlackMessage {
  channel: string;
  ts: string;
  text: string;
  blocks?: unknown[];
  thread_ts?: string;
  reply_broadcast: boolean;
  /** Every text this message had, oldest first (the post, then each chat.update). */
  history: string[];
}

/** A failure to inject: the next `count` matching calls get it. */
export interface SlackFault {
  count: number;
  /** 429 (with Retry-After), 500, or 200 with ok:false and `error`. */
  kind: 'ratelimited' | 'http500' | 'platform';
  retryAfter?: number;
  error?: string;
  /** Only calls for this channel (name or id as sent, or the id it maps to). */
  channel?: string;
  method?: string;
}

// Form values the real client JSON-encodes (WebClient.serializeBody), and booleans it sends as text.
const jsonFields = new Set(['blocks', 'attachments', 'metadata']);
const boolFields = new Set(['reply_broadcast', 'unfurl_links', 'unfurl_media', 'mrkdwn', 'as_user', 'link_names']);

/**
 * A local fake of the Slack Web API methods the notifier uses (chat.postMessage, chat.update),
 * with real response shapes. Parses form-urlencoded bodies (what @slack/web-api 8 sends, nested
 * values JSON-encoded) and JSON bodies; checks the bearer token; channel names map to stable ids
 * (chat.update, like Slack, wants the id). Faults can be injected per channel and method.
 */
export class FakeSlack {
  token = 'xoxb-fake-test-token';
  calls: SlackCall[] = [];
  faults: SlackFault[] = [];
  /** Channels that answer channel_not_found. */
  missingChannels = new Set<string>();
  /** User groups (S…) and their member user ids, for usergroups.users.list. */
  userGroups = new Map<string, string[]>();
  /**
   * Delay before handling, in ms. A request whose client gave up meanwhile (timeout) is dropped
   * unhandled, as a proxy in front of Slack would drop it, and recorded with error 'client_gone'.
   */
  delayMs = 0;
  /**
   * Slack's posting limit, enforced per channel on chat.postMessage and chat.update when set: a
   * token bucket of `rate` per second with bursts of `burst`; beyond it, 429 with Retry-After.
   * https://docs.slack.dev/apis/web-api/rate-limits (chat.postMessage: about 1 per second per channel)
   */
  limit: { rate: number; burst: number } | undefined;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  url = '';
  private readonly channelIds = new Map<string, string>();
  private readonly messages = new Map<string, SlackMessage[]>();
  private tsCounter = 0;
  private server: Server | undefined;

  async start(): Promise<this> {
    const { server, url } = await listenLoopback((req, res) => void this.handle(req, res));
    this.server = server;
    this.url = `${url}/api/`;
    return this;
  }

  async stop(): Promise<void> {
    await closeServer(this.server);
  }

  /** The id a channel name (with or without '#') maps to; ids (C..., uppercase) map to themselves. */
  channelId(channel: string): string {
    if (/^[CGD][A-Z0-9]{6,}$/.test(channel)) return channel;
    const name = channel.replace(/^#/, '');
    let id = this.channelIds.get(name);
    if (!id) {
      id = `C${String(this.channelIds.size + 1).padStart(8, '0')}`;
      this.channelIds.set(name, id);
    }
    return id;
  }

  fail(f: SlackFault): void {
    this.faults.push({ ...f });
  }

  /** Messages of a channel (name or id) that are not thread replies, oldest first. */
  roots(channel: string): SlackMessage[] {
    return (this.messages.get(this.channelId(channel)) ?? []).filter((m) => !m.thread_ts);
  }

  /** Replies in the thread of `ts`, in the order they were posted. */
  replies(channel: string, ts: string): SlackMessage[] {
    return (this.messages.get(this.channelId(channel)) ?? []).filter((m) => m.thread_ts === ts);
  }

  /**
   * What the thread of `ts` tells, line by line: each reply's section blocks (a reply may tell
   * several events), else its text. remediator coalesces events that came together into one reply.
   */
  threadLines(channel: string, ts: string): string[] {
    return this.replies(channel, ts).flatMap((m) => {
      const sections = (m.blocks ?? []).flatMap((b) => {
        const block = b as { type?: string; text?: { text?: string } };
        return block.type === 'section' && typeof block.text?.text === 'string' ? [block.text.text] : [];
      });
      return sections.length ? sections : [m.text];
    });
  }

  /** Calls of a method that succeeded, optionally only for one channel. */
  okCalls(method: string, channel?: string): SlackCall[] {
    const id = channel === undefined ? undefined : this.channelId(channel);
    return this.calls.filter((c) => c.method === method && !c.error && (id === undefined || this.channelId(String(c.args.channel ?? '')) === id));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const contentType = String(req.headers['content-type'] ?? '');
    const method = (req.url ?? '').split('?')[0]!.replace(/^\/api\//, '');
    let args: Record<string, unknown>;
    try {
      args = contentType.startsWith('application/json') ? (JSON.parse(raw || '{}') as Record<string, unknown>) : parseForm(raw);
    } catch {
      args = {};
    }
    const call: SlackCall = { method, args, at, contentType, status: 200 };
    this.calls.push(call);
    if (this.delayMs > 0) {
      let gone = false;
      res.on('close', () => (gone = !res.writableFinished));
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (gone) {
        call.error = 'client_gone';
        return;
      }
    }
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      if (status !== 200 || (body as { ok?: boolean }).ok === false) call.error = (body as { error?: string }).error ?? `http_${status}`;
      if (typeof (body as { ts?: unknown }).ts === 'string') call.ts = (body as { ts: string }).ts;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
    };
    const channelArg = typeof args.channel === 'string' ? args.channel : undefined;
    const fault = this.faults.find(
      (f) => f.count > 0 && (!f.method || f.method === method) && (!f.channel || (channelArg !== undefined && this.channelId(f.channel) === this.channelId(channelArg))),
    );
    if (fault) {
      fault.count--;
      if (fault.kind === 'ratelimited') return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(fault.retryAfter ?? 1) });
      if (fault.kind === 'http500') {
        call.status = 500;
        call.error = 'http_500';
        return void res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
      }
      return send(200, { ok: false, error: fault.error ?? 'fatal_error' });
    }
    if (this.limit && (method === 'chat.postMessage' || method === 'chat.update') && channelArg) {
      const wait = this.take(this.channelId(channelArg), at);
      if (wait > 0) return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(Math.ceil(wait / 1000)) });
    }
    const auth = req.headers.authorization ?? (typeof args.token === 'string' ? `Bearer ${args.token}` : undefined);
    if (!auth) return send(200, { ok: false, error: 'not_authed' });
    if (auth !== `Bearer ${this.token}`) return send(200, { ok: false, error: 'invalid_auth' });
    if (method === 'chat.postMessage') return send(200, this.postMessage(args));
    if (method === 'chat.update') return send(200, this.update(args));
    if (method === 'usergroups.users.list') {
      const users = this.userGroups.get(String(args.usergroup ?? ''));
      return send(200, users ? { ok: true, users } : { ok: false, error: 'no_such_subteam' });
    }
    return send(200, { ok: false, error: 'unknown_method' });
  }

  private postMessage(a: Record<string, unknown>): Record<string, unknown> {
    if (typeof a.channel !== 'string' || a.channel === '') return { ok: false, error: 'channel_not_found' };
    if (this.missingChannels.has(a.channel)) return { ok: false, error: 'channel_not_found' };
    if (!a.text && !a.blocks) return { ok: false, error: 'no_text' };
    if (a.blocks !== undefined && !Array.isArray(a.blocks)) return { ok: false, error: 'invalid_blocks' };
    const channel = this.channelId(a.channel);
    const list = this.messages.get(channel) ?? [];
    const threadTs = typeof a.thread_ts === 'string' ? a.thread_ts : undefined;
    if (threadTs && !list.some((m) => m.ts === threadTs && !m.thread_ts)) return { ok: false, error: 'thread_not_found' };
    const ts = this.nextTs();
    const text = String(a.text ?? '');
    const msg: SlackMessage = { channel, ts, text, blocks: a.blocks as unknown[] | undefined, thread_ts: threadTs, reply_broadcast: a.reply_broadcast === true, history: [text] };
    list.push(msg);
    this.messages.set(channel, list);
    return { ok: true, channel, ts, message: shape(msg) };
  }

  private update(a: Record<string, unknown>): Record<string, unknown> {
    // Slack's chat.update takes the channel id, not a name.
    const channel = typeof a.channel === 'string' ? a.channel : '';
    const msg = (this.messages.get(channel) ?? []).find((m) => m.ts === a.ts);
    if (!this.messages.has(channel)) return { ok: false, error: 'channel_not_found' };
    if (!msg) return { ok: false, error: 'message_not_found' };
    if (!a.text && !a.blocks) return { ok: false, error: 'no_text' };
    msg.text = String(a.text ?? '');
    if (a.blocks !== undefined) msg.blocks = a.blocks as unknown[];
    msg.history.push(msg.text);
    return { ok: true, channel, ts: msg.ts, text: msg.text, message: shape(msg) };
  }

  /** 0 when the channel may take a message now (a token taken), else the ms until it may. */
  private take(channel: string, now: number): number {
    const { rate, burst } = this.limit!;
    const b = this.buckets.get(channel) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * rate) / 1000);
    b.at = now;
    this.buckets.set(channel, b);
    if (b.tokens < 1) return Math.ceil(((1 - b.tokens) * 1000) / rate);
    b.tokens -= 1;
    return 0;
  }

  /** Calls of one channel answered 429. */
  limited(channel?: string): SlackCall[] {
    const id = channel === undefined ? undefined : this.channelId(channel);
    return this.calls.filter((c) => c.status === 429 && (id === undefined || this.channelId(String(c.args.channel ?? '')) === id));
  }

  private nextTs(): string {
    const n = ++this.tsCounter;
    return `${1700000000 + Math.floor(n / 1_000_000)}.${String(n % 1_000_000).padStart(6, '0')}`;
  }
}

function shape(m: SlackMessage): Record<string, unknown> {
  return {
    type: 'message', user: 'U0FAKEBOT', bot_id: 'B0FAKEBOT', app_id: 'A0FAKEAPP', text: m.text, ts: m.ts,
    ...(m.blocks ? { blocks: m.blocks } : {}), ...(m.thread_ts ? { thread_ts: m.thread_ts, parent_user_id: 'U0FAKEBOT' } : {}),
  };
}

function parseForm(raw: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if (jsonFields.has(k)) out[k] = JSON.parse(v);
    else if (boolFields.has(k)) out[k] = v === 'true' || v === '1';
    else out[k] = v;
  }
  return out;
}
