import path from 'node:path';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { ArchiveRefusal, archiveClearingMonth } from '../settlement/clearing-archive.js';
import { createPartitionsAhead, MONTHS_AHEAD, partitionedMonths } from '../settlement/clearing-partitions.js';

type WithOrm = <T>(work: (orm: Orm, config: Config) => Promise<T>) => Promise<T>;

/** Exit code of an archive refused (bad month, a window not settled, the file there already). */
const EXIT_REFUSED = 2;

/**
 * `onecard partitions`: the monthly partitions of clearing_item (docs/operations.md "Archiving a
 * month of clearing items"): list them, create the ones ahead now (the job does it hourly), archive a month.
 */
export function partitionsCommand(withOrm: WithOrm): Command {
  const command = new Command('partitions').description('the monthly partitions of clearing_item: list, create ahead, archive a settled month');
  command
    .command('list')
    .description('the months that have a partition')
    .action(async () => {
      for (const month of await withOrm((orm) => partitionedMonths(orm.em.fork()))) console.log(month);
    });
  command
    .command('ahead')
    .description(`create this month's partition and the next ${MONTHS_AHEAD}, and move items the default partition took into their month (what the hourly job does)`)
    .action(async () => {
      const created = await withOrm((orm) => createPartitionsAhead(orm.em.fork()));
      console.log(created.length ? `created: ${created.join(', ')}` : 'every partition ahead exists');
    });
  command
    .command('archive')
    .description('detach a month of clearing items whose windows are all settled, export it with COPY into a file, and drop it once the file holds the same rows and amounts')
    .requiredOption('--month <YYYY-MM>', 'the month of business days')
    .option('--dir <folder>', 'where the file and its manifest go', 'archive')
    .addHelpText('after', '\nWrites clearing_item-YYYY-MM.tsv (COPY text format) and clearing_item-YYYY-MM.manifest.json (rows, amounts per currency, sha256).\nRuns the ledger check afterwards. Exit code 2: refused (bad month, a window not settled, no partition, the file exists, the copy did not match).')
    .action(async (opts: { month: string; dir: string }) => {
      try {
        const { result, problems } = await withOrm(async (orm) => {
          const result = await archiveClearingMonth(orm.em.fork(), orm.config.get('clientUrl')!, { month: opts.month, dir: path.resolve(opts.dir) });
          return { result, problems: await checkLedger(orm.em.fork()) };
        });
        const amounts = Object.entries(result.totals.amounts).map(([currency, total]) => `${total} ${currency}`).join(', ') || 'no amount';
        console.log(`archived ${result.month}: ${result.totals.rows} item(s), ${amounts} (minor units) into ${result.file}; ${result.partition} dropped`);
        console.log(problems.length ? `the ledger check found ${problems.length} problem(s): run onecard ledger check` : 'ledger OK');
        process.exitCode = problems.length ? 1 : 0;
      } catch (err) {
        if (!(err instanceof ArchiveRefusal)) throw err;
        console.error(`onecard partitions archive: ${err.code}: ${err.message}`);
        process.exitCode = EXIT_REFUSED;
      }
    });
  return command;
}
