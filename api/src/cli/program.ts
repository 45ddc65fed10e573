import fs from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { openDatabase } from '../db/database.js';
import { migrate, openOrm, type Orm } from '../db/orm.js';
import { seedDemoData } from '../demo/seed.js';
import { printApiSchema } from '../graphql/schema.js';
import { createLogger } from '../http/logger.js';
import { checkLedger } from '../ledger/ledger-check.js';

/** Opens the configured database (embedded or DATABASE_URL) for one command, and closes it after. */
async function withOrm<T>(work: (orm: Orm, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger({ logLevel: process.env.LOG_LEVEL ? config.logLevel : 'warn' });
  const database = await openDatabase(config, log);
  try {
    const orm = await openOrm(database.url, { poolMax: 4 });
    try {
      return await work(orm, config);
    } finally {
      await orm.close(true);
    }
  } finally {
    await database.stop();
  }
}

const schemaFile = () => path.resolve(process.cwd(), process.env.ONECARD_SCHEMA_FILE || 'schema/schema.graphql');

/** The `onecard` command: one sub-command per administrative task, each with --help. */
export function createProgram(): Command {
  const program = new Command()
    .name('onecard')
    .description('OneCard platform administration. Reads the same environment as `npm start` (DATABASE_URL, ONECARD_DATA_DIR, ...).')
    .showHelpAfterError();

  program
    .command('migrate')
    .description('apply the checked-in database migrations that have not run yet')
    .action(async () => {
      const applied = await withOrm((orm) => migrate(orm));
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database is up to date');
    });

  program
    .command('seed')
    .description('apply migrations, then the demo data steps that have not run yet; prints the demo data')
    .action(async () => {
      const demo = await withOrm(async (orm) => {
        await migrate(orm);
        return seedDemoData(orm.em.fork(), createLogger({ logLevel: 'warn' }));
      });
      console.log(JSON.stringify(demo, null, 2));
    });

  const ledger = program.command('ledger').description('the double-entry ledger');
  ledger
    .command('check')
    .description('check every ledger invariant; exit code 1 and a list when one is broken')
    .option('--json', 'print the problems as JSON')
    .action(async (opts: { json?: boolean }) => {
      const problems = await withOrm((orm) => checkLedger(orm.em.fork()));
      if (opts.json) console.log(JSON.stringify(problems, null, 2));
      else if (problems.length === 0) console.log('ledger OK: entries balance, balances match their postings, no non-negative account is below zero');
      else for (const p of problems) console.log(`${p.rule}\t${p.subject}\t${p.detail}`);
      process.exitCode = problems.length ? 1 : 0;
    });

  const schema = program.command('schema').description('the GraphQL schema emitted from the code');
  schema
    .command('emit')
    .description('write schema/schema.graphql from the code')
    .action(async () => {
      await fs.mkdir(path.dirname(schemaFile()), { recursive: true });
      await fs.writeFile(schemaFile(), await printApiSchema());
      console.log(`wrote ${path.relative(process.cwd(), schemaFile())}`);
    });
  schema
    .command('check')
    .description('exit code 1 when schema/schema.graphql is not what the code emits')
    .action(async () => {
      const current = await fs.readFile(schemaFile(), 'utf8').catch(() => '');
      if (current === (await printApiSchema())) {
        console.log('schema/schema.graphql is up to date');
        return;
      }
      console.error('schema/schema.graphql is stale: run `npm run schema:emit` and commit it');
      process.exitCode = 1;
    });
  return program;
}
