import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * An HTTP/1.1 client on a bare socket, for what fetch hides: sending a head without its body,
 * a body slowly, and seeing whether the server closed the connection.
 */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  /** Set once the server ended or reset the connection. */
  closedBy: 'end' | 'close' | undefined;
  private readonly done: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    // A reset (the server destroyed the socket while we were still writing) counts as closed too.
    socket.on('error', () => {});
    this.done = new Promise((resolve) => {
      socket.once('end', () => {
        this.closedBy ??= 'end';
        resolve();
        this.wake();
      });
      socket.once('close', () => {
        this.closedBy ??= 'close';
        resolve();
        this.wake();
      });
    });
  }

  static async open(baseUrl: string): Promise<RawClient> {
    const u = new URL(baseUrl);
    const s = connect(Number(u.port), u.hostname);
    await once(s, 'connect');
    return new RawClient(s);
  }

  write(data: string | Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    return this.socket.write(data);
  }

  /** The next complete response (Content-Length bodies only), or an error after `timeoutMs`. */
  async response(timeoutMs = 5000): Promise<RawResponse> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.take();
      if (parsed) return parsed;
      if (this.closedBy) throw new Error(`connection closed without a (complete) response: ${JSON.stringify(this.buf.toString())}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await this.wait(left);
    }
  }

  /** Resolves with the ms it took once the server closed the connection; rejects after `timeoutMs`. */
  async closed(timeoutMs = 5000): Promise<number> {
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.done,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`server did not close the connection within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return Date.now() - t0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private take(): RawResponse | undefined {
    const sep = this.buf.indexOf('\r\n\r\n');
    if (sep < 0) return undefined;
    const [statusLine, ...lines] = this.buf.subarray(0, sep).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.buf.length < sep + 4 + length) return undefined;
    const body = this.buf.subarray(sep + 4, sep + 4 + length).toString('utf8');
    this.buf = this.buf.subarray(sep + 4 + length);
    return { status: Number(statusLine!.split(' ')[1]), headers, body };
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

/** The head of a POST to the webhook, with the test services' token unless `auth` says otherwise. */
export function webhookHead(headers: Record<string, string | number>, auth = 'Bearer test-webhook-token'): string {
  const all: Record<string, string | number> = { host: '127.0.0.1', 'content-type': 'application/json', authorization: auth, ...headers };
  return `POST /webhooks/alertmanager HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
}
