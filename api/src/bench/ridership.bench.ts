/**
 * Ridership analytics benchmark (issue 25 item 3): `npm run bench:ridership -- [--rides N] [--lines L] [--stops S] [--history D]`.
 *
 * A day of N booked rides in one city (card fares and, --qr of them, QR rides), written straight
 * into the ride tables with `COPY … FROM STDIN` (this bench measures aggregation, not upload: the
 * uploads bench does that), over L lines of S stops, each stop one terminal; and D earlier days of
 * the same size, so the statements have to find the day among others as they will in production.
 * Riders ride as commuters do: two to five taps a day, each next tap 3 to 45 minutes after the
 * last, mostly along the same line (a tap-in and tap-out), else on another line (a transfer).
 *
 * Phase "ours": ridershipFor() by LINE, STOP, HOUR and DAY and originDestinationFor() by LINE and
 * STOP, the services the GraphQL queries and CSV downloads call, as the operator. Phase "bare": the
 * same rows already joined, filtered and narrowed (rider, local time, line, stop, fare) in a table
 * of their own without an index, and a bare `GROUP BY` (and, for the matrix, the bare `lead()`) over
 * it: the least the same answer can cost. Prints the seconds of each, the ratio, one JSON line, and
 * checks that both give the same numbers (exit 1 when not). With --explain, the plans of ours.
 *
 * Generation is untimed, and followed by ANALYZE, as autovacuum would have done after a day's upload.
 */
import 'reflect-metadata';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { originDestinationFor, originDestinationSql, type OriginDestinationLevel } from '../analytics/origin-destination.service.js';
import { analyticsQuery, tapsParams } from '../analytics/ride-taps.js';
import { ridershipFor, ridershipSql, type RidershipGrouping } from '../analytics/ridership.service.js';
import type { Principal } from '../auth/principal.js';
import { migrate, openOrm } from '../db/orm.js';
import { createWorkingCa } from '../pki/pki.service.js';
import { initRootCa } from '../pki/root-ca.js';
import { createCity } from '../tenancy/tenancy.service.js';
import { copyIn, environmentLine, fmt, positiveInt, nonNegativeInt, runBench, scratchDatabase } from './harness.js';

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

// ——— the day ———

/** A small deterministic generator (mulberry32): the same day for the same options. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tap {
  rider: number;
  terminal: number;
  seconds: number;
  fare: number;
}

/** One day's taps, rider by rider, in time order: `rides` of them, about 3.5 per rider. */
function* dayOfTaps(opts: Options, rides: number, seed: number): Generator<Tap> {
  const rnd = random(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  let made = 0;
  for (let rider = 0; made < rides; rider++) {
    const taps = Math.min(2 + pick(4), rides - made);
    let line = pick(opts.lines);
    let stop = pick(opts.stops);
    let seconds = 5 * 3600 + pick(17 * 3600);
    for (let i = 0; i < taps && seconds < 86_400; i++) {
      yield { rider, terminal: line * opts.stops + stop, seconds, fare: FARES[pick(FARES.length)]! };
      made++;
      // Mostly along the line (the tap-out at another stop), else a change to another line.
      if (rnd() < 0.7) stop = (stop + 1 + pick(opts.stops - 1)) % opts.stops;
      else line = (line + 1 + pick(Math.max(1, opts.lines - 1))) % opts.lines;
      seconds += 180 + pick(42 * 60);
    }
  }
}

/** A uuid from md5 of a name, as PostgreSQL's md5(name)::uuid makes it. */
const md5Uuid = (name: string) => createHash('md5').update(name).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
const hhmmss = (s: number) => [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join('');
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
    const readerIds = (await pool.query<{ id: string }>(`select id from reader where serial like 'BENCH-%' order by split_part(serial, '-', 2)::int`)).rows.map((r) => r.id);
    const lineOf = (t: number) => `Line ${String(Math.floor(t / opts.stops) + 1).padStart(2, '0')}`;
    const stopOf = (t: number) => `Stop ${String((t % opts.stops) + 1).padStart(2, '0')}`;

    // QR riders (every rider whose number ends in fewer than --qr × 100): a holder, a wallet and a credential each, made set-based.
    const isQr = (rider: number) => rider % 100 < Math.round(opts.qr * 100);
    const credentialOf = (rider: number) => md5Uuid(`credential-${rider}`);
    const maxRiders = Math.ceil(opts.rides / 2) + 1;
    await pool.query(
      `with riders as (select n from generate_series(0, $1::int - 1) n where n % 100 < $2::int),
            holders as (insert into cardholder (id, username, password_hash, display_name) select md5('holder-' || n)::uuid, 'bench-' || n, 'bench', 'bench' from riders returning id),
            wallets as (insert into transit_wallet (id, holder_id, card_company_id, currency, debt_limit) select md5('wallet-' || n)::uuid, md5('holder-' || n)::uuid, $3, 'CNY', 0 from riders where exists (select 1 from holders) returning id)
       insert into qr_credential (id, wallet_id, device_public_key, valid_from, valid_until, issued_by_client)
       select md5('credential-' || n)::uuid, md5('wallet-' || n)::uuid, decode(repeat('04', 65), 'hex'), now() - interval '400 days', now() + interval '1 day', 'bench' from riders where exists (select 1 from wallets)`,
      [maxRiders, Math.round(opts.qr * 100), city.cardCompany.id],
    );
    // Booked rides point at a journal entry; one placeholder serves them all (this bench reads no ledger).
    const entry = randomUUID();
    await pool.query(`insert into journal_entry (id, entry_key, description) values ($1, 'bench:ridership', 'placeholder for the bench rides')`, [entry]);

    // ——— the days, COPY'd in: a batch per terminal and day for each kind; the bare table gets the day asked for ———
    const expected = { rides: 0, fares: 0n };
    const copyClient = await pool.connect();
    try {
      await copyClient.query(`create table bench_bare_tap (rider text not null, local_at timestamp not null, line text not null, stop text not null, amount bigint not null)`);
      for (let d = opts.history; d >= 0; d--) {
        const date = dayMinus(d);
        const cardBatches = readerIds.map(() => randomUUID());
        const qrBatches = readerIds.map(() => randomUUID());
        await copyIn(copyClient, `copy offline_batch (id, reader_id, batch_id, body_sha256) from stdin`, [readerIds.map((r, t) => `${cardBatches[t]}\t${r}\t${date}-card\tbench\n`).join('')]);
        await copyIn(copyClient, `copy qr_ride_batch (id, reader_id, batch_id, body_sha256) from stdin`, [readerIds.map((r, t) => `${qrBatches[t]}\t${r}\t${date}-qr\tbench\n`).join('')]);
        const recordNo = new Uint32Array(readerIds.length * 2);
        const taps = () => dayOfTaps(opts, opts.rides, 1 + d);
        const cardRows = function* () {
          let chunk = '';
          let lastRider = -1;
          let counter = 0;
          for (const tap of taps()) {
            if (isQr(tap.rider)) continue;
            counter = tap.rider === lastRider ? counter + 1 : (opts.history - d) * 8;
            lastRider = tap.rider;
            const asn = String(tap.rider).padStart(20, '0');
            chunk += `${randomUUID()}\t${cardBatches[tap.terminal]}\t${recordNo[tap.terminal]++}\t${asn}\t5810\t${counter}\t${tap.fare}\t1\t${date.replaceAll('-', '')}\t${hhmmss(tap.seconds)}\t00000000\tACCEPTED\tbench\t${entry}\n`;
            if (chunk.length > 1 << 20) yield chunk, (chunk = '');
          }
          yield chunk;
        };
        await copyIn(copyClient, `copy offline_transaction (id, batch_row_id, record_no, asn, card_city, offline_counter, amount, terminal_serial, date, time, tac, outcome, reason, journal_entry_id) from stdin`, cardRows());
        const qrRows = function* () {
          let chunk = '';
          for (const tap of taps()) {
            if (!isQr(tap.rider)) continue;
            const at = `${date} ${hhmmss(tap.seconds).replace(/(..)(..)(..)/, '$1:$2:$3')}+08`;
            chunk += `${randomUUID()}\t${qrBatches[tap.terminal]}\t${recordNo[readerIds.length + tap.terminal]++}\t${credentialOf(tap.rider)}\t${tap.seconds}\t${at}\t${at}\t${tap.fare}\tACCEPTED\tbench\t${entry}\n`;
            if (chunk.length > 1 << 20) yield chunk, (chunk = '');
          }
          yield chunk;
        };
        await copyIn(copyClient, `copy qr_ride (id, batch_row_id, record_no, credential_id, counter, fresh_time, scanned_at, amount, outcome, reason, journal_entry_id) from stdin`, qrRows());
        if (d === 0) {
          const bareRows = function* () {
            let chunk = '';
            for (const tap of taps()) {
              chunk += `${isQr(tap.rider) ? 'wallet' : 'card'}:${tap.rider}\t${date} ${hhmmss(tap.seconds).replace(/(..)(..)(..)/, '$1:$2:$3')}\t${lineOf(tap.terminal)}\t${stopOf(tap.terminal)}\t${tap.fare}\n`;
              expected.rides++;
              expected.fares += BigInt(tap.fare);
              if (chunk.length > 1 << 20) yield chunk, (chunk = '');
            }
            yield chunk;
          };
          await copyIn(copyClient, `copy bench_bare_tap from stdin`, bareRows());
        }
      }
      await copyClient.query('analyze');
    } finally {
      copyClient.release();
    }
    const setup = seconds(tSetup);

    const env = await environmentLine(url, where);
    console.log(`ridership bench: ${int(expected.rides)} rides on ${DAY} (${Math.round(opts.qr * 100)} % of riders by QR) over ${opts.lines} lines × ${opts.stops} stops, ${opts.history} earlier day(s) of the same size in the tables`);
    console.log(`${env.line}; set-up and generation (COPY) ${fmt(setup, 1)} s`);

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
    const results: { name: string; ours: number; bare: number; rows: number; suppressed: number }[] = [];
    for (const a of answers) {
      const t0 = process.hrtime.bigint();
      const ours = await a.ours();
      const oursSeconds = seconds(t0);
      const t1 = process.hrtime.bigint();
      const bare = await a.bare();
      const bareSeconds = seconds(t1);
      // The same numbers: the bare rows of enough riders are ours, the others are what we suppressed.
      const shown = bare.filter((r) => r.riders >= 5);
      if (JSON.stringify(shown) !== JSON.stringify(ours.rows)) problems.push(`${a.name}: ours and bare differ (${ours.rows.length} vs ${shown.length} rows)`);
      if (bare.length - shown.length !== ours.suppressed) problems.push(`${a.name}: ${ours.suppressed} suppressed, bare has ${bare.length - shown.length} small`);
      if (a.name === 'ridership DAY' && (bare[0]?.rides !== expected.rides || bare[0]?.extra !== String(expected.fares))) problems.push(`ridership DAY: ${bare[0]?.rides} rides, ${expected.rides} generated`);
      results.push({ name: a.name, ours: oursSeconds, bare: bareSeconds, rows: ours.rows.length, suppressed: ours.suppressed });
    }

    const rows = [['answer', 'ours s', 'bare s', 'ours/bare', 'rows shown', 'suppressed'], ...results.map((r) => [r.name, fmt(r.ours, 2), fmt(r.bare, 2), `${fmt(r.ours / r.bare, 1)}×`, int(r.rows), int(r.suppressed)])];
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
    const total = { ours: results.reduce((t, r) => t + r.ours, 0), bare: results.reduce((t, r) => t + r.bare, 0) };
    console.log(`ratio ours/bare over all six answers: ${fmt(total.ours / total.bare, 1)}× (${fmt(total.ours, 1)} s against ${fmt(total.bare, 1)} s)`);

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
        answers: results,
        ratio: total.ours / total.bare,
      }),
    );
    if (problems.length) {
      console.error(`ridership check: ${problems.length} problem(s)`);
      for (const p of problems) console.error(`  ${p}`);
      return false;
    }
    console.log('ridership check: ok (every answer equal to the bare GROUP BY of the same rows, small groups suppressed, the day’s rides and fares all counted)');
    return true;
  });
}

await main();
