/**
 * Ridership analytics benchmark (issue 25 item 3): `npm run bench:ridership -- [--rides N] [--lines L] [--stops S] [--history D]`.
 *
 * A day of about N booked rides in one city (card fares and, --qr of them, QR rides), generated
 * server-side — generate_series for the riders and their taps, window sums for each rider's walk
 * along the lines, then INSERT … SELECT straight into the ride tables (this bench measures
 * aggregation, not upload: the uploads bench does that) — over L lines of S stops, each stop one
 * terminal; and D earlier days of the same size, so the statements have to find the day among others
 * as they will in production. Riders ride as commuters do: two to five taps a day, each next tap 3
 * to 45 minutes after the last, mostly along the same line (a tap-in and tap-out), else on another
 * line (a transfer).
 *
 * Phase "ours": ridershipFor() by LINE, STOP, HOUR and DAY and originDestinationFor() by LINE and
 * STOP, the services the GraphQL queries and CSV downloads call, as the operator, live from the
 * rides (no rollup yet). Phase "bare": the same rows already joined, filtered and narrowed (rider,
 * local time, line, stop, fare) in a table of their own without an index, and a bare `GROUP BY`
 * (and, for the matrix, the bare `lead()`) over it: the least the same answer can cost. Phase
 * "rollup": the day's rollup built (buildRidershipRollup, what the job runs), then ridershipFor()
 * by each grouping again, now read from it. Prints the seconds of each, the ratios against bare,
 * one JSON line, and checks that every answer gives the bare numbers (exit 1 when not). With
 * --explain, the plans of ours.
 *
 * Generation is timed apart (not an answer), and followed by ANALYZE, as autovacuum would have done after a day's upload.
 */
import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { originDestinationFor, originDestinationSql, type OriginDestinationLevel } from '../analytics/origin-destination.service.js';
import { analyticsQuery, tapsParams } from '../analytics/ride-taps.js';
import { ridershipFor, ridershipSql, type RidershipGrouping } from '../analytics/ridership.service.js';
import { buildRidershipRollup, freshRollupDays } from '../analytics/ridership-rollup.js';
import type { Principal } from '../auth/principal.js';
import { migrate, openOrm } from '../db/orm.js';
import { createWorkingCa } from '../pki/pki.service.js';
import { initRootCa } from '../pki/root-ca.js';
import { createCity } from '../tenancy/tenancy.service.js';
import { environmentLine, fmt, positiveInt, nonNegativeInt, runBench, scratchDatabase } from './harness.js';

const DAY = '2026-11-25';
const TIME_ZONE = 'Asia/Shanghai';
const WINDOW_MINUTES = 30;
const FARES = [100, 150, 200, 250, 300, 400];

interface Options {
  rides: number;
  lines: number;
  stops: number;
  history: number;
  qr: number;
  explain: boolean;
}

function parseOptions(argv: string[]): Options {
  const share = (v: string) => {
    const n = Number(v);
    if (!(n >= 0 && n <= 1)) throw new Error('a share is 0 to 1');
    return n;
  };
  return new Command('ridership.bench')
    .description('Time to aggregate a day of rides (ridership by line, stop, hour, day; the origin–destination matrix) against a bare GROUP BY of the same rows')
    .option('--rides <n>', 'booked rides in the day (a large city: 12_000_000)', positiveInt, 1_000_000)
    .option('--lines <l>', 'lines in the city', positiveInt, 20)
    .option('--stops <s>', 'stops per line (one terminal each)', positiveInt, 25)
    .option('--history <d>', 'earlier days of the same size in the tables', nonNegativeInt, 1)
    .option('--qr <share>', 'share of riders who ride by QR code (transit wallets) rather than card', share, 0.1)
    .option('--explain', 'print EXPLAIN (ANALYZE, BUFFERS) of ridership by STOP and the matrix by STOP', false)
    .addHelpText('after', '\nUses DATABASE_URL (a scratch database on that server) or else an embedded PostgreSQL in a temp folder.')
    .parse(argv)
    .opts<Options>();
}

const dayMinus = (days: number) => new Date(Date.parse(`${DAY}T00:00:00Z`) - days * 86_400_000).toISOString().slice(0, 10);

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const int = (n: number) => n.toLocaleString('en-US');

async function main(): Promise<void> {
  await runBench('ridership', async ({ log, cleanups }) => {
    const opts = parseOptions(process.argv);
    const { url, where } = await scratchDatabase(log, cleanups);
    const orm = await openOrm(url, { poolMax: 4 });
    cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
    await migrate(orm);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });

    // ——— the world: a city, its terminals (reader rows with placeholder certificates), wallets ———
    const tSetup = process.hrtime.bigint();
    const em = orm.em.fork();
    const city = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: TIME_ZONE, currency: 'CNY', cardCompanyName: 'Yangchengtong' });
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-ridership-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    const root = await initRootCa(path.join(tmp, 'root.json'), 'ridership bench root CA');
    const ca = await createWorkingCa(em, randomBytes(32), root, { kind: 'CITY', cityId: city.city.id, cityCode: 'GZ', name: 'GZ', publicUrl: 'http://127.0.0.1:9' });
    const terminals = opts.lines * opts.stops;
    const db = await pool.connect();
    try {
      await db.query('begin');
      // The readers' certificates are not what this bench reads: placeholder rows satisfy the keys.
      // The readers' certificates are not what this bench reads: placeholder rows under the city's working CA satisfy the keys.
      await db.query(
        `with made as (select n, gen_random_uuid() as id, 'be' || lpad(to_hex(n), 8, '0') as serial from generate_series(0, $4::int - 1) n),
              certs as (insert into issued_certificate (serial, ca_id, profile, subject, certificate_pem, public_key_fingerprint, not_before, not_after)
                        select serial, $3, 'reader', 'bench', 'bench', 'bench-' || n, now(), now() + interval '1 year' from made returning serial)
         insert into reader (id, serial, model, owner_kind, owner_id, city_id, national_csr_pem, city_certificate_serial, public_key_fingerprint)
         select id, 'BENCH-' || n, 'OC-V1', 'CARD_COMPANY', $1, $2, 'bench', (select serial from certs c where c.serial = made.serial), 'bench-' || n from made`,
        [city.cardCompany.id, city.city.id, ca.id, terminals],
      );
      await db.query(
        `insert into terminal_location (reader_id, line, stop)
         select r.id, 'Line ' || lpad(((split_part(r.serial, '-', 2)::int / $1) + 1)::text, 2, '0'), 'Stop ' || lpad(((split_part(r.serial, '-', 2)::int % $1) + 1)::text, 2, '0')
           from reader r where r.serial like 'BENCH-%'`,
        [opts.stops],
      );
      await db.query('commit');
    } catch (err) {
      await db.query('rollback');
      throw err;
    } finally {
      db.release();
    }

    const expected = { rides: 0, fares: 0n };
    let generateSeconds = 0;
    // ——— the days, generated server-side (generate_series, window sums for each rider's walk) and inserted set-based ———
    // One day of taps in `bench_gen`, in rider order; every day in the tables (the one asked for and --history earlier ones)
    // is that day on its own date. Ids and record numbers follow rider order, so the indexes fill at their right edge.
    const riders = Math.ceil(opts.rides / 3.5);
    const qrPercent = Math.round(opts.qr * 100);
    const tGenerate = process.hrtime.bigint();
    const gen = await pool.connect();
    try {
      await gen.query(`set work_mem = '1GB'`);
      await gen.query(`select setseed(0.25)`);
      await gen.query(
        `create unlogged table bench_gen as
         with rider as (
           select r, 2 + floor(random() * 4)::int as taps, floor(random() * $2::int)::int as line0, floor(random() * $3::int)::int as stop0, 5 * 3600 + floor(random() * 17 * 3600)::int as t0
             from generate_series(0, $1::int - 1) r),
         tap as (
           select r, j, line0, stop0, t0, random() < 0.7 as along, floor(random() * 1000000)::int as hop, 180 + floor(random() * 42 * 60)::int as gap,
                  ($4::int[])[1 + floor(random() * cardinality($4::int[]))::int] as fare
             from rider, generate_series(0, taps - 1) j),
         walk as (
           -- each next tap 3 to 45 minutes after the last; mostly along the line (another stop), else on another line
           select r, j, fare,
                  t0 + sum(case when j = 0 then 0 else gap end) over w as seconds,
                  (line0 + sum(case when j > 0 and not along then 1 + hop % greatest($2::int - 1, 1) else 0 end) over w) % $2::int as line,
                  (stop0 + sum(case when j > 0 and along then 1 + hop % greatest($3::int - 1, 1) else 0 end) over w) % $3::int as stop
             from tap window w as (partition by r order by j))
         select r as rider, j as seq, (line * $3::int + stop)::int as terminal, seconds::int as seconds, fare from walk where seconds < 86400 order by r, j`,
        [riders, opts.lines, opts.stops, FARES],
      );
      await gen.query(`create table bench_terminal as select split_part(r.serial, '-', 2)::int as terminal, r.id as reader_id from reader r where r.serial like 'BENCH-%'`);
      // QR riders (every rider whose number ends in fewer than --qr × 100): a holder, a wallet and a credential each.
      await gen.query(
        `with riders as (select n from generate_series(0, $1::int - 1) n where n % 100 < $2::int),
              holders as (insert into cardholder (id, username, password_hash, display_name) select md5('holder-' || n)::uuid, 'bench-' || n, 'bench', 'bench' from riders returning id),
              wallets as (insert into transit_wallet (id, holder_id, card_company_id, currency, debt_limit) select md5('wallet-' || n)::uuid, md5('holder-' || n)::uuid, $3, 'CNY', 0 from riders where exists (select 1 from holders) returning id)
         insert into qr_credential (id, wallet_id, device_public_key, valid_from, valid_until, issued_by_client)
         select md5('credential-' || n)::uuid, md5('wallet-' || n)::uuid, decode(repeat('04', 65), 'hex'), now() - interval '400 days', now() + interval '1 day', 'bench' from riders where exists (select 1 from wallets)`,
        [riders, qrPercent, city.cardCompany.id],
      );
      // Booked rides point at a journal entry; one placeholder serves them all (this bench reads no ledger).
      const entry = randomUUID();
      await gen.query(
        `with k as (insert into journal_entry_key (entry_key, entry_id) values ('bench:ridership', $1) returning entry_key, entry_id, posted_at)
         insert into journal_entry (id, entry_key, description, posted_at) select entry_id, entry_key, 'placeholder for the bench rides', posted_at from k`,
        [entry],
      );
      for (let d = opts.history; d >= 0; d--) {
        const date = dayMinus(d);
        const index = opts.history - d;
        // A batch per terminal and day for each kind.
        await gen.query(`insert into offline_batch (id, reader_id, batch_id, body_sha256) select md5($1 || '-card-' || terminal)::uuid, reader_id, $1 || '-card', 'bench' from bench_terminal`, [date]);
        await gen.query(`insert into qr_ride_batch (id, reader_id, batch_id, body_sha256) select md5($1 || '-qr-' || terminal)::uuid, reader_id, $1 || '-qr', 'bench' from bench_terminal`, [date]);
        // The card's counter goes on from day to day (8 a day); the ids count up in rider order.
        await gen.query(
          `insert into offline_transaction (id, batch_row_id, record_no, asn, card_city, offline_counter, amount, terminal_serial, date, time, tac, outcome, reason, journal_entry_id)
           select (lpad(to_hex($2::int), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(g.rider::bigint * 8 + g.seq), 12, '0'))::uuid, md5($1 || '-card-' || g.terminal)::uuid, g.rider * 8 + g.seq,
                  lpad(g.rider::text, 20, '0'), '5810', $2::int * 8 + g.seq, g.fare, 1, replace($1, '-', ''),
                  lpad((g.seconds / 3600)::text, 2, '0') || lpad((g.seconds / 60 % 60)::text, 2, '0') || lpad((g.seconds % 60)::text, 2, '0'), '00000000', 'ACCEPTED', 'bench', $3::uuid
             from bench_gen g where g.rider % 100 >= $4::int`,
          [date, index, entry, qrPercent],
        );
        await gen.query(
          `insert into qr_ride (id, batch_row_id, record_no, credential_id, counter, fresh_time, scanned_at, amount, outcome, reason, journal_entry_id)
           select (lpad(to_hex($2::int), 8, '0') || '-0001-4000-8000-' || lpad(to_hex(g.rider::bigint * 8 + g.seq), 12, '0'))::uuid, md5($1 || '-qr-' || g.terminal)::uuid, g.rider * 8 + g.seq,
                  md5('credential-' || g.rider)::uuid, $2::int * 8 + g.seq, x.at, x.at, g.fare, 'ACCEPTED', 'bench', $3::uuid
             from bench_gen g cross join lateral (select ($1::date + make_interval(secs => g.seconds)) at time zone $5::text as at) x where g.rider % 100 < $4::int`,
          [date, index, entry, qrPercent, TIME_ZONE],
        );
      }
      // The day asked for, already joined, filtered and narrowed: what the bare GROUP BY reads.
      await gen.query(
        `create table bench_bare_tap as
         select case when rider % 100 < $2::int then 'wallet:' else 'card:' end || rider as rider, $1::date + make_interval(secs => seconds) as local_at,
                'Line ' || lpad((terminal / $3::int + 1)::text, 2, '0') as line, 'Stop ' || lpad((terminal % $3::int + 1)::text, 2, '0') as stop, fare::bigint as amount
           from bench_gen`,
        [DAY, qrPercent, opts.stops],
      );
      const [made] = (await gen.query<{ rides: string; fares: string }>(`select count(*)::text as rides, sum(fare)::text as fares from bench_gen`)).rows;
      expected.rides = Number(made!.rides);
      expected.fares = BigInt(made!.fares);
      await gen.query('analyze');
    } finally {
      gen.release();
    }
    generateSeconds = seconds(tGenerate);
    const setup = seconds(tSetup);


    const env = await environmentLine(url, where);
    console.log(`ridership bench: ${int(expected.rides)} rides on ${DAY} (${Math.round(opts.qr * 100)} % of riders by QR) over ${opts.lines} lines × ${opts.stops} stops, ${opts.history} earlier day(s) of the same size in the tables`);
    console.log(`${env.line}; set-up ${fmt(setup - generateSeconds, 1)} s, generation of the ${opts.history + 1} day(s) server-side (generate_series, INSERT … SELECT, ANALYZE) ${fmt(generateSeconds, 1)} s`);

    // ——— the phases: each answer ours, then bare, timed one by one after one untimed warm run of each ———
    const operator: Principal = { kind: 'OPERATOR', clientId: 'bench', tenantId: null, holderId: null, scopes: ['settlements:read'] };
    type Row = { key: string; rides: number; riders: number; extra: string };
    const bareKeys: Record<RidershipGrouping, string> = { LINE: 'line', STOP: `line || ' / ' || stop`, HOUR: `to_char(local_at, 'HH24')`, DAY: `to_char(local_at, 'YYYY-MM-DD')` };
    const barePlace: Record<OriginDestinationLevel, string> = { LINE: 'line', STOP: `line || ' / ' || stop` };
    const answers: { name: string; ours: () => Promise<{ rows: Row[]; suppressed: number }>; bare: () => Promise<Row[]> }[] = [
      ...(['LINE', 'STOP', 'HOUR', 'DAY'] as const).map((groupBy) => ({
        name: `ridership ${groupBy}`,
        ours: async () => {
          const r = (await ridershipFor(orm.em.fork(), operator, { cityId: city.city.id, from: DAY, to: DAY, groupBy }))!;
          return { rows: r.groups.map((g) => ({ key: g.key, rides: g.rides, riders: g.riders, extra: String(g.fares) })), suppressed: r.suppressedGroups };
        },
        bare: async () =>
          (await pool.query<{ key: string; rides: string; riders: string; fares: string }>(`select ${bareKeys[groupBy]} as key, count(*) as rides, count(distinct rider) as riders, sum(amount) as fares from bench_bare_tap group by 1 order by 1`)).rows.map((r) => ({
            key: r.key,
            rides: Number(r.rides),
            riders: Number(r.riders),
            extra: r.fares,
          })),
      })),
      ...(['LINE', 'STOP'] as const).map((level) => ({
        name: `origin–destination ${level}`,
        ours: async () => {
          const r = (await originDestinationFor(orm.em.fork(), operator, { cityId: city.city.id, from: DAY, to: DAY, level, transferWindowMinutes: WINDOW_MINUTES }))!;
          return { rows: r.pairs.map((p) => ({ key: `${p.origin} → ${p.destination}`, rides: p.trips, riders: p.riders, extra: String(p.transfer) })), suppressed: r.suppressedPairs };
        },
        bare: async () =>
          (
            await pool.query<{ key: string; trips: string; riders: string; transfer: boolean }>(
              `select place || ' → ' || next_place as key, count(*) as trips, count(distinct rider) as riders, bool_or(line <> next_line) as transfer
                 from (select rider, local_at, line, line || ' / ' || stop as stop, ${barePlace[level]} as place,
                              lead(local_at) over w as next_at, lead(line) over w as next_line, lead(line || ' / ' || stop) over w as next_stop, lead(${barePlace[level]}) over w as next_place
                         from bench_bare_tap window w as (partition by rider order by local_at)) p
                where next_at <= local_at + interval '${WINDOW_MINUTES} minutes' and next_stop <> stop
                group by place, next_place order by place, next_place`,
            )
          ).rows.map((r) => ({ key: r.key, rides: Number(r.trips), riders: Number(r.riders), extra: String(r.transfer) })),
      })),
    ];
    await answers[0]!.ours();
    await answers[0]!.bare();

    const problems: string[] = [];
    /** The same numbers: the bare rows of enough riders are ours, the others are what we suppressed. */
    const compare = (name: string, ours: { rows: Row[]; suppressed: number }, bare: Row[]) => {
      const shown = bare.filter((r) => r.riders >= 5);
      if (JSON.stringify(shown) !== JSON.stringify(ours.rows)) problems.push(`${name}: ours and bare differ (${ours.rows.length} vs ${shown.length} rows)`);
      if (bare.length - shown.length !== ours.suppressed) problems.push(`${name}: ${ours.suppressed} suppressed, bare has ${bare.length - shown.length} small`);
    };
    const results: { name: string; ours: number; bare: number; rows: number; suppressed: number }[] = [];
    const bareRows = new Map<string, Row[]>();
    for (const a of answers) {
      const t0 = process.hrtime.bigint();
      const ours = await a.ours();
      const oursSeconds = seconds(t0);
      const t1 = process.hrtime.bigint();
      const bare = await a.bare();
      const bareSeconds = seconds(t1);
      bareRows.set(a.name, bare);
      compare(a.name, ours, bare);
      if (a.name === 'ridership DAY' && (bare[0]?.rides !== expected.rides || bare[0]?.extra !== String(expected.fares))) problems.push(`ridership DAY: ${bare[0]?.rides} rides, ${expected.rides} generated`);
      results.push({ name: a.name, ours: oursSeconds, bare: bareSeconds, rows: ours.rows.length, suppressed: ours.suppressed });
    }

    const rows = [['answer', 'ours s', 'bare s', 'ours/bare', 'rows shown', 'suppressed'], ...results.map((r) => [r.name, fmt(r.ours, 2), fmt(r.bare, 2), `${fmt(r.ours / r.bare, 1)}×`, int(r.rows), int(r.suppressed)])];
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
    const total = { ours: results.reduce((t, r) => t + r.ours, 0), bare: results.reduce((t, r) => t + r.bare, 0) };
    console.log(`ratio ours/bare over all six answers: ${fmt(total.ours / total.bare, 1)}× (${fmt(total.ours, 1)} s against ${fmt(total.bare, 1)} s)`);

    // ——— the rollup: the day's build (timed), then the four ridership answers again, now read from it ———
    const tBuild = process.hrtime.bigint();
    const build = await buildRidershipRollup(orm.em.fork(), city.city.id, DAY);
    const buildSeconds = seconds(tBuild);
    if (!build.built) problems.push(`rollup: the day was not built: ${build.reason}`);
    else if (build.rides !== expected.rides) problems.push(`rollup: built ${build.rides} rides, ${expected.rides} generated`);
    if (!(await freshRollupDays(orm.em.fork(), city.city.id, DAY, DAY)).has(DAY)) problems.push('rollup: the day is not fresh after its build');
    const rollupResults: { name: string; rollup: number; bare: number }[] = [];
    for (const a of answers.filter((x) => x.name.startsWith('ridership '))) {
      const t0 = process.hrtime.bigint();
      const fromRollup = await a.ours();
      const rollupSeconds = seconds(t0);
      compare(`${a.name} from the rollup`, fromRollup, bareRows.get(a.name)!);
      rollupResults.push({ name: a.name, rollup: rollupSeconds, bare: results.find((r) => r.name === a.name)!.bare });
    }
    const bareFour = rollupResults.reduce((t, r) => t + r.bare, 0);
    console.log(`\nrollup build of the day (one statement, the four groupings): ${fmt(buildSeconds, 2)} s, ${fmt(buildSeconds / bareFour, 2)}× the four bare GROUP BYs together (${fmt(bareFour, 2)} s)`);
    const rollupRows = [['answer', 'rollup s', 'bare s', 'rollup/bare'], ...rollupResults.map((r) => [`${r.name} from the rollup`, fmt(r.rollup, 3), fmt(r.bare, 2), `${fmt(r.rollup / r.bare, 4)}×`])];
    const rollupWidths = rollupRows[0]!.map((_, col) => Math.max(...rollupRows.map((r) => r[col]!.length)));
    for (const r of rollupRows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(rollupWidths[col]!) : cell.padStart(rollupWidths[col]!))).join('  '));

    if (opts.explain) {
      for (const [name, sql, params] of [
        ['ridership STOP', ridershipSql('STOP'), tapsParams({ id: city.city.id, time_zone: TIME_ZONE }, DAY, DAY)],
        ['origin–destination STOP', originDestinationSql('STOP'), [...tapsParams({ id: city.city.id, time_zone: TIME_ZONE }, DAY, DAY), WINDOW_MINUTES]],
      ] as const) {
        const plan = await analyticsQuery<Record<string, string>>(orm.em.fork(), `explain (analyze, buffers) ${sql}`, [...params]);
        console.log(`\n-- plan of ${name}\n${plan.map((r) => Object.values(r)[0]).join('\n')}`);
      }
    }

    console.log(
      JSON.stringify({
        bench: 'ridership',
        rides: expected.rides,
        historyDays: opts.history,
        lines: opts.lines,
        stops: opts.stops,
        qrShare: opts.qr,
        node: process.version,
        postgres: env.postgres,
        cpus: os.availableParallelism(),
        loadAverage: os.loadavg(),
        setupSeconds: setup,
        generateSeconds,
        rollup: { buildSeconds, answers: rollupResults },
        answers: results,
        ratio: total.ours / total.bare,
      }),
    );
    if (problems.length) {
      console.error(`ridership check: ${problems.length} problem(s)`);
      for (const p of problems) console.error(`  ${p}`);
      return false;
    }
    console.log('ridership check: ok (every answer, live and from the rollup, equal to the bare GROUP BY of the same rows, small groups suppressed, the day’s rides and fares all counted)');
    return true;
  });
}

await main();
