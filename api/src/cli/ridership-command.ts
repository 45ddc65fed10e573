import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { buildDueRollups, buildRidershipRollup, type RollupBuild, rollupStatus } from '../analytics/ridership-rollup.js';
import { checkedPeriod } from '../analytics/analytics-input.js';

type WithOrm = <T>(work: (orm: Orm, config: Config) => Promise<T>) => Promise<T>;

/** Exit code of a command refused for its input (unknown city, bad dates, a day not over). */
const EXIT_REFUSED = 2;

const line = (b: RollupBuild, code: string) => (b.built ? `${code} ${b.day}: built, ${b.rides} ride(s)` : `${code} ${b.day}: not built: ${b.reason}`);

/**
 * `onecard ridership`: the ridership rollup (docs/analytics.md "The rollup"): build a city's days
 * now, build every due day (what the job does every 10 minutes), or show which days are built and fresh.
 */
export function ridershipCommand(withOrm: WithOrm): Command {
  const command = new Command('ridership').description('the ridership rollup: build days, build the due ones, show what is built');
  const cityOf = async (orm: Orm, code: string) => {
    const [city] = await orm.em.fork().execute<{ id: string; code: string }[]>(`select id, code from city where code = ?`, [code.trim().toUpperCase()]);
    return city ?? null;
  };
  const refuse = (message: string) => {
    console.error(`onecard ridership: ${message}`);
    process.exitCode = EXIT_REFUSED;
  };
  /** Runs `work` for the city and the days --city, --from and --to name; refuses (exit 2) bad dates or an unknown city. */
  const forCityDays = async (opts: { city: string; from: string; to?: string }, work: (orm: Orm, city: { id: string; code: string }, period: { from: string; to: string }) => Promise<void>) => {
    let period: { from: string; to: string };
    try {
      period = checkedPeriod(opts.from, opts.to ?? opts.from);
    } catch (err) {
      return refuse((err as Error).message.replaceAll('`', '--'));
    }
    await withOrm(async (orm) => {
      const city = await cityOf(orm, opts.city);
      if (!city) return refuse(`no city ${opts.city}`);
      await work(orm, city, period);
    });
  };
  command
    .command('rollup')
    .description('(re)build a city’s rollup of each business day from --from to --to (inclusive), from its booked rides; days not over yet are refused')
    .requiredOption('--city <code>', 'the city code, e.g. GZ')
    .requiredOption('--from <YYYY-MM-DD>', 'the first business day (local to the city)')
    .option('--to <YYYY-MM-DD>', 'the last business day; --from when left out')
    .addHelpText('after', '\nExit code 2: unknown city, bad dates, or a day that could not be built (not over yet, another build of it running).')
    .action((opts: { city: string; from: string; to?: string }) =>
      forCityDays(opts, async (orm, city, period) => {
        let refused = false;
        for (let t = Date.parse(`${period.from}T00:00:00Z`); t <= Date.parse(`${period.to}T00:00:00Z`); t += 86_400_000) {
          const build = await buildRidershipRollup(orm.em.fork(), city.id, new Date(t).toISOString().slice(0, 10));
          console.log(line(build, city.code));
          refused ||= !build.built;
        }
        if (refused) process.exitCode = EXIT_REFUSED;
      }),
    );
  command
    .command('due')
    .description('build every day booked since its last build (or never built) that is over in its city: what the job does')
    .action(async () => {
      const builds = await withOrm((orm) => buildDueRollups(orm.em.fork()));
      for (const b of builds) console.log(line(b, b.cityId));
      if (builds.length === 0) console.log('no day is due');
    });
  command
    .command('status')
    .description('the days of a city that have a rollup: rides, when built, and whether it is fresh (no ride booked since)')
    .requiredOption('--city <code>', 'the city code, e.g. GZ')
    .requiredOption('--from <YYYY-MM-DD>', 'the first business day')
    .option('--to <YYYY-MM-DD>', 'the last business day; --from when left out')
    .action((opts: { city: string; from: string; to?: string }) =>
      forCityDays(opts, async (orm, city, period) => {
        for (const d of await rollupStatus(orm.em.fork(), city.id, period.from, period.to)) console.log(`${city.code} ${d.day}\t${d.rides} ride(s)\tbuilt ${d.builtAt.toISOString()}\t${d.fresh ? 'fresh' : 'stale: rides booked since'}`);
      }),
    );
  return command;
}
