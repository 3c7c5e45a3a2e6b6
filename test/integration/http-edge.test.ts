import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { createLogger } from '../../src/log.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { firingWebhook } from '../helpers/webhook.js';
import { RawClient, webhookHead, type RawResponse } from '../helpers/raw-http.js';

// A rule that matches nothing these tests send: the receiver's answer is all they look at.
const rules = { 'none.yml': 'rules:\n  - name: nothing\n    match: [\'alertname="NeverSent"\']\n    action: notify\n' };

/** One request on its own connection; returns the answer and whether the server then closed it. */
async function exchange(url: string, head: string, body: Buffer | string = ''): Promise<RawResponse & { closed: boolean }> {
  const c = await RawClient.open(url);
  try {
    c.write(head);
    if (body.length) c.write(body);
    const res = await c.response();
    const closed = await c.closed(1000).then(() => true, () => false);
    return { ...res, closed };
  } finally {
    c.destroy();
  }
}

describe('webhook HTTP edge: compressed bodies, size, credentials', () => {
  let svc: TestService;
  const logLines: string[] = [];
  const json = JSON.stringify(firingWebhook('EdgeTest', 'eeee000000000001'));

  before(async () => {
    svc = await startTestService({ rules, log: createLogger('warn', {}, (l) => logLines.push(l)) });
  });
  after(async () => {
    await svc.close();
  });

  const errorsLogged = () => logLines.filter((l) => JSON.parse(l).level === 'error');

  test('valid gzip is accepted', async () => {
    const gz = gzipSync(json);
    const r = await exchange(svc.url, webhookHead({ 'content-encoding': 'gzip', 'content-length': gz.length }), gz);
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).status, 'accepted');
  });

  test('plain JSON labelled gzip, gzip labelled deflate, and truncated gzip get 400 naming the encoding, without an error log', async () => {
    const gz = gzipSync(json);
    const cases: [string, Buffer][] = [
      ['gzip', Buffer.from(json)],
      ['deflate', gz],
      ['gzip', gz.subarray(0, gz.length - 20)],
    ];
    for (const [encoding, body] of cases) {
      const r = await exchange(svc.url, webhookHead({ 'content-encoding': encoding, 'content-length': body.length }), body);
      assert.equal(r.status, 400, `${encoding}: ${r.body}`);
      assert.match(JSON.parse(r.body).error, new RegExp(`^body is not valid ${encoding}: `), r.body);
    }
    assert.deepEqual(errorsLogged(), []);
  });

  test('an unsupported Content-Encoding stays 415', async () => {
    const r = await exchange(svc.url, webhookHead({ 'content-encoding': 'compress', 'content-length': json.length }), json);
    assert.equal(r.status, 415, r.body);
    assert.match(JSON.parse(r.body).error, /compress/);
  });

  test('no body at all (no Content-Length, not chunked) is a 400 that says so, not a 415 contradicting itself', async () => {
    const r = await exchange(svc.url, webhookHead({}));
    assert.equal(r.status, 400, r.body);
    assert.deepEqual(JSON.parse(r.body), { error: "empty body: send Alertmanager's webhook JSON (with a Content-Length, or chunked)" });
    // Content-Length: 0 is a body, an empty one: refused as the JSON it is not.
    const zero = await exchange(svc.url, webhookHead({ 'content-length': 0 }));
    assert.equal(zero.status, 400, zero.body);
    assert.doesNotMatch(zero.body, /content type/);
    // A wrong type with a body keeps its 415.
    const text = await exchange(svc.url, webhookHead({ 'content-type': 'text/plain', 'content-length': 2 }), 'hi');
    assert.equal(text.status, 415, text.body);
  });

  test('a declared 10 GiB body gets 413 at once and the server closes the connection', async () => {
    const c = await RawClient.open(svc.url);
    try {
      const t0 = Date.now();
      c.write(webhookHead({ 'content-length': 10 * 1024 ** 3 }));
      c.write('{"version":"4","alerts":[' + ' '.repeat(64 * 1024));
      const r = await c.response(2000);
      assert.equal(r.status, 413);
      assert.equal(r.headers.connection, 'close');
      assert.match(JSON.parse(r.body).error, /larger than 1048576 bytes/);
      await c.closed(2000);
      assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    } finally {
      c.destroy();
    }
  });

  test('a chunked body is cut off with 413 as soon as it passes the limit, and the connection closed', async () => {
    const c = await RawClient.open(svc.url);
    try {
      c.write(webhookHead({ 'transfer-encoding': 'chunked' }));
      // Keep streaming, as an attacker would; the server must answer without waiting for the end.
      const chunk = 64 * 1024;
      const timer = setInterval(() => c.write(`${chunk.toString(16)}\r\n${'x'.repeat(chunk)}\r\n`), 5);
      try {
        const r = await c.response(5000);
        assert.equal(r.status, 413);
        assert.equal(r.headers.connection, 'close');
        await c.closed(2000);
      } finally {
        clearInterval(timer);
      }
    } finally {
      c.destroy();
    }
  });

  test('bad credentials get 401 and the connection closed, even with a body still coming', async () => {
    const r = await exchange(svc.url, webhookHead({ 'content-length': json.length }, 'Bearer wrong'), json);
    assert.equal(r.status, 401);
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.closed, 'server closed the connection after 401');
    // Too large and unauthenticated: still 401 (credentials are checked first).
    const big = await exchange(svc.url, webhookHead({ 'content-length': 10 * 1024 ** 3 }, 'Bearer wrong'));
    assert.equal(big.status, 401);
    assert.ok(big.closed);
  });

  test('accepted webhooks keep the connection alive', async () => {
    const c = await RawClient.open(svc.url);
    try {
      for (let i = 0; i < 2; i++) {
        c.write(webhookHead({ 'content-length': Buffer.byteLength(json) }) + json);
        const r = await c.response();
        assert.equal(r.status, 200, r.body);
        assert.equal(r.headers.connection, 'keep-alive');
      }
      assert.equal(c.closedBy, undefined);
    } finally {
      c.destroy();
    }
  });
});

describe('webhook HTTP edge: stalled clients are disconnected', () => {
  let svc: TestService;

  before(async () => {
    svc = await startTestService({ rules, env: { HTTP_HEADERS_TIMEOUT_MS: '300', HTTP_REQUEST_TIMEOUT_MS: '600' } });
  });
  after(async () => {
    await svc.close();
  });

  test('a client that never finishes its headers gets 408 and is disconnected', async () => {
    const c = await RawClient.open(svc.url);
    try {
      c.write('POST /webhooks/alertmanager HTTP/1.1\r\nhost: 127.0.0.1\r\n');
      const r = await c.response(3000);
      assert.equal(r.status, 408);
      await c.closed(1000);
    } finally {
      c.destroy();
    }
  });

  test('a client that never finishes its body gets 408 and is disconnected', async () => {
    const c = await RawClient.open(svc.url);
    try {
      c.write(webhookHead({ 'content-length': 1000 }) + '{"version":');
      const r = await c.response(3000);
      assert.equal(r.status, 408);
      await c.closed(1000);
    } finally {
      c.destroy();
    }
  });
});
