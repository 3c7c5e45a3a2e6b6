#!/usr/bin/env node
// `npm run build`: compiles src/ to dist/ with tsc (tsconfig.build.json, incremental) and copies
// the SQL migrations beside the compiled code, where src/store/migrate.ts looks for them.
// `--if-stale` (npm's prestart, and bin/remediator.js) builds only when dist/ is missing or older
// than a source file: a stat of each file, a few milliseconds, so `npm start` stays one command.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
/** Besides src/, these change what tsc emits. */
const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/**
 * Newest modification time under a directory (0 when it does not exist).
 * @param {string} path
 * @returns {number}
 */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs; // a deleted or renamed file changes its directory's mtime
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

/**
 * Why dist/ must be (re)built, in words: it was never built (a fresh checkout's first start), or a
 * source is newer. Undefined when it is current, and always without src/ (an image).
 * @returns {string | undefined}
 */
export function staleBecause() {
  if (!existsSync(join(root, 'src'))) return undefined;
  if (!existsSync(stamp)) return 'first start';
  const built = statSync(stamp).mtimeMs;
  if (newest(join(root, 'src')) > built) return 'src/ changed since the last build';
  const changed = inputs.find((f) => newest(join(root, f)) > built);
  return changed ? `${changed} changed since the last build` : undefined;
}

/** Whether dist/ must be (re)built: missing, or older than a source. Without src/ (an image), never. */
export function isStale() {
  return staleBecause() !== undefined;
}

/**
 * Builds, saying so first (tsc takes from a few seconds to a minute, and `npm start` would
 * otherwise show nothing after "> prestart" all that time) and then how long it took.
 * @param {string | undefined} why
 * @param {(line: string) => void} say
 */
export function buildSaying(why, say = (line) => process.stderr.write(`${line}\n`)) {
  say(`remediator: building dist/${why ? ` (${why})` : ''}: compiling src/ with tsc, this can take a minute...`);
  const t0 = Date.now();
  build();
  say(`remediator: built dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Compiles and copies; throws with tsc's output when it fails. */
export function build() {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    throw new Error('dist/ is missing or out of date and typescript is not installed: run `npm ci` (with dev dependencies), then `npm run build`');
  }
  const res = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`tsc failed:\n${res.stdout}${res.stderr}`);
  cpSync(join(root, 'src/store/migrations'), join(root, 'dist/store/migrations'), { recursive: true });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const onlyIfStale = process.argv.includes('--if-stale');
  try {
    const why = staleBecause();
    if (!onlyIfStale || why) buildSaying(why);
  } catch (err) {
    process.stderr.write(`remediator: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
}
