import { type IncomingMessage, type Server } from 'node:http';
import { closeServer, listenLoopback } from './loopback.js';

export interface BreakerCall {
  method: string;
  path: string;
  authorization?: string;
}

/**
 * A service with a circuit-breaker admin API like the image-generation service's:
 * GET /api/admin/circuit-breaker-status -> {"state":"closed|open|half_open",...}
 * POST /api/admin/reset-circuit-breaker -> closes the breaker (after `closeAfterPolls` status reads).
 */
export class FakeBreaker {
  private current: 'closed' | 'open' | 'half_open' = 'open';
  /** Setting the state by hand (a test opening the breaker) cancels a pending close. */
  get state(): 'closed' | 'open' | 'half_open' {
    return this.current;
  }
  set state(v: 'closed' | 'open' | 'half_open') {
    this.current = v;
    this.closing = false;
  }
  calls: BreakerCall[] = [];
  resets = 0;
  /** Status reads after a reset before the breaker reports closed. */
  closeAfterPolls = 1;
  /** Never close after a reset (a dependency still failing). */
  stuck = false;
  /** Accept every request and never answer (a hung service); requests are counted in `hung`. */
  hang = false;
  hung = 0;
  /** Answer the next N requests with this status. */
  failNext: { status: number; count: number } | undefined;
  token = 'breaker-admin-secret';
  private pollsSinceReset = 0;
  private closing = false;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    const { server, url } = await listenLoopback((req, res) => this.handle(req, res));
    this.server = server;
    this.url = url;
    return this;
  }

  /** This breaker declared as an `http-breaker` target (for a `targets:` section of a test rules file). */
  targetYaml(name: string, tokenEnv = 'BREAKER_TOKEN'): string {
    return `
  ${name}:
    kind: http-breaker
    status: { url: '${this.url}/api/admin/circuit-breaker-status', token_env: ${tokenEnv} }
    reset: { method: POST, url: '${this.url}/api/admin/reset-circuit-breaker', token_env: ${tokenEnv} }
    request_timeout: 2s`;
  }

  async stop(): Promise<void> {
    await closeServer(this.server);
  }

  private handle(req: IncomingMessage, res: import('node:http').ServerResponse): void {
    req.resume();
    const path = (req.url ?? '').split('?')[0]!;
    this.calls.push({ method: req.method ?? '', path, authorization: req.headers.authorization });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (this.hang) {
      this.hung++;
      return; // the connection stays open; stop() drops it
    }
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      return send(this.failNext.status, { error: 'injected failure' });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { error: 'unauthorized' });
    if (req.method === 'GET' && path === '/api/admin/circuit-breaker-status') {
      if (this.closing && !this.stuck && ++this.pollsSinceReset >= this.closeAfterPolls) {
        this.current = 'closed';
        this.closing = false;
      }
      return send(200, { state: this.state, tokens: 0, successRate: 0.95, p95Latency: 55000 });
    }
    if (req.method === 'POST' && path === '/api/admin/reset-circuit-breaker') {
      this.resets++;
      this.pollsSinceReset = 0;
      this.closing = this.state !== 'closed';
      if (this.closing && !this.stuck && this.closeAfterPolls <= 0) {
        this.current = 'closed';
        this.closing = false;
      }
      return send(200, { ok: true });
    }
    send(404, { error: 'not found' });
  }
}
