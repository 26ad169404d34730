#!/usr/bin/env node
// The `stateless-chat` command (package.json `bin`): runs the build's CLI, dist/src/cli.js, with the
// same arguments. Without a build it says how to make one (exit 1) instead of a module-not-found trace.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`stateless-chat: the build is missing (${fileURLToPath(cli)}): run \`npm run build\` first\n`);
  process.exit(1);
}
await import(cli.href);
