import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runNotifyStorm } from '../../bench/notify-storm.js';
import { DATABASE_URL } from '../helpers/pg.js';
import { REDIS_URL } from '../helpers/service.js';

/**
 * The small version of `npm run storm:notify` (counts only, never timings): 200 breaker alerts of
 * one rule in 8 groups x 3 deliveries into one Slack channel limited to 1 message per second
 * (bursts of 5) and a PagerDuty limited to 120 events a minute, then a critical alert of another
 * rule in the same channel and one in another channel.
 */
test('a storm with limited Slack and PagerDuty: the channel stays readable, every run accounted for, the next incident first', async () => {
  const r = await runNotifyStorm({ alerts: 200, groups: 8, canaryAfterS: 5, minutes: 0.5, redisUrl: REDIS_URL, databaseUrl: DATABASE_URL });
  assert.equal(r.runs, 200);
  assert.equal(r.runsEnded, 200, 'every run ended');
  assert.ok(r.canarySameChannelS !== undefined, 'the canary has its first message in the storm\'s channel');
  assert.ok(r.canaryOtherChannelS !== undefined, 'and in the other channel');
  assert.ok((r.callsAheadOfCanary ?? 99) <= 3, `at most a few storm messages went before it (${r.callsAheadOfCanary})`);
  assert.ok(r.stormChannelPosts + r.stormChannelEdits <= 15, `the storm's channel got ${r.stormChannelPosts} posts and ${r.stormChannelEdits} edits`);
  assert.ok(r.summarized + r.threads >= 200, `every run named in a thread or counted in a summary (${r.threads} + ${r.summarized})`);
  assert.ok(r.slack429 <= Math.ceil(r.slackCalls / 100), `${r.slack429} of ${r.slackCalls} Slack calls answered 429`);
  assert.ok(r.maxEventsPerGroup <= 2, `PagerDuty got at most 2 events per group (${r.maxEventsPerGroup})`);
  assert.equal(r.pagerDuty429, 0);
  assert.ok(r.canaryPagedS !== undefined, 'the canary paged');
});
