/**
 * Offline upload benchmark (issue 23): `npm run bench:uploads -- [--records N] [--terminals T] [--batch B] [--clients C]`.
 *
 * A day of offline transit rides, as terminals upload it: N records over T terminals of one city
 * (half the card company's metro gates, half a bus company's validators), in batches of about B
 * records (B/2 to 3B/2), C uploads at once. Cards of two cities (10 % visiting from the other one),
 * two to four rides a card, each with a real TAC under its card company's diversified key. The day
 * has what a real one has: a share of rides the terminal sends again in its next batch
 * (duplicates), rides never uploaded (the card's next one is a counter gap), a few forged TACs and
 * a few cards whose value never went through the ledger (no purse shadow).
 *
 * Phase "ours": each batch through `uploadOfflineBatch`, the service the GraphQL mutation calls
 * (certificate chain, signature, parse, per-record checks, posting, clearing items, one
 * transaction), with the key store the resolver uses. No HTTP: the GraphQL layer is the same for
 * every mutation and the payments bench measures it. Phase "bare": the same rows, in a bare
 * `COPY … FROM STDIN` into a narrow table with no index: the least storing them can cost.
 * Prints records/s of both, the ratio, CPU per record (this process, the embedded PostgreSQL),
 * statements and transaction ids per record, one JSON line, then checks the outcome of every
 * record against what the generator made and the totals against the ledger (exit 1 on a problem).
 *
 * Generation is untimed: batches are built, signed and written to a temp file first, then read
 * back during the phase, so 12M records do not have to sit in memory as text.
 */
import 'reflect-metadata';
import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import forge from 'node-forge';
import pg from 'pg';
import { ALG_3DES } from '../cardcrypto/algorithm.js';
import { diversifyKey } from '../cardcrypto/diversify.js';
import { purchaseTac } from '../cardcrypto/epurse.js';
import { migrate, openOrm } from '../db/orm.js';
import { toGlobalId } from '../graphql/global-id.js';
import { PAYABLE_ACCOUNT_CODE } from '../ledger/accounts.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { createWorkingCa } from '../pki/pki.service.js';
import { initRootCa } from '../pki/root-ca.js';
import { SoftwareKeyStore, storeMasterKeys } from '../readers/key-store.js';
import { type ReaderRow, registerReader } from '../readers/readers.service.js';
import { terminalIdOf } from '../readers/session/terminal.js';
import { offlineBatchSignedBytes } from '../settlement/offline-batch-signature.js';
import { ensureMonthPartition } from '../settlement/clearing-partitions.js';
import { tacProblems } from '../settlement/offline-booking.js';
import { MAX_BATCH_RECORDS, type OfflineRecord, parseOfflineBody } from '../settlement/offline-records.js';
import { uploadOfflineBatch } from '../settlement/offline-upload.service.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { Command } from 'commander';
import { copyIn, environmentLine, fmt, positiveInt, postgresCpuOf, runBench, scratchDatabase, driverCounts, transactionIdsGiven, describeError, interrupted } from './harness.js';

const CURRENCY = 'CNY';
const DATE = '20261125';
const CITY_CODES = { home: '5810', visiting: '5180' } as const;
const VISITING = 0.1;
const UNFUNDED_CARDS = 0.005;
const BAD_TAC = 0.001;
const AMOUNTS = [100, 150, 200, 250, 300, 350, 400, 450];
/** The configuration's default top-up limits (TOPUP_*): the bench's cards hold no auto top-up, the rule is still asked. */
const topUpLimits = { purseMax: 100_000n, min: 100n, max: 100_000n, dailyMax: 200_000n };

interface Options {
  records: number;
  terminals: number;
  batch: number;
  clients: number;
  duplicates: number;
  gaps: number;
}

function parseOptions(argv: string[]): Options {
  const share = (v: string) => {
    const n = Number(v);
    if (!(n >= 0 && n < 1)) throw new Error('a share is 0 to 1');
    return n;
  };
  return new Command('uploads.bench')
    .description('Time to upload, verify and post a day of offline rides against a bare COPY of the same rows')
    .option('--records <n>', 'records in the day (over all terminals), up to 12_000_000', positiveInt, 200_000)
    .option('--terminals <t>', 'terminals (half metro gates of the card company, half bus validators of a merchant)', positiveInt, 16)
    .option('--batch <b>', 'records per batch on average (each batch B/2 to 3B/2, at most 5000)', positiveInt, 500)
    .option('--clients <c>', 'uploads at once', positiveInt, 4)
    .option('--duplicates <share>', 'share of rides sent again in the terminal’s next batch', share, 0.02)
    .option('--gaps <share>', 'share of rides never uploaded (the card’s next one shows a gap)', share, 0.01)
    .addHelpText('after', '\nUses DATABASE_URL (a scratch database on that server) or else an embedded PostgreSQL in a temp folder.')
    .parse(argv)
    .opts<Options>();
}

// ——— the day ———

/** The generated rides, column by column (12M rides in ~200 MB). */
interface Day {
  cards: number;
  visiting: Uint8Array;
  unfunded: Uint8Array;
  /** Per card: the sum of its uploaded rides, for its purse shadow. */
  spend: Float64Array;
  rides: number;
  card: Uint32Array;
  counter: Uint16Array;
  amount: Uint16Array;
  terminal: Uint16Array;
  seconds: Uint32Array;
  /** The record's TAC is forged. */
  forged: Uint8Array;
}

function generateDay(opts: Options): Day {
  const ridesPerCard = 3;
  const cards = Math.ceil(opts.records / ridesPerCard);
  const cap = cards * 4;
  const d: Day = {
    cards,
    visiting: new Uint8Array(cards),
    unfunded: new Uint8Array(cards),
    spend: new Float64Array(cards),
    rides: 0,
    card: new Uint32Array(cap),
    counter: new Uint16Array(cap),
    amount: new Uint16Array(cap),
    terminal: new Uint16Array(cap),
    seconds: new Uint32Array(cap),
    forged: new Uint8Array(cap),
  };
  for (let c = 0; c < cards && d.rides < opts.records; c++) {
    d.visiting[c] = Math.random() < VISITING ? 1 : 0;
    d.unfunded[c] = Math.random() < UNFUNDED_CARDS ? 1 : 0;
    const n = 2 + Math.floor(Math.random() * 3);
    const times = Array.from({ length: n }, () => 6 * 3600 + Math.floor(Math.random() * 17 * 3600)).sort((a, b) => a - b);
    for (let k = 0; k < n && d.rides < opts.records; k++) {
      if (k > 0 && Math.random() < opts.gaps) continue; // never uploaded: the next ride of the card shows the gap
      const i = d.rides++;
      d.card[i] = c;
      d.counter[i] = k;
      d.amount[i] = AMOUNTS[Math.floor(Math.random() * AMOUNTS.length)]!;
      d.terminal[i] = Math.floor(Math.random() * opts.terminals);
      d.seconds[i] = times[k]!;
      d.forged[i] = Math.random() < BAD_TAC ? 1 : 0;
      if (!d.forged[i]) d.spend[c] += d.amount[i]!;
    }
  }
  return d;
}

const asnOf = (d: Day, c: number) => `1000${d.visiting[c] ? CITY_CODES.visiting : CITY_CODES.home}${c.toString(16).toUpperCase().padStart(12, '0')}`;
const hhmmss = (s: number) => [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((v) => String(v).padStart(2, '0')).join('');

interface Terminal {
  row: ReaderRow;
  globalId: string;
  deviceKeyPem: string;
  cityPem: string;
  terminalId: Buffer;
}

/** What the day should come to, counted while its batches are written. */
interface Expected {
  batches: number;
  records: number;
  accepted: number;
  acceptedAmount: bigint;
  duplicates: number;
  badTac: number;
  refused: number;
}

/**
 * Each terminal's rides in time order, cut into batches; a share of each batch's rides sent again
 * at the head of the next one; the batches of all terminals interleaved (round robin), each signed,
 * one JSON line per batch in `file`.
 */
async function writeBatches(d: Day, opts: Options, terminals: Terminal[], tacKeys: { home: Buffer; visiting: Buffer }, file: string): Promise<Expected> {
  const byTerminal: number[][] = terminals.map(() => []);
  for (let i = 0; i < d.rides; i++) byTerminal[d.terminal[i]!]!.push(i);
  for (const list of byTerminal) list.sort((a, b) => d.seconds[a]! - d.seconds[b]!);
  const dtk = new Map<number, Buffer>();
  const keyOf = (c: number) => {
    let k = dtk.get(c);
    if (!k) {
      k = diversifyKey(ALG_3DES, d.visiting[c] ? tacKeys.visiting : tacKeys.home, Buffer.from(asnOf(d, c), 'hex'));
      if (dtk.size > 100_000) dtk.clear();
      dtk.set(c, k);
    }
    return k;
  };
  const serials = terminals.map(() => 1000);
  const recordOf = (t: number, i: number) => {
    const c = d.card[i]!;
    const terminalSerial = serials[t]! + i; // unique per terminal, as its counter would be
    const time = hhmmss(d.seconds[i]!);
    let tac = purchaseTac({ algorithm: ALG_3DES, tacKey: keyOf(c), amount: d.amount[i]!, terminalId: terminals[t]!.terminalId, terminalSerial, date: DATE, time }).toString('hex').toUpperCase();
    if (d.forged[i]) tac = tac === '00000000' ? '00000001' : '00000000';
    return { asn: asnOf(d, c), cardCity: d.visiting[c] ? CITY_CODES.visiting : CITY_CODES.home, offlineCounter: d.counter[i]!, amount: d.amount[i]!, terminalSerial, date: DATE, time, tac };
  };
  const kindOf = (i: number) => (d.forged[i] ? 'BAD_TAC' : d.unfunded[d.card[i]!] ? 'REFUSED' : 'OK');
  const expected: Expected = { batches: 0, records: 0, accepted: 0, acceptedAmount: 0n, duplicates: 0, badTac: 0, refused: 0 };
  const cursor = terminals.map(() => 0);
  const previous: number[][] = terminals.map(() => []);
  const out = createWriteStream(file);
  const write = (line: string) =>
    new Promise<void>((resolve, reject) => {
      if (out.write(line)) return resolve();
      // One error listener per wait, removed when the stream drains (else they pile up past MaxListeners).
      const failed = (err: Error) => reject(err);
      out.once('error', failed).once('drain', () => {
        out.off('error', failed);
        resolve();
      });
    });
  for (let open = terminals.length; open > 0; ) {
    open = 0;
    for (let t = 0; t < terminals.length; t++) {
      const list = byTerminal[t]!;
      if (cursor[t]! >= list.length) continue;
      open++;
      const size = Math.min(MAX_BATCH_RECORDS, Math.max(1, Math.round(opts.batch * (0.5 + Math.random()))));
      const fresh = list.slice(cursor[t]!, cursor[t]! + size);
      cursor[t]! += fresh.length;
      const again = previous[t]!.filter(() => Math.random() < opts.duplicates).slice(0, MAX_BATCH_RECORDS - fresh.length);
      previous[t] = fresh;
      for (const i of fresh) {
        const kind = kindOf(i);
        if (kind === 'OK') {
          expected.accepted++;
          expected.acceptedAmount += BigInt(d.amount[i]!);
        } else if (kind === 'BAD_TAC') expected.badTac++;
        else expected.refused++;
      }
      for (const i of again) {
        const kind = kindOf(i);
        if (kind === 'OK') expected.duplicates++;
        else if (kind === 'BAD_TAC') expected.badTac++;
        else expected.refused++;
      }
      const records = [...again, ...fresh].map((i) => recordOf(t, i));
      expected.records += records.length;
      const batchId = `T${t}-${++expected.batches}`;
      const body = JSON.stringify({ records });
      const signature = createSign('sha256').update(offlineBatchSignedBytes(terminals[t]!.globalId, batchId, body)).sign(terminals[t]!.deviceKeyPem).toString('base64');
      await write(`${JSON.stringify({ t, batchId, body, signature })}\n`);
    }
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return expected;
}

/** The same rows as the batches carry, as CSV lines for COPY. */
async function* csvOf(file: string): AsyncIterable<Buffer> {
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    const { body } = JSON.parse(line) as { body: string };
    const records = (JSON.parse(body) as { records: Record<string, string | number>[] }).records;
    yield Buffer.from(records.map((r) => `${r.asn},${r.cardCity},${r.offlineCounter},${r.amount},${r.terminalSerial},${r.date},${r.time},${r.tac}\n`).join(''));
  }
}

function csrFor(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}
const rsaKey = () => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;

/** Records whose TACs the micro-measure verifies (the first batches of the day, up to this many). */
const TAC_SAMPLE = 20_000;

/**
 * CPU per TAC of the upload's verification, alone: the first batches of the day (up to `sample`
 * records) through `verify` one after the other, untimed in the phases' figures.
 */
async function tacMicroMeasure(file: string, sample: number, verify: (terminal: number, records: OfflineRecord[]) => Promise<void>): Promise<{ tacs: number; batches: number; cpuUsPerTac: number }> {
  const batches: { t: number; records: OfflineRecord[] }[] = [];
  let tacs = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (tacs >= sample) break;
    const batch = JSON.parse(line) as { t: number; body: string };
    batches.push({ t: batch.t, records: parseOfflineBody(batch.body).records });
    tacs += batches.at(-1)!.records.length;
  }
  await verify(batches[0]!.t, batches[0]!.records); // warm: the master keys read and unsealed, the code compiled
  const cpu0 = process.cpuUsage();
  for (const batch of batches) await verify(batch.t, batch.records);
  return { tacs, batches: batches.length, cpuUsPerTac: (processCpuMs(cpu0) * 1000) / tacs };
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const processCpuMs = (since?: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};
const int = (n: number | bigint) => n.toLocaleString('en-US');

async function main(): Promise<void> {
  await runBench('uploads', async ({ log, cleanups }) => {
    const opts = parseOptions(process.argv);
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-uploads-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    const { url, where, embeddedDataDir } = await scratchDatabase(log, cleanups);
    const postgresCpu = postgresCpuOf(embeddedDataDir);
    const orm = await openOrm(url, { poolMax: Math.max(20, 2 * opts.clients + 2) });
    cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
    await migrate(orm);
    // The rides' month has its partition, as the partitions job makes it ahead in production.
    await ensureMonthPartition(orm.em.fork(), `${DATE.slice(0, 4)}-${DATE.slice(4, 6)}`);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });

    // The world: a root CA and the home city's working CA; two cities whose card companies hold
    // 3DES master keys; T terminals in the home city, half the card company's, half a bus company's.
    const tSetup = process.hrtime.bigint();
    const kek = randomBytes(32);
    const em = orm.em.fork();
    const publicUrl = 'http://127.0.0.1:9';
    const root = await initRootCa(path.join(tmp, 'root.json'), 'uploads bench root CA');
    const home = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: CURRENCY, cardCompanyName: 'Yangchengtong' });
    const visiting = await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: CURRENCY, cardCompanyName: 'Shenzhentong' });
    await em.execute(`update city set card_city_code = ? where id = ?`, [CITY_CODES.home, home.city.id]);
    await em.execute(`update city set card_city_code = ? where id = ?`, [CITY_CODES.visiting, visiting.city.id]);
    await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: home.city.id, cityCode: 'GZ', name: 'GZ', publicUrl });
    const homeKeys = await storeMasterKeys(em, kek, { cardCompanyId: home.cardCompany.id, keyVersion: 1, algorithm: '3DES' });
    const visitingKeys = await storeMasterKeys(em, kek, { cardCompanyId: visiting.cardCompany.id, keyVersion: 1, algorithm: '3DES' });
    const bus = await createMerchant(em, { cityId: home.city.id, name: 'GZ Bus Group' });
    const terminals: Terminal[] = [];
    for (let t = 0; t < opts.terminals; t++) {
      const owner = t % 2 === 0 ? { kind: 'CARD_COMPANY' as const, id: home.cardCompany.id, name: 'Yangchengtong' } : { kind: 'MERCHANT' as const, id: bus.id, name: bus.name };
      const [national, city, encryption] = [rsaKey(), rsaKey(), rsaKey()];
      const serial = `${owner.kind === 'MERCHANT' ? 'BUS' : 'GATE'}-${t}`;
      const made = await registerReader(em, kek, { serial, model: 'OC-V1', owner, cityId: home.city.id, cityCode: 'GZ', nationalCsrPem: csrFor(national), cityCsrPem: csrFor(city), encryptionCsrPem: csrFor(encryption), nationalAuthority: false, publicUrl });
      terminals.push({ row: made.reader, globalId: toGlobalId('Reader', made.reader.id), deviceKeyPem: city, cityPem: made.cityChainPem[0]!, terminalId: terminalIdOf(made.reader) });
    }

    const day = generateDay(opts);
    const file = path.join(tmp, 'batches.jsonl');
    const expected = await writeBatches(day, opts, terminals, { home: homeKeys.TAC, visiting: visitingKeys.TAC }, file);

    // Every funded card's purse shadow holds its day's spend and a little more, from one bench entry (set-based).
    const client = await pool.connect();
    try {
      await client.query(`create temporary table bench_card (asn text not null, balance bigint not null)`);
      await copyIn(client, `copy bench_card from stdin with (format csv)`, (function* () {
        const lines: string[] = [];
        for (let c = 0; c < day.cards; c++) {
          if (day.unfunded[c]) continue;
          lines.push(`${asnOf(day, c)},${day.spend[c]! + 500}\n`);
          if (lines.length === 10_000) yield Buffer.from(lines.splice(0).join(''));
        }
        if (lines.length) yield Buffer.from(lines.join(''));
      })());
      await client.query('begin');
      await client.query(
        `insert into ledger_account (id, code, type, owner_kind, owner_id, currency, non_negative, balance)
         select gen_random_uuid(), 'bench.card-funding.CNY', 'ASSET', 'OTHER', null, 'CNY', false, sum(balance) from bench_card
         union all
         select gen_random_uuid(), 'card.' || asn || '.purse.CNY', 'LIABILITY', 'CARD_PURSE', asn, 'CNY', true, balance from bench_card`,
      );
      await client.query(
        `with k as (insert into journal_entry_key (entry_key, entry_id, posted_at) values ('bench.fund-cards', '00000000-0000-4000-8000-00000000b0b0', now()) returning entry_key, entry_id, posted_at)
         insert into journal_entry (id, entry_key, description, posted_at) select entry_id, entry_key, 'bench: card purses funded as loads would have', posted_at from k`,
      );
      await client.query(
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
         select '00000000-0000-4000-8000-00000000b0b0', row_number() over (order by a.code) - 1, a.id,
                case when a.type = 'ASSET' then a.balance else -a.balance end, 'CNY', a.balance, now()
           from ledger_account a where a.code = 'bench.card-funding.CNY' or a.owner_kind = 'CARD_PURSE'`,
      );
      await client.query('commit');
      await client.query(`analyze`);
    } finally {
      client.release();
    }
    const setup = seconds(tSetup);
    const env = await environmentLine(url, where);
    console.log(`uploads bench: ${int(expected.records)} records (${int(day.rides)} rides of ${int(day.cards)} cards, the rest sent again) in ${int(expected.batches)} batches of ~${opts.batch} from ${opts.terminals} terminals, ${opts.clients} uploads at once`);
    console.log(`${env.line}; set-up and generation ${fmt(setup, 1)} s`);

    const keyStore = new SoftwareKeyStore(orm.em.fork(), kek);
    const issuerOf = { [CITY_CODES.home]: { cardCompanyId: home.cardCompany.id, currency: CURRENCY }, [CITY_CODES.visiting]: { cardCompanyId: visiting.cardCompany.id, currency: CURRENCY } } as Record<string, { cardCompanyId: string; currency: string }>;
    const tac = await tacMicroMeasure(file, TAC_SAMPLE, async (t, records) => {
      await tacProblems(keyStore, terminals[t]!.row, records.map((r) => ({ r, issuer: issuerOf[r.cardCity]! })));
    });
    console.log(`TAC verification (micro-measure, as the upload does it per batch, keys included): ${int(tac.tacs)} TACs in ${int(tac.batches)} batches, ${fmt(tac.cpuUsPerTac, 2)} µs of CPU per TAC`);

    // ——— ours: every batch through the upload service, C at once ———
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity })[Symbol.asyncIterator]();
    let reading = Promise.resolve<IteratorResult<string> | undefined>(undefined);
    const nextLine = () => (reading = reading.then(() => lines.next()));
    let errors = 0;
    let retries = 0;
    let firstError: string | undefined;
    const xid0 = await transactionIdsGiven(url);
    const counts0 = driverCounts();
    const pg0 = await postgresCpu?.();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: opts.clients }, async () => {
        for (let next = await nextLine(); next && !next.done && !interrupted.now; next = await nextLine()) {
          const batch = JSON.parse(next.value) as { t: number; batchId: string; body: string; signature: string };
          const terminal = terminals[batch.t]!;
          // A terminal whose upload failed (a deadlock, a lost connection) sends the same batch again.
          for (let attempt = 1; ; attempt++) {
            try {
              await uploadOfflineBatch(orm.em.fork(), { keyStore, topUpLimits }, { terminal: terminal.row, terminalGlobalId: terminal.globalId, batchId: batch.batchId, body: batch.body, signature: batch.signature, certificate: terminal.cityPem });
              break;
            } catch (err) {
              firstError ??= describeError(err);
              if (attempt === 3) {
                errors++;
                break;
              }
              retries++;
            }
          }
        }
      }),
    );
    const oursSeconds = seconds(t0);
    const oursCpu = processCpuMs(cpu0);
    const oursPg = postgresCpu ? (await postgresCpu()) - pg0! : NaN;
    const counts = driverCounts();
    const xids = Number((await transactionIdsGiven(url)) - xid0);

    // ——— bare: the same rows, COPY into a narrow table ———
    const bareClient = await pool.connect();
    let bareSeconds: number;
    let bareCpu: number;
    let barePg: number;
    try {
      await bareClient.query(`create table bench_bare_ride (asn text, card_city text, offline_counter int, amount bigint, terminal_serial bigint, date text, time text, tac text)`);
      // The CSV is made before the clock starts: COPY is timed, not our JSON parsing.
      const chunks: Buffer[] = [];
      for await (const chunk of csvOf(file)) chunks.push(chunk);
      const pgB = await postgresCpu?.();
      const cpuB = process.cpuUsage();
      const tB = process.hrtime.bigint();
      await copyIn(bareClient, `copy bench_bare_ride from stdin with (format csv)`, chunks);
      bareSeconds = seconds(tB);
      bareCpu = processCpuMs(cpuB);
      barePg = postgresCpu ? (await postgresCpu()) - pgB! : NaN;
    } finally {
      bareClient.release();
    }

    const n = expected.records;
    const ratio = oursSeconds / bareSeconds;
    const rows = [
      ['phase', 'seconds', 'records/s', 'cpu µs/record: node', 'postgres', 'statements/record', 'transaction ids/record'],
      ['ours (uploadOfflineBatch)', fmt(oursSeconds, 2), int(Math.round(n / oursSeconds)), fmt((oursCpu * 1000) / n, 1), fmt((oursPg * 1000) / n, 1), fmt((counts.statements - counts0.statements) / n, 3), fmt(xids / n, 3)],
      ['bare (COPY FROM STDIN)', fmt(bareSeconds, 2), int(Math.round(n / bareSeconds)), fmt((bareCpu * 1000) / n, 1), fmt((barePg * 1000) / n, 1), '-', '-'],
    ];
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
    console.log(`ratio ours/bare: ${fmt(ratio, 1)}× the time of the bare COPY; ${int(retries)} retried uploads, ${int(errors)} failed${firstError ? ` (first error: ${firstError})` : ''}`);

    // ——— checks: every record's outcome, the totals, the ledger ———
    const problems: string[] = [];
    const expect = (what: string, got: unknown, want: unknown) => {
      if (String(got) !== String(want)) problems.push(`${what}: got ${got}, expected ${want}`);
    };
    const check = orm.em.fork();
    const outcomes = Object.fromEntries(
      (await check.execute<{ outcome: string; n: string; amount: string }[]>(`select outcome, count(*) as n, sum(amount) as amount from offline_transaction group by outcome`)).map((r) => [r.outcome, r]),
    );
    const nOf = (o: string) => Number(outcomes[o]?.n ?? 0);
    const [batches] = await check.execute<{ n: string }[]>(`select count(*) as n from offline_batch where answer is not null`);
    expect('batches answered', batches!.n, expected.batches);
    expect('records answered', Object.values(outcomes).reduce((s, r) => s + Number(r.n), 0), expected.records);
    expect('ACCEPTED + GAP', nOf('ACCEPTED') + nOf('GAP'), expected.accepted);
    expect('ACCEPTED + GAP amount', BigInt(outcomes.ACCEPTED?.amount ?? 0) + BigInt(outcomes.GAP?.amount ?? 0), expected.acceptedAmount);
    expect('DUPLICATE', nOf('DUPLICATE'), expected.duplicates);
    expect('BAD_TAC', nOf('BAD_TAC'), expected.badTac);
    expect('REFUSED_INSUFFICIENT_SHADOW', nOf('REFUSED_INSUFFICIENT_SHADOW'), expected.refused);
    expect('UNKNOWN_CARD_ISSUER', nOf('UNKNOWN_CARD_ISSUER'), 0);
    const [ledger] = await check.execute<{ entries: string; payables: string; purses_spent: string; items: string; item_sum: string; interchange_items: string }[]>(
      `select (select count(*) from journal_entry where entry_key like 'offline-purchase:%') as entries,
              (select coalesce(sum(balance), 0) from ledger_account where code in (?, ?)) as payables,
              (select sum(p.balance_after) - sum(a.balance) from ledger_account a join posting p on p.account_id = a.id and p.entry_id = '00000000-0000-4000-8000-00000000b0b0' where a.owner_kind = 'CARD_PURSE') as purses_spent,
              (select count(*) from clearing_item where kind = 'TRANSIT') as items,
              (select coalesce(sum(amount), 0) from clearing_item where kind = 'TRANSIT') as item_sum,
              (select count(*) from clearing_item where kind = 'TRANSIT' and card_company_id = ?) as interchange_items`,
      [PAYABLE_ACCOUNT_CODE.CARD_COMPANY!(home.cardCompany.id, CURRENCY), PAYABLE_ACCOUNT_CODE.MERCHANT!(bus.id, CURRENCY), visiting.cardCompany.id],
    );
    expect('journal entries of offline purchases', ledger!.entries, expected.accepted);
    expect('transit revenue + bus payable', ledger!.payables, expected.acceptedAmount);
    expect('purses spent', ledger!.purses_spent, expected.acceptedAmount);
    expect('clearing items', ledger!.items, expected.accepted);
    expect('clearing item sum', ledger!.item_sum, expected.acceptedAmount);
    if (Number(ledger!.interchange_items) === 0) problems.push('no clearing item of a visiting card');
    for (const p of await checkLedger(check)) problems.push(`${p.rule} ${p.subject}: ${p.detail}`);

    console.log(
      JSON.stringify({
        bench: 'uploads',
        records: n,
        batches: expected.batches,
        terminals: opts.terminals,
        clients: opts.clients,
        node: process.version,
        postgres: env.postgres,
        cpus: os.availableParallelism(),
        loadAverage: os.loadavg(),
        ours: { seconds: oursSeconds, recordsPerSec: n / oursSeconds, nodeCpuUsPerRecord: (oursCpu * 1000) / n, postgresCpuUsPerRecord: (oursPg * 1000) / n, statementsPerRecord: (counts.statements - counts0.statements) / n, transactionIdsPerRecord: xids / n, retries, errors },
        bare: { seconds: bareSeconds, recordsPerSec: n / bareSeconds, nodeCpuUsPerRecord: (bareCpu * 1000) / n, postgresCpuUsPerRecord: (barePg * 1000) / n },
        ratio,
        tacCpuUsPerTac: tac.cpuUsPerTac,
        outcomes: Object.fromEntries(Object.entries(outcomes).map(([k, v]) => [k, Number(v.n)])),
      }),
    );
    if (problems.length) {
      console.error(`uploads check: ${problems.length} problem(s)`);
      for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
      return false;
    }
    console.log(`uploads check: ok (every batch answered; outcomes per record as generated; entries, payables, purses and clearing items = the accepted rides; ledger invariants)`);
    return errors === 0;
  });
}

await main();
