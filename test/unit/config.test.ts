import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';

const problem = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
};

test('DRY_RUN takes the usual boolean spellings in any case; anything else names the variable and the spellings', () => {
  for (const v of ['true', 'TRUE', 'True', 'yes', 'YES', 'on', 'On', '1', ' true ']) assert.equal(loadConfig({ DRY_RUN: v }).DRY_RUN, true, v);
  for (const v of ['false', 'FALSE', 'no', 'No', 'off', 'OFF', '0', '']) assert.equal(loadConfig({ DRY_RUN: v }).DRY_RUN, false, v);
  assert.equal(loadConfig({}).DRY_RUN, false);
  assert.equal(problem({ DRY_RUN: 'maybe' }), 'invalid environment:\n  DRY_RUN: must be true or false (also yes/no, on/off, 1/0, in any case) (got "maybe")');
});

test('SHUTDOWN_GRACE, WORKER_LOCK_MS and HTTP_*_TIMEOUT_MS take a duration such as 25s, and milliseconds as before', () => {
  const c = loadConfig({ SHUTDOWN_GRACE: '25s', WORKER_LOCK_MS: '1m30s', HTTP_HEADERS_TIMEOUT_MS: '5s', HTTP_REQUEST_TIMEOUT_MS: '2m' });
  assert.deepEqual([c.SHUTDOWN_GRACE, c.WORKER_LOCK_MS, c.HTTP_HEADERS_TIMEOUT_MS, c.HTTP_REQUEST_TIMEOUT_MS], [25_000, 90_000, 5_000, 120_000]);
  const old = loadConfig({ SHUTDOWN_GRACE: '2000', WORKER_LOCK_MS: '5000', HTTP_HEADERS_TIMEOUT_MS: '100', HTTP_REQUEST_TIMEOUT_MS: '30000' });
  assert.deepEqual([old.SHUTDOWN_GRACE, old.WORKER_LOCK_MS, old.HTTP_HEADERS_TIMEOUT_MS, old.HTTP_REQUEST_TIMEOUT_MS], [2000, 5000, 100, 30_000]);
  const defaults = loadConfig({});
  assert.deepEqual([defaults.SHUTDOWN_GRACE, defaults.WORKER_LOCK_MS, defaults.HTTP_HEADERS_TIMEOUT_MS, defaults.HTTP_REQUEST_TIMEOUT_MS], [25_000, 30_000, 10_000, 30_000]);
  assert.equal(loadConfig({ SHUTDOWN_GRACE: '0' }).SHUTDOWN_GRACE, 0);
  assert.equal(problem({ SHUTDOWN_GRACE: 'soon' }), 'invalid environment:\n  SHUTDOWN_GRACE: must be milliseconds (25000) or a duration such as 25s or 1m30s (got "soon")');
  assert.equal(problem({ SHUTDOWN_GRACE: '2.5' }), 'invalid environment:\n  SHUTDOWN_GRACE: must be milliseconds (25000) or a duration such as 25s or 1m30s (got "2.5")');
  assert.equal(problem({ WORKER_LOCK_MS: '500ms' }), 'invalid environment:\n  WORKER_LOCK_MS: must be at least 1000 ms (1s) (got "500ms")');
  assert.equal(problem({ HTTP_HEADERS_TIMEOUT_MS: '1m', HTTP_REQUEST_TIMEOUT_MS: '30s' }), 'invalid environment:\n  HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (got 60000 > 30000)');
});
