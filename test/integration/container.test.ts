import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { DATABASE_URL } from '../helpers/pg.js';
import { freePort, startChild } from '../helpers/process.js';
import { dropPrefix, REDIS_URL } from '../helpers/service.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');

/** The final stage of the Dockerfile: its COPY sources, RUN lines, HEALTHCHECK and ENTRYPOINT. */
async function finalStage() {
  const text = await readFile(join(root, 'Dockerfile'), 'utf8');
  const stages = text.split(/^FROM /m);
  const lines = stages[stages.length - 1]!.split('\n').map((l) => l.trim());
  const json = (prefix: string) => {
    const l = lines.find((x) => x.startsWith(prefix));
    assert.ok(l, `Dockerfile final stage has ${prefix}`);
    return JSON.parse(l.slice(prefix.length).trim()) as string[];
  };
  return {
    copies: lines.filter((l) => l.startsWith('COPY ')).map((l) => l.split(/\s+/).slice(1)),
    runs: lines.filter((l) => l.startsWith('RUN ')),
    user: lines.find((l) => l.startsWith('USER ')),
    healthcheck: json('HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD'),
    entrypoint: json('ENTRYPOINT'),
  };
}

test('the image runs the Node.js major the tests run on (and the README says is tested)', async () => {
  const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8');
  const arg = /^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)?.[1];
  assert.ok(arg, 'the Dockerfile pins NODE_VERSION to a major');
  const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
  assert.ok(froms.length >= 2 && froms.every((f) => f.startsWith('node:${NODE_VERSION}-')), `every stage uses NODE_VERSION: ${froms.join(', ')}`);
  assert.equal(arg, process.versions.node.split('.')[0], `the Dockerfile builds on Node ${arg}, the tests run on ${process.version}`);
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  assert.match(readme, new RegExp(`Tested on Node\\.js ${arg}\\b`));
});

/**
 * Docker is not on this machine and no image can be pulled, so this repeats the Dockerfile's final
 * stage by hand: the files it copies, `npm ci --omit=dev`, the ENTRYPOINT and the HEALTHCHECK.
 * It proves the production dependency set runs the service and the CLI without a build.
 */
test('the image recipe: production dependencies only, node dist/main.js starts, answers the healthcheck, stops on SIGTERM', async () => {
  await run(process.execPath, [join(root, 'bin/build.js'), '--if-stale'], { cwd: root });
  const stage = await finalStage();
  assert.ok(stage.runs.some((r) => r.includes('npm ci --omit=dev')), 'the image installs production dependencies only');
  assert.match(stage.user ?? '', /^USER [1-9]\d*:[1-9]\d*$/, 'a numeric non-root user');
  assert.deepEqual(stage.entrypoint, ['node', 'dist/main.js'], 'node itself is the entrypoint, so it receives SIGTERM');

  const app = await mkdtemp(join(tmpdir(), 'remediator-image-'));
  const id = randomBytes(4).toString('hex');
  const schema = `img_${id}`;
  const prefix = `img-${id}`;
  let child: Awaited<ReturnType<typeof startChild>> | undefined;
  try {
    for (const args of stage.copies) {
      const from = args[0]!.startsWith('--from=') ? args.slice(1) : args;
      const dest = from[from.length - 1]!;
      for (const src of from.slice(0, -1)) {
        // `COPY --from=build /app/dist ./dist`: the build stage's output is this checkout's dist/.
        const local = join(root, src.replace(/^\/app\//, ''));
        await cp(local, dest.endsWith('/') ? join(app, dest, src.split('/').pop()!) : join(app, dest), { recursive: true });
      }
    }
    // As the Dockerfile's RUN, from npm's local cache when it has the packages (no `npm cache clean`:
    // that cache is this machine's).
    await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, timeout: 300_000 });
    // tsx (the dev-time TypeScript runner) must not be in the image. typescript itself may be: a
    // production dependency can pull it in as a peer (@bull-board/api -> valibot), never our code.
    await assert.rejects(stat(join(app, 'node_modules', 'tsx')), 'tsx is a dev dependency and not in the image');
    const pkg = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.ok(!('typescript' in pkg.dependencies) && !('tsx' in pkg.dependencies), 'no TypeScript tooling among the production dependencies');
    await assert.rejects(stat(join(app, 'src')), 'no sources in the image');

    const check = await run(process.execPath, ['bin/remediator.js', 'rules', 'check'], { cwd: app });
    assert.match(check.stdout, /^ok: \d+ rules/);

    const port = await freePort();
    const env = {
      PORT: String(port), HOST: '127.0.0.1', DATABASE_URL, REDIS_URL, DATABASE_SCHEMA: schema, QUEUE_PREFIX: prefix,
      WEBHOOK_TOKEN: 'x', SHUTDOWN_GRACE: '2000', NODE_ENV: 'production', LOG_LEVEL: 'info',
    };
    const [cmd, ...args] = stage.entrypoint;
    child = await startChild(cmd === 'node' ? process.execPath : cmd!, args, { cwd: app, env, ready: /"msg":"remediator started"/, timeoutMs: 60_000 });
    // Applied from dist/store/migrations: the SQL files travel with the compiled code.
    assert.match(child.output(), /"msg":"database migrated".*"applied":\["001-audit"/);
    const [hcCmd, ...hcArgs] = stage.healthcheck;
    const hc = await run(hcCmd === 'node' ? process.execPath : hcCmd!, hcArgs, { cwd: app, env: { ...process.env, ...env } });
    assert.equal(hc.stderr, '');
    const code = await child.stop('SIGTERM');
    assert.equal(code, 0, child.output());
    // The healthcheck fails once nothing answers.
    await assert.rejects(run(process.execPath, hcArgs, { cwd: app, env: { ...process.env, ...env } }), /healthcheck: fetch failed/);
  } finally {
    await child?.stop('SIGKILL');
    await rm(app, { recursive: true, force: true });
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
    await dropPrefix(REDIS_URL, prefix);
  }
});
