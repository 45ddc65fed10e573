// @ts-check
/**
 * `npm run test:mutation [-- <unit>... [stryker options]]`: mutation testing of the money code,
 * one Stryker run per unit of scripts/mutation-folders.mjs (all of them when none is named), each
 * with its own incremental file. Options after the units go to Stryker, e.g. `--force` or
 * `--mutate api/src/ledger/ledger.service.ts`. See docs/testing.md.
 */
import { spawnSync } from 'node:child_process';
import { MONEY_FOLDERS } from './mutation-folders.mjs';

const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('-'));
const named = firstOption === -1 ? args : args.slice(0, firstOption);
const strykerArgs = firstOption === -1 ? [] : args.slice(firstOption);
const unknown = named.filter((n) => !(n in MONEY_FOLDERS));
if (unknown.length > 0) {
  console.error(`unknown unit ${unknown.join(', ')}; the units are ${Object.keys(MONEY_FOLDERS).join(', ')}`);
  process.exit(2);
}

let failed = false;
for (const unit of named.length > 0 ? named : Object.keys(MONEY_FOLDERS)) {
  console.log(`\n=== mutation testing: ${unit} ===`);
  const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs', ...strykerArgs], {
    stdio: 'inherit',
    env: { ...process.env, MUTATION_FOLDER: unit },
  });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
