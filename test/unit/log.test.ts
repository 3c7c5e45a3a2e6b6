import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';

function collect(level: 'debug' | 'info' | 'warn' | 'error' = 'debug', base: Record<string, unknown> = {}) {
  const lines: string[] = [];
  return { log: createLogger(level, base, (l) => lines.push(l)), lines, parsed: () => lines.map((l) => JSON.parse(l)) };
}

describe('log (pino)', () => {
  test('one JSON object per line: level name, ISO time, message, fields, child bindings', () => {
    const { log, lines, parsed } = collect('info', { service: 'remediator' });
    log.debug('dropped below the level');
    log.child({ job: 'j1', rule: 'r1' }).warn('attempt failed', { attempt: 2 });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes('\n'));
    const [l] = parsed();
    assert.equal(l.level, 'warn');
    assert.equal(l.msg, 'attempt failed');
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual({ service: l.service, job: l.job, rule: l.rule, attempt: l.attempt }, { service: 'remediator', job: 'j1', rule: 'r1', attempt: 2 });
  });

  test('an Error keeps its type, message and stack', () => {
    const { log, parsed } = collect();
    const err = new TypeError('boom');
    log.error('request failed', { error: err });
    const [l] = parsed();
    assert.equal(l.error.type, 'TypeError');
    assert.equal(l.error.message, 'boom');
    assert.match(l.error.stack, /TypeError: boom\n\s+at /);
  });

  test('secrets are redacted: credential fields at any depth, passwords in URLs, bearer tokens in text, child bindings', () => {
    const { log, lines } = collect();
    const secrets = ['s3cr3t-bearer-value', 'hunter2-db-pass', 'xoxb-1111-slack', 'pd-routing-0000', 'redis-pa55', 'cookie-val-123', 'admintok-777', 'basic-b64-value'];
    log.info('webhook', {
      headers: { authorization: `Bearer ${secrets[0]}`, Cookie: `remediator_ui=${secrets[5]}`, 'content-type': 'application/json' },
      database: `postgres://remediator:${secrets[1]}@db.internal:5432/audit`,
      config: { SLACK_BOT_TOKEN: secrets[2], nested: [{ routing_key: secrets[3] }], token_env: 'BREAKER_TOKEN' },
      note: `retrying with Bearer ${secrets[0]} against https://user:${secrets[1]}@example.com/x`,
    });
    log.error('redis failed', { error: new Error(`connect to redis://:${secrets[4]}@10.0.0.1:6379 refused`) });
    log.child({ adminToken: secrets[6], WEBHOOK_BASIC_AUTH: `am:${secrets[7]}` }).info('child line');
    const all = lines.join('\n');
    for (const s of secrets) assert.ok(!all.includes(s), `${s} leaked: ${all}`);
    // What is not secret stays readable.
    assert.match(all, /"content-type":"application\/json"/);
    assert.match(all, /postgres:\/\/remediator:\[REDACTED\]@db\.internal:5432\/audit/);
    assert.match(all, /redis:\/\/:\[REDACTED\]@10\.0\.0\.1:6379/);
    assert.match(all, /"token_env":"BREAKER_TOKEN"/);
    assert.match(all, /Bearer \[REDACTED\]/);
    assert.match(all, /"authorization":"\[REDACTED\]"/);
  });
});
