/**
 * The records of an offline batch, taken set-based (issue 23): the same outcome per record, the
 * same ledger entries and clearing items as taking them one by one (issue 8), in a fixed number of
 * statements per batch instead of about ten per record.
 *
 * 1. What the database knows, read at once: the issuers of the cards' city codes, one master key
 *    per (issuer, key version) for the TACs, and — under the lock of the purses (and payable) the
 *    accepted records would move — the cards' accepted counters, highest counters and balances.
 * 2. The records decided in memory, a card's in counter order, exactly as one by one would decide
 *    them: UNKNOWN_CARD_ISSUER, BAD_TAC, DUPLICATE, then ACCEPTED or GAP if the purse covers it at
 *    its turn, else REFUSED_INSUFFICIENT_SHADOW.
 * 3. The accepted ones booked in bulk: postMany() (ledger), clearing items, card counters and
 *    every record's row, one statement each.
 *
 * The purses are locked before step 1 reads the counters, so a second batch bringing the same
 * purchase at once waits, then sees the first one's records and answers DUPLICATE.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { ALG_3DES, ALG_SM4 } from '../cardcrypto/algorithm.js';
import { purchaseTacs, verifyMac } from '../cardcrypto/epurse.js';
import type { CardEntryKind } from '../cards/card-history.service.js';
import { cardPurseCode, merchantPayableAccount, PAYABLE_ACCOUNT_CODE, transitRevenueAccount } from '../ledger/accounts.js';
import { executeBound } from '../db/bound-statement.js';
import { credit, debit, lockAccounts, postMany } from '../ledger/ledger.service.js';
import { type KeyStore, UnknownCardKeyError } from '../readers/key-store.js';
import type { ReaderRow } from '../readers/readers.service.js';
import { terminalIdOf } from '../readers/session/terminal.js';
import type { OfflineRecord } from './offline-records.js';
import { windowForNewItem } from './windows.js';

export type OfflineOutcome = 'ACCEPTED' | 'DUPLICATE' | 'GAP' | 'BAD_TAC' | 'UNKNOWN_CARD_ISSUER' | 'REFUSED_INSUFFICIENT_SHADOW';
export type RecordResult = { outcome: OfflineOutcome; reason: string; journalEntryId: string | null };
/** A card purse the batch moved: its balance before the batch and after it. */
export type BatchPurseMove = { asn: string; currency: string; before: bigint; after: bigint };
const outcome = (o: OfflineOutcome, reason: string, journalEntryId: string | null = null): RecordResult => ({ outcome: o, reason, journalEntryId });

export interface Issuer {
  cardCompanyId: string;
  currency: string;
}

/** The card company whose keys the cards carry, by the city code on the card: one read for the batch. */
async function issuersOf(em: EntityManager, cardCities: string[]): Promise<Map<string, Issuer>> {
  const rows = await executeBound<{ card_city_code: string; card_company_id: string; currency: string }>(
    em,
    `select c.card_city_code, cc.id as card_company_id, c.currency from city c join card_company cc on cc.city_id = c.id where c.card_city_code = any($1::text[])`,
    [cardCities],
  );
  const issuers = new Map<string, Issuer>();
  for (const r of rows) if (!issuers.has(r.card_city_code)) issuers.set(r.card_city_code, { cardCompanyId: r.card_company_id, currency: r.currency.trim() });
  return issuers;
}

/**
 * Why each record's TAC fails, or null when it proves the purchase (CARD-PROTOCOL.md §3): one
 * master key read per (issuer, key version), each card's DTK derived once per batch (one cipher for
 * all the cards of the software key store), and a card's TACs from one cipher (purchaseTacs), not
 * three cipher objects per record (issue 23).
 */
export async function tacProblems(keyStore: KeyStore, terminal: ReaderRow, records: { r: OfflineRecord; issuer: Issuer }[]): Promise<(string | null)[]> {
  // (issuer, key version) → card → its records' places in `records`
  const groups = new Map<string, Map<string, number[]>>();
  records.forEach(({ r, issuer }, i) => {
    const key = `${issuer.cardCompanyId}:${r.keyVersion}`;
    let cards = groups.get(key);
    if (!cards) groups.set(key, (cards = new Map()));
    const ofCard = cards.get(r.asn);
    if (ofCard) ofCard.push(i);
    else cards.set(r.asn, [i]);
  });
  const terminalId = terminalIdOf(terminal);
  const problems = new Array<string | null>(records.length);
  for (const cards of groups.values()) {
    const first = records[cards.values().next().value![0]!]!;
    const asns = [...cards.keys()];
    let keys: { key: Buffer; algorithm: '3DES' | 'SM4' }[];
    try {
      keys = await keyStore.cardKeys({ cardCompanyId: first.issuer.cardCompanyId, purpose: 'TAC', keyVersion: first.r.keyVersion, asns: asns.map((asn) => Buffer.from(asn, 'hex')) });
    } catch (err) {
      if (!(err instanceof UnknownCardKeyError)) throw err;
      for (const members of cards.values()) for (const i of members) problems[i] = `the card company has no TAC key version ${first.r.keyVersion}`;
      continue;
    }
    asns.forEach((asn, k) => {
      const dtk = keys[k]!;
      const members = cards.get(asn)!;
      const expected = purchaseTacs(dtk.algorithm === 'SM4' ? ALG_SM4 : ALG_3DES, dtk.key, members.map((i) => ({ amount: records[i]!.r.amount, terminalId, terminalSerial: records[i]!.r.terminalSerial, date: records[i]!.r.date, time: records[i]!.r.time })));
      dtk.key.fill(0);
      members.forEach((i, m) => (problems[i] = verifyMac(expected[m]!, Buffer.from(records[i]!.r.tac, 'hex')) ? null : 'the TAC does not prove this purchase with the card’s key'));
    });
  }
  return problems;
}

interface CardFacts {
  /** The highest offline counter known: accepted offline records, and online purchases (card_counter); -1 for none. */
  highest: number;
  /** Of the batch's counters for this card, those accepted before. */
  accepted: Set<number>;
}

/** Per card of the batch: its highest known counter and which of the batch's counters were accepted before. */
async function cardFacts(em: EntityManager, counters: Map<string, number[]>): Promise<Map<string, CardFacts>> {
  if (counters.size === 0) return new Map();
  const rows = await executeBound<{ asn: string; highest: number | null; accepted: number[] }>(
    em,
    `select r.asn,
            greatest((select max(offline_counter) from offline_transaction t where t.asn = r.asn and t.outcome in ('ACCEPTED','GAP')),
                     (select offline_counter - 1 from card_counter k where k.asn = r.asn)) as highest,
            array(select offline_counter from offline_transaction t where t.asn = r.asn and t.offline_counter = any(r.counters) and t.outcome in ('ACCEPTED','GAP')) as accepted
       from json_to_recordset($1::json) as r(asn text, counters int[])`,
    [JSON.stringify([...counters].map(([asn, list]) => ({ asn, counters: list })))],
  );
  return new Map(rows.map((r) => [r.asn, { highest: r.highest ?? -1, accepted: new Set(r.accepted) }]));
}

interface Accepted {
  index: number;
  r: OfflineRecord;
  issuer: Issuer;
  /** The counters the card skipped, for a GAP. */
  gap: string | null;
}

/**
 * Decides and books every record of a batch; returns each record's result by its index in the
 * body. `order` is the records' indexes, a card's in counter order (the order one by one took them).
 */
export async function bookOfflineRecords(tx: EntityManager, deps: { keyStore: KeyStore }, terminal: ReaderRow, batchRowId: string, records: OfflineRecord[], order: number[]): Promise<{ results: RecordResult[]; purseMoves: BatchPurseMove[] }> {
  const results = new Array<RecordResult>(records.length);
  const issuers = await issuersOf(tx, [...new Set(records.map((r) => r.cardCity))]);
  const known: { index: number; r: OfflineRecord; issuer: Issuer }[] = [];
  for (const index of order) {
    const r = records[index]!;
    const issuer = issuers.get(r.cardCity);
    if (!issuer) results[index] = outcome('UNKNOWN_CARD_ISSUER', `no card company for city code ${r.cardCity}`);
    else known.push({ index, r, issuer });
  }
  const problems = await tacProblems(deps.keyStore, terminal, known);
  const proven = known.filter((k, i) => {
    if (problems[i]) results[k.index] = outcome('BAD_TAC', problems[i]!);
    return !problems[i];
  });

  // The payables these records would credit are opened first, holding no purse: opening one waits
  // for a payment that is opening it too, and that payment then debits a purse (post() locks by
  // id). Opened later, with the purses locked here, the two transactions waited on each other.
  // Then the purses and the payables are locked together in id order, before the counters are read.
  const participantKind = terminal.owner_kind === 'MERCHANT' ? 'MERCHANT' : 'CARD_COMPANY';
  const currencies = [...new Set(proven.map((p) => p.issuer.currency))];
  const payables = new Map<string, string>();
  for (const currency of currencies) {
    const payable = terminal.owner_kind === 'MERCHANT' ? await merchantPayableAccount(tx, terminal.owner_id, currency) : await transitRevenueAccount(tx, terminal.owner_id, currency);
    payables.set(currency, payable.id);
  }
  const accounts = await lockAccounts(tx, [
    ...new Set(proven.map((p) => cardPurseCode(p.r.asn, p.issuer.currency))),
    ...currencies.map((c) => PAYABLE_ACCOUNT_CODE[participantKind]!(terminal.owner_id, c)),
  ]);
  const counters = new Map<string, number[]>();
  for (const { r } of proven) counters.set(r.asn, [...(counters.get(r.asn) ?? []), r.offlineCounter]);
  const facts = await cardFacts(tx, counters);

  const balancesBefore = new Map([...accounts].map(([code, a]) => [code, a.balance]));
  const balances = new Map(balancesBefore);
  const accepted: Accepted[] = [];
  for (const { index, r, issuer } of proven) {
    const card = facts.get(r.asn)!;
    if (card.accepted.has(r.offlineCounter)) {
      results[index] = outcome('DUPLICATE', `card ${r.asn} counter ${r.offlineCounter} was accepted before`);
      continue;
    }
    const gap = r.offlineCounter > card.highest + 1 ? `counters ${card.highest + 1}–${r.offlineCounter - 1} of card ${r.asn} have not been seen` : null;
    // A card the ledger has no purse for holds nothing: a purse opened at its turn would refuse it.
    const purse = cardPurseCode(r.asn, issuer.currency);
    const balance = balances.get(purse) ?? 0n;
    if (balance < BigInt(r.amount)) {
      results[index] = outcome('REFUSED_INSUFFICIENT_SHADOW', `the ledger's purse of card ${r.asn} does not cover ${r.amount}; recorded, not posted`);
      continue;
    }
    balances.set(purse, balance - BigInt(r.amount));
    card.accepted.add(r.offlineCounter);
    card.highest = Math.max(card.highest, r.offlineCounter);
    accepted.push({ index, r, issuer, gap });
  }
  if (accepted.length) {
    const entryIds = await bookAccepted(tx, terminal, batchRowId, accepted, accounts, payables);
    accepted.forEach(({ index, gap }, i) => (results[index] = gap ? outcome('GAP', `accepted; ${gap}`, entryIds[i]!) : outcome('ACCEPTED', 'accepted', entryIds[i]!)));
  }
  // Each card purse once, from before the batch to after it (for the low-balance rule, not per record).
  const purseMoves = new Map<string, BatchPurseMove>();
  for (const { r, issuer } of accepted) {
    const code = cardPurseCode(r.asn, issuer.currency);
    if (!purseMoves.has(code)) purseMoves.set(code, { asn: r.asn, currency: issuer.currency, before: balancesBefore.get(code)!, after: balances.get(code)! });
  }
  return { results, purseMoves: [...purseMoves.values()] };
}

/** The accepted records' entries (card purse → the transit payable), clearing items and card counters, in bulk. */
async function bookAccepted(tx: EntityManager, terminal: ReaderRow, batchRowId: string, accepted: Accepted[], locked: Map<string, { id: string }>, payableIds: Map<string, string>): Promise<string[]> {
  const posted = await postMany(
    tx,
    accepted.map(({ r, issuer }) => ({
      key: `offline-purchase:${r.asn}:${r.offlineCounter}`,
      description: `offline transit purchase by card ${r.asn} on terminal ${terminal.serial}`,
      lines: [debit(locked.get(cardPurseCode(r.asn, issuer.currency))!.id, BigInt(r.amount)), credit(payableIds.get(issuer.currency)!, BigInt(r.amount))],
      metadata: { kind: 'TRANSIT' satisfies CardEntryKind, offlineBatch: batchRowId, terminal: terminal.serial, asn: r.asn, offlineCounter: r.offlineCounter, terminalSerial: r.terminalSerial, date: r.date, time: r.time, tac: r.tac },
    })),
  );
  await recordTransitItems(tx, terminal, accepted);
  // The card's counter moved on offline: an online session showing an older one is a copy of the card.
  const next = new Map<string, number>();
  for (const { r } of accepted) next.set(r.asn, Math.max(next.get(r.asn) ?? 0, r.offlineCounter + 1));
  await executeBound(
    tx,
    `insert into card_counter (asn, offline_counter)
     select asn, offline_counter from json_to_recordset($1::json) as c(asn text, offline_counter int) order by asn
     on conflict (asn) do update set offline_counter = greatest(card_counter.offline_counter, excluded.offline_counter), updated_at = now()`,
    [JSON.stringify([...next].map(([asn, offline_counter]) => ({ asn, offline_counter })))],
  );
  return posted.map((p) => p.id);
}

/**
 * The clearing items of the accepted records, as recordClearingItem writes one (clearing-items.ts):
 * the terminal owner's city, the business day of the card's local date and time there, the window
 * windowForNewItem gives that day (asked once per day, not per record). Idempotent by entry key.
 */
async function recordTransitItems(tx: EntityManager, terminal: ReaderRow, accepted: Accepted[]): Promise<void> {
  const participantCity = terminal.owner_kind === 'MERCHANT' ? 'select city_id from merchant where id = $2' : 'select city_id from card_company where id = $2';
  const local = (r: OfflineRecord) => `${r.date.slice(0, 4)}-${r.date.slice(4, 6)}-${r.date.slice(6, 8)} ${r.time.slice(0, 2)}:${r.time.slice(2, 4)}:${r.time.slice(4, 6)}`;
  const locals = [...new Set(accepted.map((a) => local(a.r)))];
  const days = await executeBound<{ city_id: string; local: string; business_day: string }>(
    tx,
    `select c.id as city_id, l.local, ((l.local::timestamp at time zone c.time_zone) at time zone c.time_zone)::date::text as business_day
       from city c cross join unnest($1::text[]) as l(local) where c.id = (${participantCity})`,
    [locals, terminal.owner_id],
  );
  if (days.length === 0) throw new Error(`no city for ${terminal.owner_kind.toLowerCase()} ${terminal.owner_id}: clearing items not recorded`);
  const cityId = days[0]!.city_id;
  const dayOf = new Map(days.map((d) => [d.local, d.business_day]));
  const windows = new Map<string, string>();
  for (const day of [...new Set(dayOf.values())].sort()) windows.set(day, await windowForNewItem(tx, cityId, day));
  await executeBound(
    tx,
    `insert into clearing_item (city_id, business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference, gateway_reference)
     select $1, i.business_day, i.window_id, 'TRANSIT', $2, $3, i.card_company_id, i.amount, i.currency, i.local::timestamp at time zone c.time_zone, i.entry_key, i.reference, null
       from json_to_recordset($4::json) as i(business_day date, window_id uuid, card_company_id uuid, amount bigint, currency text, local text, entry_key text, reference text)
       join city c on c.id = $1
      where not exists (select 1 from clearing_item x where x.entry_key = i.entry_key)
     on conflict (entry_key, business_day) do nothing`,
    [
      cityId,
      terminal.owner_kind === 'MERCHANT' ? 'MERCHANT' : 'CARD_COMPANY',
      terminal.owner_id,
      JSON.stringify(
        accepted.map(({ r, issuer }) => {
          const day = dayOf.get(local(r))!;
          return { business_day: day, window_id: windows.get(day), card_company_id: issuer.cardCompanyId, amount: r.amount, currency: issuer.currency, local: local(r), entry_key: `offline-purchase:${r.asn}:${r.offlineCounter}`, reference: `${r.asn}:${r.offlineCounter}` };
        }),
      ),
    ],
  );
}
