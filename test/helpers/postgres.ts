import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private PostgreSQL server on its own port, for tests that stop it: the shared one on 5432
 * stays up for everyone else. Runs initdb and pg_ctl from the installed PostgreSQL, as the
 * `postgres` user when we are root (initdb refuses root).
 */
export class PrivatePostgres {
  readonly dir: string;
  readonly url: string;
  private readonly bin: string;

  constructor(readonly port: number) {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    this.bin = join('/usr/lib/postgresql', versions[0]!, 'bin');
    this.dir = mkdtempSync(join(tmpdir(), 'remediator-pg-'));
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  private run(tool: string, args: string[]): void {
    const cmd = join(this.bin, tool);
    if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' });
    else execFileSync(cmd, args, { stdio: 'pipe' });
  }

  init(): this {
    const uid = process.getuid?.() === 0 ? Number(execFileSync('id', ['-u', 'postgres']).toString().trim()) : undefined;
    const gid = process.getuid?.() === 0 ? Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) : undefined;
    if (uid !== undefined && gid !== undefined) chownSync(this.dir, uid, gid);
    this.run('initdb', ['-D', join(this.dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    return this;
  }

  start(): void {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off`;
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-o', opts, '-l', join(this.dir, 'log'), '-w', 'start']);
  }

  /** `immediate` drops every connection at once, as a crash or a failover would. */
  stop(mode: 'fast' | 'immediate' = 'immediate'): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', mode, '-w', 'stop']);
  }

  destroy(): void {
    try {
      this.stop('immediate');
    } catch {
      /* already stopped */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
