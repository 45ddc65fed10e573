/**
 * Offline transit uploads (issue 8, part 1; DESIGN.md §7 "Offline transit"). A certified terminal
 * (a reader owned by a card company or a merchant: a bus validator, a metro gate) sends a signed
 * batch of purchases its cards made while it was offline. The batch passes a column of named checks
 * (STYLE.md §1) and is refused whole if one fails; then each record gets its own outcome, and the
 * accepted ones are posted card purse → the transit payable, all in one transaction with the batch.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ALG_3DES, ALG_SM4 } from '../cardcrypto/algorithm.js';
import { purchaseTac, verifyMac } from '../cardcrypto/epurse.js';
import type { CardEntryKind } from '../cards/card-history.service.js';
import { LedgerError, LedgerErrorCode } from '../ledger/ledger.errors.js';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { type KeyStore, UnknownCardKeyError } from '../readers/key-store.js';
import type { ReaderRow } from '../readers/readers.service.js';
import { isRegisteredCityCertificate, verifyCityChain } from '../readers/session/checks/chains.js';
import { terminalIdOf } from '../readers/session/terminal.js';
import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { recordClearingItem } from './clearing-items.js';
import { verifyOfflineBatchSignature } from './offline-batch-signature.js';
import { MalformedBatchError, type OfflineBody, type OfflineRecord, parseOfflineBody } from './offline-records.js';
import { cardPurseAccount, merchantPayableAccount, transitRevenueAccount } from '../ledger/accounts.js';

export type OfflineOutcome = 'ACCEPTED' | 'DUPLICATE' | 'GAP' | 'BAD_TAC' | 'UNKNOWN_CARD_ISSUER' | 'REFUSED_INSUFFICIENT_SHADOW';

/** Why a whole batch was refused: the step that refused it. */
export type BatchRefusal = 'NOT_A_TERMINAL' | 'UNKNOWN_CA' | 'CERTIFICATE_REVOKED' | 'CERTIFICATE_EXPIRED' | 'CERTIFICATE_NOT_THIS_TERMINAL' | 'TERMINAL_NOT_ACTIVE' | 'BAD_SIGNATURE' | 'MALFORMED_BATCH' | 'TERMINAL_NUMBER_MISMATCH';

/** A batch refused whole: OFFLINE_BATCH_REFUSED on its body, or OFFLINE_BATCH_ID_REUSED on its batch id. */
export class OfflineBatchError extends DomainError<BatchRefusal | 'BATCH_ID_REUSED'> {
  constructor(
    readonly refusal: BatchRefusal | 'BATCH_ID_REUSED',
    message: string,
  ) {
    super(
      refusal,
      `${refusal}: ${message}`,
      refusal === 'BATCH_ID_REUSED' ? UserErrorCode.OFFLINE_BATCH_ID_REUSED : UserErrorCode.OFFLINE_BATCH_REFUSED,
      refusal === 'BATCH_ID_REUSED' ? 'batchId' : 'body',
    );
  }
}

export interface RecordAnswer {
  /** The record's place in the uploaded body, from 0. */
  index: number;
  asn: string;
  offlineCounter: number;
  amount: number;
  outcome: OfflineOutcome;
  /** ACCEPTED and GAP were posted; the others were recorded, not posted. */
  accepted: boolean;
  reason: string;
  journalEntryId: string | null;
}

export interface BatchAnswer {
  id: string;
  readerId: string;
  batchId: string;
  receivedAt: string;
  records: RecordAnswer[];
}

export interface UploadInput {
  terminal: ReaderRow;
  /** The terminal's global id: what it signed. */
  terminalGlobalId: string;
  batchId: string;
  body: string;
  signature: string;
  certificate: string;
}

export interface UploadDeps {
  keyStore: KeyStore;
  now?: () => Date;
}

// ---- the batch checks, in order; each refuses the whole batch with its own name ----

function checkIsTerminal(terminal: ReaderRow): void {
  if (terminal.owner_kind !== 'CARD_COMPANY' && terminal.owner_kind !== 'MERCHANT') throw new OfflineBatchError('NOT_A_TERMINAL', 'only readers of a card company or a merchant upload offline batches');
}

/**
 * The city certificate chains to the terminal's city working CA (and the root), is valid and not
 * revoked (the card sessions' check, readers/session/checks/chains.ts), and is the one registered.
 */
async function checkCertificate(em: EntityManager, terminal: ReaderRow, certificatePem: string, now: Date): Promise<string> {
  const check = await verifyCityChain(em, terminal, certificatePem, now);
  if (!check.ok) throw new OfflineBatchError(check.refusal, `the terminal certificate was refused: ${check.reason}`);
  if (!isRegisteredCityCertificate(terminal, check)) throw new OfflineBatchError('CERTIFICATE_NOT_THIS_TERMINAL', 'the certificate is not the one registered for this terminal');
  return check.publicKeyPem;
}

function checkActive(terminal: ReaderRow): void {
  if (terminal.status !== 'ACTIVE') throw new OfflineBatchError('TERMINAL_NOT_ACTIVE', `the terminal is ${terminal.status}`);
}

function verifySignature(publicKeyPem: string, input: UploadInput): void {
  if (!verifyOfflineBatchSignature(publicKeyPem, input.terminalGlobalId, input.batchId, input.body, input.signature)) throw new OfflineBatchError('BAD_SIGNATURE', 'the terminal signature does not verify');
}

function parseBody(body: string): OfflineBody {
  try {
    return parseOfflineBody(body);
  } catch (err) {
    if (err instanceof MalformedBatchError) throw new OfflineBatchError('MALFORMED_BATCH', err.message);
    throw err;
  }
}

/**
 * The terminal number the batch names is the uploading terminal's registered one. Each TAC is
 * verified with the registered number anyway; this refuses, whole and by name, a batch a terminal
 * made with another PSAM's number (another city's, or one not provisioned to it), instead of
 * answering BAD_TAC for every record.
 */
function checkTerminalNumber(terminal: ReaderRow, named: string | undefined): void {
  if (named !== undefined && named !== terminal.terminal_number) throw new OfflineBatchError('TERMINAL_NUMBER_MISMATCH', `the batch names terminal number ${named}; this terminal is registered with ${terminal.terminal_number}`);
}

/**
 * Takes a terminal's batch once. The same batch again (terminal + batch id, same body) answers
 * what was stored and posts nothing; a concurrent second upload waits on the unique index and
 * then reads the first one's answer. A different body under a used batch id is refused.
 */
export async function uploadOfflineBatch(em: EntityManager, deps: UploadDeps, input: UploadInput): Promise<{ answer: BatchAnswer; replayed: boolean }> {
  const now = deps.now?.() ?? new Date();
  if (!/^[A-Za-z0-9._:-]{1,100}$/.test(input.batchId)) throw new OfflineBatchError('MALFORMED_BATCH', 'a batch id is 1 to 100 of A–Z a–z 0–9 . _ : -');
  checkIsTerminal(input.terminal);
  const publicKeyPem = await checkCertificate(em, input.terminal, input.certificate, now);
  checkActive(input.terminal);
  verifySignature(publicKeyPem, input);
  const { terminalNumber, records } = parseBody(input.body);
  checkTerminalNumber(input.terminal, terminalNumber);
  const bodyHash = createHash('sha256').update(input.body, 'utf8').digest('hex');

  return em.transactional(async (tx) => {
    const id = randomUUID();
    const [claimed] = await tx.execute<{ id: string; received_at: Date }[]>(
      `insert into offline_batch (id, reader_id, batch_id, body_sha256, received_at) values (?, ?, ?, ?, ?)
       on conflict (reader_id, batch_id) do nothing returning id, received_at`,
      [id, input.terminal.id, input.batchId, bodyHash, now],
    );
    if (!claimed) {
      const [stored] = await tx.execute<{ body_sha256: string; answer: BatchAnswer }[]>(`select body_sha256, answer from offline_batch where reader_id = ? and batch_id = ?`, [input.terminal.id, input.batchId]);
      if (stored!.body_sha256 !== bodyHash) throw new OfflineBatchError('BATCH_ID_REUSED', `batch ${input.batchId} was uploaded before with another body`);
      return { answer: stored!.answer, replayed: true };
    }
    // A card's records in counter order, so a batch that lists them out of order shows no false gap.
    const order = records.map((record, index) => ({ record, index })).sort((a, b) => (a.record.asn < b.record.asn ? -1 : a.record.asn > b.record.asn ? 1 : a.record.offlineCounter - b.record.offlineCounter || a.index - b.index));
    const answers: RecordAnswer[] = new Array(records.length);
    for (const { record, index } of order) {
      const result = await takeRecord(tx, deps, input.terminal, id, record);
      await tx.execute(
        `insert into offline_transaction (id, batch_row_id, record_no, asn, card_city, offline_counter, amount, terminal_serial, date, time, tac, outcome, reason, journal_entry_id)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [randomUUID(), id, index, record.asn, record.cardCity, record.offlineCounter, record.amount, record.terminalSerial, record.date, record.time, record.tac, result.outcome, result.reason, result.journalEntryId],
      );
      answers[index] = { index, asn: record.asn, offlineCounter: record.offlineCounter, amount: record.amount, accepted: result.outcome === 'ACCEPTED' || result.outcome === 'GAP', ...result };
    }
    const answer: BatchAnswer = { id, readerId: input.terminal.id, batchId: input.batchId, receivedAt: new Date(claimed.received_at).toISOString(), records: answers };
    await tx.execute(`update offline_batch set answer = ? where id = ?`, [JSON.stringify(answer), id]);
    return { answer, replayed: false };
  });
}

type RecordResult = { outcome: OfflineOutcome; reason: string; journalEntryId: string | null };
const outcome = (o: OfflineOutcome, reason: string, journalEntryId: string | null = null): RecordResult => ({ outcome: o, reason, journalEntryId });

// ---- the record checks, in order ----

interface Issuer {
  cardCompanyId: string;
  currency: string;
}

/** The card company whose keys the card carries, by the city code on the card. */
async function findIssuer(em: EntityManager, cardCity: string): Promise<Issuer | null> {
  const [row] = await em.execute<{ card_company_id: string; currency: string }[]>(
    `select cc.id as card_company_id, c.currency from city c join card_company cc on cc.city_id = c.id where c.card_city_code = ?`,
    [cardCity],
  );
  return row ? { cardCompanyId: row.card_company_id, currency: row.currency.trim() } : null;
}

/** The TAC under the card's DTK proves this amount, terminal, serial, date and time (CARD-PROTOCOL.md §3). */
async function tacProblem(deps: UploadDeps, terminal: ReaderRow, issuer: Issuer, r: OfflineRecord): Promise<string | null> {
  let dtk: { key: Buffer; algorithm: '3DES' | 'SM4' };
  try {
    dtk = await deps.keyStore.cardKey({ cardCompanyId: issuer.cardCompanyId, purpose: 'TAC', keyVersion: r.keyVersion, asn: Buffer.from(r.asn, 'hex') });
  } catch (err) {
    if (err instanceof UnknownCardKeyError) return `the card company has no TAC key version ${r.keyVersion}`;
    throw err;
  }
  const expected = purchaseTac({
    algorithm: dtk.algorithm === 'SM4' ? ALG_SM4 : ALG_3DES,
    tacKey: dtk.key,
    amount: r.amount,
    terminalId: terminalIdOf(terminal),
    terminalSerial: r.terminalSerial,
    date: r.date,
    time: r.time,
  });
  return verifyMac(expected, Buffer.from(r.tac, 'hex')) ? null : 'the TAC does not prove this purchase with the card’s key';
}

/**
 * The highest offline counter we know the card has used: accepted offline records, and online
 * purchases (card_counter holds the counter after the card's last online purchase). -1 for a card
 * we know nothing of (cards start at 0).
 */
async function highestKnownCounter(em: EntityManager, asn: string): Promise<number> {
  const [row] = await em.execute<{ highest: number | null }[]>(
    `select greatest((select max(offline_counter) from offline_transaction where asn = ? and outcome in ('ACCEPTED','GAP')),
                     (select offline_counter - 1 from card_counter where asn = ?)) as highest`,
    [asn, asn],
  );
  return row?.highest ?? -1;
}

async function isAccepted(em: EntityManager, asn: string, counter: number): Promise<boolean> {
  const [row] = await em.execute(`select 1 from offline_transaction where asn = ? and offline_counter = ? and outcome in ('ACCEPTED','GAP')`, [asn, counter]);
  return !!row;
}

async function takeRecord(tx: EntityManager, deps: UploadDeps, terminal: ReaderRow, batchRowId: string, r: OfflineRecord): Promise<RecordResult> {
  const issuer = await findIssuer(tx, r.cardCity);
  if (!issuer) return outcome('UNKNOWN_CARD_ISSUER', `no card company for city code ${r.cardCity}`);
  const badTac = await tacProblem(deps, terminal, issuer, r);
  if (badTac) return outcome('BAD_TAC', badTac);
  if (await isAccepted(tx, r.asn, r.offlineCounter)) return outcome('DUPLICATE', `card ${r.asn} counter ${r.offlineCounter} was accepted before`);
  const highest = await highestKnownCounter(tx, r.asn);
  const gap = r.offlineCounter > highest + 1 ? `counters ${highest + 1}–${r.offlineCounter - 1} of card ${r.asn} have not been seen` : null;
  const posted = await postTransit(tx, terminal, batchRowId, issuer, r);
  if ('refused' in posted) return posted.refused;
  // The card's counter moved on offline: an online session showing an older one is a copy of the card.
  await tx.execute(
    `insert into card_counter (asn, offline_counter) values (?, ?)
     on conflict (asn) do update set offline_counter = greatest(card_counter.offline_counter, excluded.offline_counter), updated_at = now()`,
    [r.asn, r.offlineCounter + 1],
  );
  return gap ? outcome('GAP', `accepted; ${gap}`, posted.entryId) : outcome('ACCEPTED', 'accepted', posted.entryId);
}

/**
 * Card purse → the transit payable (the merchant's, or the card company's transit revenue), in a
 * savepoint: a purse the ledger will not take below zero refuses this record and leaves the rest.
 * The entry key is the card's purchase (ASN + counter), so two batches bringing it at once post it
 * once: the second sees the first's entry and answers DUPLICATE.
 */
async function postTransit(tx: EntityManager, terminal: ReaderRow, batchRowId: string, issuer: Issuer, r: OfflineRecord): Promise<{ entryId: string } | { refused: RecordResult }> {
  try {
    return await tx.transactional(
      async (sp) => {
        const purse = await cardPurseAccount(sp, r.asn, issuer.currency);
        const payable = terminal.owner_kind === 'MERCHANT' ? await merchantPayableAccount(sp, terminal.owner_id, issuer.currency) : await transitRevenueAccount(sp, terminal.owner_id, issuer.currency);
        const amount = BigInt(r.amount);
        const entry = await post(sp, {
          key: `offline-purchase:${r.asn}:${r.offlineCounter}`,
          description: `offline transit purchase by card ${r.asn} on terminal ${terminal.serial}`,
          lines: [debit(purse.id, amount), credit(payable.id, amount)],
          metadata: { kind: 'TRANSIT' satisfies CardEntryKind, offlineBatch: batchRowId, terminal: terminal.serial, asn: r.asn, offlineCounter: r.offlineCounter, terminalSerial: r.terminalSerial, date: r.date, time: r.time, tac: r.tac },
        });
        if (entry.replayed) throw new LedgerError(LedgerErrorCode.ENTRY_KEY_REUSED, 'posted by another batch');
        // The card's own date and time: a record of yesterday uploaded today belongs to yesterday's window while it is open.
        await recordClearingItem(sp, {
          kind: 'TRANSIT',
          participant: { kind: terminal.owner_kind === 'MERCHANT' ? 'MERCHANT' : 'CARD_COMPANY', id: terminal.owner_id },
          cardCompanyId: issuer.cardCompanyId,
          amount,
          currency: issuer.currency,
          entryKey: entry.key,
          reference: `${r.asn}:${r.offlineCounter}`,
          occurredLocal: `${r.date.slice(0, 4)}-${r.date.slice(4, 6)}-${r.date.slice(6, 8)} ${r.time.slice(0, 2)}:${r.time.slice(2, 4)}:${r.time.slice(4, 6)}`,
        });
        return { entryId: entry.id };
      },
      { propagation: 'nested' },
    );
  } catch (err) {
    if (err instanceof LedgerError && err.code === LedgerErrorCode.INSUFFICIENT_FUNDS) {
      return { refused: outcome('REFUSED_INSUFFICIENT_SHADOW', `the ledger's purse of card ${r.asn} does not cover ${r.amount}; recorded, not posted`) };
    }
    if (err instanceof LedgerError && err.code === LedgerErrorCode.ENTRY_KEY_REUSED) {
      return { refused: outcome('DUPLICATE', `card ${r.asn} counter ${r.offlineCounter} was accepted by another batch`) };
    }
    throw err;
  }
}
