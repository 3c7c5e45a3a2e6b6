#!/usr/bin/env node
// The container's HEALTHCHECK: GET /healthz on this process's own port, exit 0 when it answers 2xx.
// A worker (REMEDIATOR_ROLE=worker) serves it on METRICS_PORT, the others on PORT.
const worker = process.env.REMEDIATOR_ROLE === 'worker';
const port = (worker ? process.env.METRICS_PORT : process.env.PORT) || (worker ? '9096' : '9095');
// A plain timer, not AbortSignal.timeout (its timer can be collected before it fires on Node 20).
const ac = new AbortController();
setTimeout(() => ac.abort(new Error('no answer within 4 s')), 4000).unref();
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: ac.signal });
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`healthcheck: ${/** @type {Error} */ (err).message}\n`);
  process.exit(1);
}
