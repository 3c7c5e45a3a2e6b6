import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Express } from 'express';

export interface ListenOptions {
  port: number;
  host: string;
  /** Longest a client may take to send a request's headers (Node's default: 60 s). */
  headersTimeoutMs: number;
  /** Longest a client may take to send a whole request, body included (Node's default: 300 s). */
  requestTimeoutMs: number;
  /** Serves the requests it recognises (returns true) ahead of express: the webhook's hot path. */
  fast?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/**
 * Listens with timeouts that fit Alertmanager, which sends a small body at once and gives up on
 * a delivery within seconds: a client that stalls longer is not Alertmanager, and holds a socket.
 * Node answers it 408 and closes the connection. It checks for such clients only every
 * `connectionsCheckingInterval` (default 30 s), so that runs at a fraction of the timeout.
 */
export async function listen(app: Express, opts: ListenOptions): Promise<Server> {
  const fast = opts.fast;
  const server = createServer(
    {
      headersTimeout: opts.headersTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(opts.headersTimeoutMs / 4))),
    },
    fast ? (req, res) => fast(req, res) || app(req, res) : app,
  );
  // Longer than the idle timeout of the load balancers in front (often 60 s), so they close first.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
