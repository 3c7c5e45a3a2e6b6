import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';

const root = join(import.meta.dirname, '../..');

/** A free TCP port on loopback (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface Child {
  proc: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a child process and resolves once a line of its output matches `ready`. */
export async function startChild(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; ready: RegExp; timeoutMs?: number; cwd?: string }): Promise<Child & { match: RegExpMatchArray }> {
  const proc = spawn(cmd, args, { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = once(proc, 'exit');
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not become ready in time:\n${out}`)), opts.timeoutMs ?? 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(opts.ready);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before it was ready:\n${out}`));
    });
  });
  return {
    proc,
    match,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** Runs remediator's real entry point (`npm start` without npm) as a child process. */
export async function startRemediator(env: Record<string, string>, args: string[] = []): Promise<Child & { url: string }> {
  const c = await startChild(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    env: { LOG_LEVEL: 'info', METRICS_PORT: '0', ...env },
    ready: /"msg":"remediator started".*?"listening":"(http:[^"]+)"|"msg":"remediator started"/,
  });
  const url = /"listening":"(http:[^"]+)"/.exec(c.output())?.[1] ?? '';
  return { ...c, url };
}

/**
 * A private redis-server on its own port (for tests that stop or reconfigure Redis). `args`
 * replace the default persistence settings (none); give `--dir` when they turn any on.
 */
export async function startRedis(port: number, args: string[] = ['--save', '', '--appendonly', 'no']): Promise<Child> {
  return startChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', ...args], {
    ready: /Ready to accept connections/,
  });
}
