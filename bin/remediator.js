#!/usr/bin/env node
// `npx remediator ...`: runs the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

// `remediator remediations list | head`: once the reader is gone, stop quietly as other
// command-line tools do, instead of dying on the EPIPE of the next write with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

register();
const args = process.argv.slice(2);
if (args[0] === 'start') {
  await import('../src/main.ts');
} else {
  const { runCli } = await import('../src/cli.ts');
  process.exitCode = await runCli(args, {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    env: process.env,
  });
}
