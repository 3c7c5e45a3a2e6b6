#!/usr/bin/env node
// `npx remediator ...`: runs the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

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
