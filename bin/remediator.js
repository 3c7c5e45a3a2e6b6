#!/usr/bin/env node
// `npx remediator ...`: runs the compiled code in dist/, building it first when it is missing or
// older than src/ (a checkout without `npm run build`). No TypeScript at run time.
import { buildSaying, staleBecause } from './build.js';

// `remediator remediations list | head`: once the reader is gone, stop quietly as other
// command-line tools do, instead of dying on the EPIPE of the next write with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const why = staleBecause();
if (why) {
  try {
    buildSaying(why);
  } catch (err) {
    process.stderr.write(`remediator: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
}
// Computed specifiers: the type-check (tsconfig.json checks bin/) must not need a built dist/.
const dist = (/** @type {string} */ file) => new URL(`../dist/${file}`, import.meta.url).href;
const args = process.argv.slice(2);
// `start --help` is answered by the CLI, like every other command's --help.
if (args[0] === 'start' && !args.includes('--help') && !args.includes('-h')) {
  await import(dist('main.js'));
} else {
  /** @type {{ runCli: (argv: string[], io: import('../src/cli.ts').CliIo) => Promise<number> }} */
  const { runCli } = await import(dist('cli.js'));
  process.exitCode = await runCli(args, {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    env: process.env,
  });
}
