// @ts-check
/**
 * Mutation testing of the money code with StrykerJS (docs/testing.md). One run measures one money
 * folder, named by MUTATION_FOLDER; `npm run test:mutation` (scripts/test-mutation.mjs) runs them
 * one after another. A folder has its own incremental file, because Stryker rewrites that file with
 * the mutants of the current run only: a run of one folder must not forget the others.
 */
import { MONEY_FOLDERS } from './scripts/mutation-folders.mjs';

const name = process.env.MUTATION_FOLDER ?? '';
const folder = MONEY_FOLDERS[name];
if (!folder) {
  throw new Error(`MUTATION_FOLDER must be one of ${Object.keys(MONEY_FOLDERS).join(', ')}; got "${name}"`);
}

const allTests = process.env.MUTATION_TESTS === 'all';

/**
 * Files in a money folder that hold no behaviour to mutate:
 * - tests;
 * - `*.entity.ts`: MikroORM mappings (decorators and column names, checked by the migrations);
 * - `*.types.ts`: GraphQL type declarations (names and descriptions, checked by `schema:check`);
 * - `*.seed.ts`: demo data;
 * - the sandbox gateway: a stand-in for the external payment gateway, not OneCard's money path.
 */
const NOT_MUTATED = ['!**/*.test.ts', '!**/*.entity.ts', '!**/*.types.ts', '!**/*.seed.ts', '!api/src/topups/gateway/sandbox-*.ts'];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: {
    configFile: 'vitest.stryker.config.ts',
    // The runner's default is `threads`; our suite runs in forks (decorator metadata, embedded PostgreSQL).
    pool: 'forks',
    // With every test file (MUTATION_TESTS=all), vitest picks those that import the mutated code.
    related: allTests,
  },
  mutate: [...folder.mutate, ...NOT_MUTATED],
  // The tests that own the folder's behaviour (MUTATION_TESTS=all: every test file, much slower).
  testFiles: allTests ? [] : folder.tests,
  // Each mutant runs only the tests that executed its code in the first (dry) run.
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: `reports/mutation/${name}.incremental.json`,
  // Two cores shared by a team: one test runner (one embedded PostgreSQL) at a time.
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 1),
  // Tests start a server and a database per file: allow slow mutants on a loaded machine.
  timeoutMS: 60_000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true, reportMutants: true },
  // Do not copy what the tests never read into the sandbox.
  ignorePatterns: ['docs', 'examples', 'reports', 'coverage', 'dist', '.onecard'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  thresholds: { high: 90, low: 80, break: null },
};
