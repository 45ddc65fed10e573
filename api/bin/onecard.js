#!/usr/bin/env node
// The `onecard` command. The TypeScript is compiled by `npm run build` (run on install by `prepare`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('onecard: the API is not built yet; run `npm run build` at the repository root\n');
  process.exit(2);
}
await import(entry.href);
