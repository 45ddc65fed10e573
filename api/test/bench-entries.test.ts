import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * Every benchmark starts as `npm run bench:*` starts it: the built file under node, with nothing
 * vitest would have set up (decorator metadata included). `--help` evaluates every module the bench
 * imports and stops before any work. A bench that cannot even load (an import order that reaches a
 * type-graphql class before `reflect-metadata`) fails here instead of when someone measures.
 * Needs `npm run build` (as `.ci/run` does through `npm ci`).
 */
const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const benches = fs
  .readdirSync(path.join(root, 'api/src/bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.ts$/, ''));

describe('benchmarks load as npm run starts them', () => {
  it('finds the benches', () => {
    expect(benches).toEqual(expect.arrayContaining(['ledger.bench', 'payments.bench', 'refunds.bench', 'settlement.bench']));
  });

  it.each(benches)('%s --help loads every module and prints its options', async (bench) => {
    const { stdout } = await run(process.execPath, [path.join(root, 'api/dist/bench', `${bench}.js`), '--help'], { cwd: root, timeout: 60_000 });
    expect(stdout).toMatch(new RegExp(`^Usage: ${bench} \\[options\\]`, 'm'));
    expect(stdout).toMatch(/^ +-h, --help +display help for command$/m);
  });
});
