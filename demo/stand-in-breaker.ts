import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for a service with a circuit-breaker admin API (the shape of the image-generation
 * service's, which rules/algorhythmic.yml resets): `GET /api/admin/circuit-breaker-status`
 * answers {"state": "open" | "closed"}, `POST /api/admin/reset-circuit-breaker` closes it. Both
 * want the bearer token, as the real one does. It listens on loopback only.
 */
export class StandInBreaker {
  state: 'open' | 'closed' = 'open';
  resets = 0;
  private server: Server | undefined;
  url = '';

  constructor(readonly token: string) {}

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { error: 'unauthorized' });
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/api/admin/circuit-breaker-status') return send(200, { state: this.state });
    if (req.method === 'POST' && path === '/api/admin/reset-circuit-breaker') {
      this.resets++;
      this.state = 'closed';
      return send(200, { ok: true });
    }
    send(404, { error: 'not found' });
  }
}
