import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './process.js';

/** An alert as POST /api/v2/alerts takes it (postableAlert in Alertmanager's OpenAPI spec). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** RFC 3339; set it explicitly when two posts must describe the same firing. */
  startsAt?: string;
  /** RFC 3339; a time at or before now resolves the alert. */
  endsAt?: string;
  generatorURL?: string;
}

/** An alert as GET /api/v2/alerts returns it (the fields the tests read). */
export interface GettableAlert extends PostableAlert {
  fingerprint: string;
  status: { state: string };
}

export interface AlertmanagerOptions {
  /** Where the webhook posts, e.g. `${service.url}/webhooks/alertmanager`. */
  webhookUrl: string;
  /** Sent as `Authorization: Bearer <token>` (http_config.authorization). */
  bearerToken: string;
  receiver?: string;
  groupBy?: string[];
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
}

export interface RunningAlertmanager {
  url: string;
  /** The receiver name in the generated config (it comes back in the webhook's `receiver`). */
  receiver: string;
  postAlerts(alerts: PostableAlert[]): Promise<void>;
  getAlerts(): Promise<GettableAlert[]>;
  /** The last lines Alertmanager wrote to stderr (its log), for assertion messages. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Finds the Alertmanager binary: $ALERTMANAGER_BIN, else `prometheus-alertmanager` (Debian) or
 * `alertmanager` (upstream tarball) on PATH. Throws, so a test that needs it fails rather than skips.
 */
export function alertmanagerBinary(): string {
  const candidates = process.env.ALERTMANAGER_BIN
    ? [process.env.ALERTMANAGER_BIN]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).flatMap((d) => [join(d, 'prometheus-alertmanager'), join(d, 'alertmanager')]);
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* try the next one */
    }
  }
  throw new Error(
    process.env.ALERTMANAGER_BIN
      ? `ALERTMANAGER_BIN=${process.env.ALERTMANAGER_BIN} is not an executable file`
      : 'Alertmanager is not installed: the e2e tests need `prometheus-alertmanager` (apt install prometheus-alertmanager) ' +
        'or `alertmanager` on PATH, or ALERTMANAGER_BIN set to its path',
  );
}

/**
 * Starts a real Alertmanager on 127.0.0.1 with clustering off (`--cluster.listen-address=`; its
 * default listens on every interface), a temp storage dir and a config whose only receiver is a
 * webhook to `webhookUrl` with bearer credentials and send_resolved. Resolves once /-/ready answers.
 */
export async function startAlertmanager(opts: AlertmanagerOptions): Promise<RunningAlertmanager> {
  const bin = alertmanagerBinary();
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startOnce(bin, opts, await freePort());
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError!;
}

async function startOnce(bin: string, opts: AlertmanagerOptions, port: number): Promise<RunningAlertmanager> {
  const dir = await mkdtemp(join(tmpdir(), 'remediator-am-'));
  const receiver = opts.receiver ?? 'remediate';
  const config = {
    route: {
      receiver,
      group_by: opts.groupBy ?? ['alertname'],
      group_wait: opts.groupWait ?? '1s',
      group_interval: opts.groupInterval ?? '2s',
      repeat_interval: opts.repeatInterval ?? '1h',
    },
    receivers: [
      {
        name: receiver,
        webhook_configs: [
          {
            url: opts.webhookUrl,
            send_resolved: true,
            max_alerts: 0,
            http_config: { authorization: { type: 'Bearer', credentials: opts.bearerToken } },
          },
        ],
      },
    ],
  };
  const configFile = join(dir, 'alertmanager.yml');
  await writeFile(configFile, stringify(config));
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=debug',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    if (lines.length > 300) lines.splice(0, lines.length - 300);
  });
  const logs = () => [...lines, partial].filter(Boolean).join('\n');
  let exited: { code: number | null; signal: string | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  // Never leave an Alertmanager behind if the test process dies first.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited && !spawnError) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitReady(url, child, () => exited, () => spawnError, logs);
  } catch (err) {
    await stop();
    throw err;
  }

  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Alertmanager ${method} ${path}: HTTP ${res.status} ${text}\n--- alertmanager log ---\n${logs()}`);
    return text ? JSON.parse(text) : undefined;
  };

  return {
    url,
    receiver,
    async postAlerts(alerts) {
      await call('POST', '/api/v2/alerts', alerts.map((a) => ({ annotations: {}, generatorURL: '', ...a })));
    },
    async getAlerts() {
      return (await call('GET', '/api/v2/alerts')) as GettableAlert[];
    },
    logs,
    stop,
  };
}

async function waitReady(
  url: string,
  child: ChildProcess,
  exited: () => { code: number | null; signal: string | null } | undefined,
  spawnError: () => Error | undefined,
  logs: () => string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const e = spawnError();
    if (e) throw new Error(`cannot start Alertmanager (${child.spawnfile}): ${e.message}`);
    const x = exited();
    if (x) throw new Error(`Alertmanager exited before it was ready (code ${x.code}, signal ${x.signal}):\n${logs()}`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`Alertmanager at ${url} not ready within 15 s:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
