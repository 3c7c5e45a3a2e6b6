import { createHash } from 'node:crypto';
import type { WebClient } from '@slack/web-api';
import type { Redis } from 'ioredis';
import { storableDeep } from '../../core/text.js';
import type { NotifyState } from '../../store/notify-state.js';
import type { RunReader } from '../../store/runs.js';
import type { SyncContext } from '../types.js';
import { slackCall } from './client.js';
import { clip, esc, link, type SlackBody } from './format.js';

export interface DigestOptions {
  /** A rule that queues more runs than this in a minute is storming (its runs go to a summary). */
  after: number;
  /** The summary is edited at most this often. */
  editEveryMs: number;
  /** A storm ends when the rule queued nothing for this long and its runs have ended. */
  quietMs: number;
}

const DEFAULTS: DigestOptions = { after: 5, editEveryMs: 30_000, quietMs: 120_000 };
const WINDOW_MS = 60_000;

/** A storm of one rule in one channel: since when, and its summary message. */
interface Storm {
  since: string;
  channelId?: string;
  ts?: string;
  lastEditMs: number;
  hash?: string;
}

/**
 * One rolling summary per storm of a rule in a channel ("breaker-reset on 1,000 targets: 986
 * succeeded, 12 running, 2 failed"), with the failures named and linked, edited at a bounded rate.
 * Every run of the storm is counted there (and has its whole story on the status page).
 */
export class StormDigest {
  private readonly o: DigestOptions & { client: WebClient; runs: RunReader; state: NotifyState; redis: Redis; prefix: string; linkBase?: string };
  constructor(o: Partial<DigestOptions> & { client: WebClient; runs: RunReader; state: NotifyState; redis: Redis; prefix: string; linkBase?: string }) {
    this.o = { ...DEFAULTS, ...o };
  }

  item(rule: string): string {
    return `summary:${rule}`;
  }

  isItem(item: string): boolean {
    return item.startsWith('summary:');
  }

  private key(channel: string, rule: string): string {
    return `${this.o.prefix}:slack:storm:${channel}:${rule}`;
  }

  /** Whether the rule storms in this channel now; starts the storm (and its summary) when it begins. */
  async storming(channel: string, rule: string, ctx: SyncContext, now = Date.now()): Promise<boolean> {
    const key = this.key(channel, rule);
    if (await this.o.redis.exists(key)) return true;
    const n = await this.o.runs.countQueuedSince(rule, new Date(now - WINDOW_MS));
    if (n <= this.o.after) return false;
    const storm: Storm = { since: new Date(now - WINDOW_MS).toISOString(), lastEditMs: 0 };
    if ((await this.o.redis.set(key, JSON.stringify(storm), 'EX', 7 * 24 * 3600, 'NX')) === 'OK') await ctx.mark(this.item(rule), true);
    return true;
  }

  /** Posts or edits the summary (at a bounded rate); says the storm is over when it is. */
  async sync(channel: string, item: string, ctx: SyncContext, now = Date.now()): Promise<Record<string, unknown> | void> {
    const rule = item.slice('summary:'.length);
    const key = this.key(channel, rule);
    const raw = await this.o.redis.get(key);
    if (!raw) return;
    const storm = JSON.parse(raw) as Storm;
    if (storm.ts && now - storm.lastEditMs < this.o.editEveryMs) {
      await ctx.mark(item, false, storm.lastEditMs + this.o.editEveryMs);
      return;
    }
    const since = new Date(storm.since);
    const { counts, failed, total } = await this.o.state.stormCounts(rule, since);
    const active = (counts.queued ?? 0) + (counts.running ?? 0) + (counts.retrying ?? 0);
    const over = active === 0 && (await this.o.runs.countQueuedSince(rule, new Date(now - this.o.quietMs))) === 0;
    const body = storableDeep(this.render(rule, since, { counts, failed, total, over }));
    const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    const sent: Record<string, unknown> = {};
    if (!storm.ts) {
      await ctx.paced();
      const r = await slackCall('chat.postMessage', () => this.o.client.chat.postMessage({ channel, ...body, unfurl_links: false, unfurl_media: false }));
      storm.channelId = String(r.channel);
      storm.ts = String(r.ts);
      sent.summary_posted = true;
    } else if (hash !== storm.hash) {
      await ctx.paced();
      await slackCall('chat.update', () => this.o.client.chat.update({ channel: storm.channelId ?? channel, ts: storm.ts!, ...body }));
      sent.summary_updated = true;
    }
    storm.hash = hash;
    storm.lastEditMs = now;
    if (over) {
      await this.o.redis.del(key);
    } else {
      await this.o.redis.set(key, JSON.stringify(storm), 'EX', 7 * 24 * 3600);
      // While it storms, the summary comes back by itself: counts move, and the end must be said.
      await ctx.mark(item, false, now + this.o.editEveryMs);
    }
    return sent;
  }

  private render(rule: string, since: Date, s: { counts: Record<string, number>; failed: { job_id: string; target: string | null; summary: string | null }[]; total: number; over: boolean }): SlackBody {
    const order = ['succeeded', 'running', 'queued', 'retrying', 'failed', 'skipped', 'dry_run', 'notified'];
    const parts = order.filter((k) => s.counts[k]).map((k) => `${s.counts[k]!.toLocaleString('en-US')} ${k.replace('_', ' ')}`);
    const head = `${s.over ? ':checkered_flag: Storm over' : ':cyclone: Storm'}: rule ${rule} ran ${s.total.toLocaleString('en-US')} times since ${since.toISOString().slice(11, 19)} UTC: ${parts.join(', ') || 'nothing yet'}.`;
    const base = this.o.linkBase?.replace(/\/+$/, '');
    const all = base ? link(`${base}/ui/runs?rule=${encodeURIComponent(rule)}`, 'every run of this rule') : undefined;
    const lines = [
      esc(head),
      s.over ? 'Runs get their own threads again.' : 'To keep this channel readable, runs of this rule are counted here; a run that fails or needs a person still gets its own thread.',
      ...(s.failed.length ? ['*Failed:*', ...s.failed.map((f) => `• ${esc(clip(`${f.target ?? f.job_id}: ${f.summary ?? ''}`, 200))}${base ? ` ${link(`${base}/ui/runs/${encodeURIComponent(f.job_id)}`, 'run')}` : ''}`)] : []),
      ...(all ? [`Full story: ${all}.`] : []),
    ];
    return { text: clip(esc(head), 3000), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: clip(lines.join('\n'), 3000) } }] };
  }
}
