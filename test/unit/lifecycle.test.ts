import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitOnSignals } from '../../src/lifecycle.js';
import { createLogger } from '../../src/log.js';

/** exitOnSignals with a clock and an exit we control; close() never returns (a drain in progress). */
function harness() {
  let t = 1_000_000;
  const exits: number[] = [];
  const lines: { msg: string }[] = [];
  const { stop } = exitOnSignals({
    close: () => new Promise(() => {}),
    log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l))),
    deadlineMs: 300, // fires after the assertions (its exit is then ignored); keeps the test process short
    exit: (code) => exits.push(code),
    now: () => t,
  });
  return { stop, exits, lines, advance: (ms: number) => (t += ms) };
}

test('the copy of a stop signal that npm forwards 1-15 ms later does not cut the drain short', () => {
  const h = harness();
  h.stop('SIGTERM');
  h.advance(2);
  h.stop('SIGTERM'); // npm's forwarded copy
  h.advance(10);
  h.stop('SIGINT');
  assert.deepEqual(h.exits, [], 'still draining');
  assert.equal(h.lines.filter((l) => l.msg.startsWith('signal repeated')).length, 2);
});

test('a deliberate later signal still forces the exit (1)', () => {
  const h = harness();
  h.stop('SIGINT');
  h.advance(1500);
  h.stop('SIGINT');
  assert.deepEqual(h.exits, [1]);
  assert.ok(h.lines.some((l) => l.msg === 'second signal during shutdown: exiting now'));
});
