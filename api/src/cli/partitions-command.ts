import path from 'node:path';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { LedgerArchiveRefusal, archiveLedgerMonth } from '../ledger/ledger-archive.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { createLedgerPartitionsAhead } from '../ledger/ledger-partitions.js';
import { ArchiveRefusal, archiveClearingMonth } from '../settlement/clearing-archive.js';
import { MONTHS_AHEAD } from '../db/months.js';
import { createPartitionsAhead } from '../settlement/clearing-partitions.js';
import { attachedMonths } from '../db/partitions.js';

type WithOrm = <T>(work: (orm: Orm, config: Config) => Promise<T>) => Promise<T>;

/** Exit code of an archive refused (bad month, a window not settled, the file there already). */
const EXIT_REFUSED = 2;

/**
 * `onecard partitions`: the monthly partitions of clearing_item and of the ledger (docs/operations.md
 * "Archiving a month of clearing items", "Archiving a month of the ledger"): list them, create the
 * ones ahead now (the job does it hourly), archive a month.
 */
export function partitionsCommand(withOrm: WithOrm): Command {
  const command = new Command('partitions').description('the monthly partitions of clearing_item and the ledger: list, create ahead, archive a settled month');
  command
    .command('list')
    .description('the months that have a partition, and which of the monthly tables (clearing_item, journal_entry, posting) have one')
    .action(async () => {
      const tables = ['clearing_item', 'journal_entry', 'posting'];
      const months = await withOrm(async (orm) => Promise.all(tables.map((t) => attachedMonths(orm.em.fork(), t))));
      const all = [...new Set(months.flat())].sort();
      // A month archived from one table and not (yet) the other shows as '-' there.
      console.log(['month  ', ...tables].join('  '));
      for (const month of all) console.log([month, ...tables.map((t, i) => (months[i]!.includes(month) ? 'yes' : '-').padEnd(t.length))].join('  ').trimEnd());
    });
  command
    .command('ahead')
    .description(`create this month's partitions and the next ${MONTHS_AHEAD} (clearing_item, journal_entry and posting), and move rows a default partition took into their month (what the hourly job does)`)
    .action(async () => {
      const { created, ledger } = await withOrm(async (orm) => ({ created: await createPartitionsAhead(orm.em.fork()), ledger: await createLedgerPartitionsAhead(orm.em.fork()) }));
      console.log(created.length ? `created: ${created.join(', ')}` : 'every partition ahead exists');
      console.log(ledger.length ? `ledger created: ${ledger.join(', ')}` : 'every ledger partition ahead exists');
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
  command
    .command('archive-ledger')
    .description("carry every account's balance past a month of the ledger, export its entries and postings with COPY, and drop them once the files and the openings check out")
    .requiredOption('--month <YYYY-MM>', 'the month of posted_at, in UTC')
    .option('--dir <folder>', 'where the files and their manifest go', 'archive')
    .addHelpText(
      'after',
      '\nWrites journal_entry-YYYY-MM.tsv and posting-YYYY-MM.tsv (COPY text format) and ledger-YYYY-MM.manifest.json; the openings go into ledger_opening.\nRuns the ledger check afterwards. Exit code 2: refused (see docs/operations.md "Archiving a month of the ledger").',
    )
    .action(async (opts: { month: string; dir: string }) => {
      try {
        const { result, problems } = await withOrm(async (orm) => {
          const result = await archiveLedgerMonth(orm.em.fork(), orm.config.get('clientUrl')!, { month: opts.month, dir: path.resolve(opts.dir) });
          return { result, problems: await checkLedger(orm.em.fork()) };
        });
        console.log(`archived ${result.month}: ${result.entries} entr(ies), ${result.postings} posting(s) into ${path.dirname(result.files.entries)}; ${result.openings} opening(s) carried forward`);
        console.log(problems.length ? `the ledger check found ${problems.length} problem(s): run onecard ledger check` : 'ledger OK');
        process.exitCode = problems.length ? 1 : 0;
      } catch (err) {
        if (!(err instanceof LedgerArchiveRefusal)) throw err;
        console.error(`onecard partitions archive-ledger: ${err.code}: ${err.message}`);
        process.exitCode = EXIT_REFUSED;
      }
    });
  return command;
}
