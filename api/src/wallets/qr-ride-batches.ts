/**
 * QR ride uploads (issue 25 item 2): a scanner (a certified terminal: a bus validator, a metro gate)
 * sends a signed batch of the QR codes it let through. The batch passes the offline upload's checks
 * (certificate chain, registration, status, the same batch signature: settlement/offline-batch-signature.ts)
 * and is refused whole if one fails; then each ride is verified again as the scanner did
 * (qr-code.ts), and booked once: wallet (and debt within the limit) → the terminal owner's transit
 * payable, with a clearing item like a card fare's.
 */
import { createHash, type KeyObject, randomUUID, X509Certificate } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { merchantPayableAccount, transitRevenueAccount } from '../ledger/accounts.js';
import { hostKeyOfCity } from '../pki/host-key.js';
import type { ReaderRow } from '../readers/readers.service.js';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { checkTerminalBatch, type SignedTerminalBatch } from '../settlement/terminal-batch-checks.js';
import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { blockCredentials, blockWalletCredentials, credentialById, type CredentialRow, retiredSigningCertificates } from './qr-credentials.js';
import { issuerKeyIdOf, parseQrCode, type RetiredIssuerKey, verifyQrCode } from './qr-code.js';
import { postRideFare, walletBalances } from './wallet-ledger.js';
import { qrScannerOf } from './qr-scanners.js';
import { walletById } from './wallet-rows.js';
import { markRideDaysOfQrBatch } from '../analytics/ridership-rollup.js';

export type QrRideOutcome = 'ACCEPTED' | 'DEBT' | 'DUPLICATE' | 'EXPIRED' | 'BLOCKED' | 'FORGED' | 'DEBT_LIMIT_EXCEEDED' | 'FARE_ABOVE_CAP';

export type QrBatchRefusal = 'NOT_A_TERMINAL' | 'UNKNOWN_CA' | 'CERTIFICATE_REVOKED' | 'CERTIFICATE_EXPIRED' | 'CERTIFICATE_NOT_THIS_TERMINAL' | 'TERMINAL_NOT_ACTIVE' | 'BAD_SIGNATURE' | 'MALFORMED_BATCH';

/** A batch refused whole, as an offline card batch is: OFFLINE_BATCH_REFUSED on its body, OFFLINE_BATCH_ID_REUSED on its id. */
export class QrBatchError extends DomainError<QrBatchRefusal | 'BATCH_ID_REUSED' | 'NOT_A_QR_SCANNER'> {
  constructor(
    readonly refusal: QrBatchRefusal | 'BATCH_ID_REUSED' | 'NOT_A_QR_SCANNER',
    message: string,
  ) {
    super(refusal, `${refusal}: ${message}`, ...QrBatchError.answer(refusal));
  }

  private static answer(refusal: QrBatchError['refusal']): [UserErrorCode, string] {
    if (refusal === 'BATCH_ID_REUSED') return [UserErrorCode.OFFLINE_BATCH_ID_REUSED, 'batchId'];
    if (refusal === 'NOT_A_QR_SCANNER') return [UserErrorCode.QR_SCANNER_NOT_REGISTERED, 'terminal'];
    return [UserErrorCode.OFFLINE_BATCH_REFUSED, 'body'];
  }
}

export interface QrRideRecord {
  /** The code exactly as scanned. */
  code: string;
  /** When the scanner let the rider through (its clock), ISO-8601 with offset. */
  scannedAt: Date;
  /** The fare the scanner charged, minor units. */
  amount: number;
}

export interface QrRideAnswer {
  index: number;
  credentialId: string | null;
  counter: number | null;
  amount: number;
  outcome: QrRideOutcome;
  accepted: boolean;
  reason: string;
  journalEntryId: string | null;
}

export interface QrBatchAnswer {
  id: string;
  readerId: string;
  batchId: string;
  receivedAt: string;
  rides: QrRideAnswer[];
}

export const MAX_BATCH_RIDES = 5000;
/** The most one ride may cost: a fare, not a purchase. */
export const MAX_FARE = 100_000;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The body: `{ "kind": "qr-rides", "rides": [{ code, scannedAt, amount }] }`. The kind keeps a card
 * batch (`{ records }`) and a QR batch apart although the terminal signs both the same way.
 */
export function parseQrRideBody(text: string): QrRideRecord[] {
  let body: { kind?: unknown; rides?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    throw new QrBatchError('MALFORMED_BATCH', 'the body is not JSON');
  }
  if (body?.kind !== 'qr-rides' || !Array.isArray(body.rides) || body.rides.length === 0 || body.rides.length > MAX_BATCH_RIDES) throw new QrBatchError('MALFORMED_BATCH', `the body is { "kind": "qr-rides", "rides": [...] } with 1 to ${MAX_BATCH_RIDES} rides`);
  return body.rides.map((r: Record<string, unknown>, i) => {
    const bad = (what: string) => new QrBatchError('MALFORMED_BATCH', `rides[${i}]: ${what}`);
    if (!r || typeof r !== 'object') throw bad('not an object');
    if (typeof r.code !== 'string' || r.code.length < 1 || r.code.length > 1000) throw bad('code is the scanned text, 1 to 1000 characters');
    if (typeof r.scannedAt !== 'string' || !ISO.test(r.scannedAt) || Number.isNaN(Date.parse(r.scannedAt))) throw bad('scannedAt is an ISO-8601 time with offset');
    if (typeof r.amount !== 'number' || !Number.isInteger(r.amount) || r.amount < 1 || r.amount > MAX_FARE) throw bad(`amount is 1 to ${MAX_FARE} minor units`);
    return { code: r.code, scannedAt: new Date(r.scannedAt), amount: r.amount };
  });
}

/** A QR ride batch: its body is `{ "kind": "qr-rides", "rides": [...] }`. */
export type QrUploadInput = SignedTerminalBatch;

/**
 * Takes a scanner's batch once (terminal + batch id): the same batch again answers what was stored
 * and books nothing; a different body under a used id is refused. Each ride is booked at most once
 * whichever batches bring it: its ledger entry key is the presentation (credential, counter, fresh time).
 */
export async function uploadQrRideBatch(em: EntityManager, deps: { kek: Buffer; publicUrl: string; now?: () => Date }, input: QrUploadInput): Promise<{ answer: QrBatchAnswer; replayed: boolean }> {
  const now = deps.now?.() ?? new Date();
  // The checks of an offline card batch, in the same order.
  await checkTerminalBatch(em, input, now, (refusal, message) => new QrBatchError(refusal, message));
  const rides = parseQrRideBody(input.body);
  const bodyHash = createHash('sha256').update(input.body, 'utf8').digest('hex');

  return em.transactional(async (tx) => {
    const id = randomUUID();
    const [claimed] = await tx.execute<{ received_at: Date }[]>(
      `insert into qr_ride_batch (id, reader_id, batch_id, body_sha256, received_at) values (?, ?, ?, ?, ?) on conflict (reader_id, batch_id) do nothing returning received_at`,
      [id, input.terminal.id, input.batchId, bodyHash, now],
    );
    if (!claimed) {
      const [stored] = await tx.execute<{ body_sha256: string; answer: QrBatchAnswer }[]>(`select body_sha256, answer from qr_ride_batch where reader_id = ? and batch_id = ?`, [input.terminal.id, input.batchId]);
      if (stored!.body_sha256 !== bodyHash) throw new QrBatchError('BATCH_ID_REUSED', `batch ${input.batchId} was uploaded before with another body`);
      return { answer: stored!.answer, replayed: true };
    }
    // Then whether it may take QR fares at all: a certified terminal is not thereby a transit scanner.
    // Asked after the replay: a batch booked before its terminal was taken off still gets its stored answer.
    const scanner = await qrScannerOf(tx, input.terminal.id);
    if (!scanner) throw new QrBatchError('NOT_A_QR_SCANNER', `terminal ${input.terminal.serial} is not registered as a QR scanner by its city's card company (setQrScanner)`);
    const fareCap = BigInt(scanner.fare_cap);
    await lockWalletsInOrder(tx, rides);
    const keys = new IssuerKeys(tx, deps);
    const answers: QrRideAnswer[] = [];
    for (const [index, ride] of rides.entries()) {
      const result = await takeRide(tx, keys, { terminal: input.terminal, fareCap }, id, ride, now);
      await tx.execute(
        `insert into qr_ride (id, batch_row_id, record_no, credential_id, counter, fresh_time, scanned_at, amount, outcome, reason, journal_entry_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [randomUUID(), id, index, result.credential?.id ?? null, result.credential ? result.counter : null, result.credential ? result.freshTime : null, ride.scannedAt, ride.amount, result.outcome, result.reason, result.journalEntryId],
      );
      answers.push({ index, credentialId: result.credential?.id ?? null, counter: result.credential ? result.counter : null, amount: ride.amount, outcome: result.outcome, accepted: result.outcome === 'ACCEPTED' || result.outcome === 'DEBT', reason: result.reason, journalEntryId: result.journalEntryId });
    }
    // The days these rides fall on are booked since their ridership rollup (analytics/ridership-rollup.ts).
    if (answers.some((a) => a.accepted)) await markRideDaysOfQrBatch(tx, id);
    const answer: QrBatchAnswer = { id, readerId: input.terminal.id, batchId: input.batchId, receivedAt: new Date(claimed.received_at).toISOString(), rides: answers };
    await tx.execute(`update qr_ride_batch set answer = ? where id = ?`, [JSON.stringify(answer), id]);
    return { answer, replayed: false };
  });
}

/**
 * Takes the row lock of every wallet the batch's codes name, in id order, before booking any ride:
 * two batches riding the same wallets in other orders would otherwise each hold one and wait for the
 * other (a deadlock). The names are unverified here; locking a wallet a forged code names books nothing.
 */
async function lockWalletsInOrder(tx: EntityManager, rides: QrRideRecord[]): Promise<void> {
  const ids = [...new Set(rides.map((r) => parseQrCode(r.code)?.credential.walletId).filter((id): id is string => !!id))].sort();
  if (ids.length) await tx.execute(`select id from transit_wallet where id in (?) order by id for update`, [ids]);
}

type CompanyKeys = { current: Map<string, KeyObject>; retired: Map<string, RetiredIssuerKey> };

/**
 * Each card company's signing key by key id, and its retired ones (every one: a ride is judged at its
 * scan time, which a late upload puts long before now), read once per batch.
 */
class IssuerKeys {
  private readonly byCompany = new Map<string, CompanyKeys>();
  constructor(
    private readonly em: EntityManager,
    private readonly deps: { kek: Buffer; publicUrl: string },
  ) {}

  async of(cardCompanyId: string): Promise<CompanyKeys> {
    let keys = this.byCompany.get(cardCompanyId);
    if (!keys) {
      keys = { current: new Map(), retired: new Map() };
      const [company] = await this.em.execute<{ city_id: string }[]>(`select city_id from card_company where id = ?`, [cardCompanyId]);
      if (company) {
        const host = await hostKeyOfCity(this.em, this.deps.kek, company.city_id, this.deps.publicUrl);
        const publicKey = new X509Certificate(host.chainPem[0]!).publicKey;
        keys.current.set(issuerKeyIdOf(publicKey).toString('hex'), publicKey);
        for (const r of await retiredSigningCertificates(this.em, host.caId, new Date(0))) {
          const key = new X509Certificate(r.certificate).publicKey;
          keys.retired.set(issuerKeyIdOf(key).toString('hex'), { key, retiredAt: r.retiredAt, usableUntil: r.usableUntil });
        }
      }
      this.byCompany.set(cardCompanyId, keys);
    }
    return keys;
  }
}

type RideResult = { outcome: QrRideOutcome; reason: string; journalEntryId: string | null; credential: CredentialRow | null; counter: number; freshTime: Date | null };

async function takeRide(tx: EntityManager, keys: IssuerKeys, scanner: { terminal: ReaderRow; fareCap: bigint }, batchRowId: string, ride: QrRideRecord, now: Date): Promise<RideResult> {
  const refused = (outcome: QrRideOutcome, reason: string, credential: CredentialRow | null = null, counter = 0, freshTime: Date | null = null): RideResult => ({ outcome, reason, journalEntryId: null, credential, counter, freshTime });
  if (+ride.scannedAt > +now + 5 * 60_000) return refused('FORGED', 'scanned in the future by more than the 5 minutes of clock skew allowed');
  // The card company named in the code, if it parses: its key decides; the database is asked only then.
  const companyId = /^OCQR1\.[A-Za-z0-9_-]+/.test(ride.code) ? companyOf(ride.code) : null;
  const issuerKeys = companyId ? await keys.of(companyId) : { current: new Map<string, KeyObject>(), retired: new Map<string, RetiredIssuerKey>() };
  let credential: CredentialRow | null = null;
  const verified = verifyQrCode(ride.code, { issuerKeys: issuerKeys.current, retiredIssuerKeys: issuerKeys.retired, scannedAt: ride.scannedAt, isBlocked: () => false });
  if (verified.code && (verified.ok || verified.refusal !== 'FORGED')) credential = await credentialById(tx, verified.code.credential.credentialId);
  if (!verified.ok) return refused(verified.refusal, verified.reason, credential, verified.code?.counter ?? 0, verified.code?.freshTime ?? null);
  const code = verified.code;
  // Signed by the card company, so it names a credential it recorded; one it has not is refused as forged.
  // The device key too: a leaked signing key must not bind someone else's credential id to an attacker's device.
  if (!credential || credential.wallet_id !== code.credential.walletId || !Buffer.from(credential.device_public_key).equals(code.credential.devicePublicKey)) return refused('FORGED', 'the card company issued no such credential');
  // Blocked before the scan: the scanner should have known (its delta); a ride before the block is the scanner's good faith.
  if (credential.blocked_at && +credential.blocked_at <= +ride.scannedAt) return refused('BLOCKED', `the credential was blocked at ${new Date(credential.blocked_at).toISOString()}: ${credential.block_reason}`, credential, code.counter, code.freshTime);
  // The holder signs who rode, not what it cost: the card company's cap for this terminal bounds what a scanner may charge.
  if (BigInt(ride.amount) > scanner.fareCap) return refused('FARE_ABOVE_CAP', `the fare ${ride.amount} is above this terminal's fare cap of ${scanner.fareCap}`, credential, code.counter, code.freshTime);
  return bookRide(tx, scanner.terminal, batchRowId, credential, { counter: code.counter, freshTime: code.freshTime }, ride, now);
}

/** The card company id a code's credential names (bytes 49–65), read before its signature is checked to find the key that checks it. */
function companyOf(text: string): string | null {
  const bytes = Buffer.from(text.split('.')[1]!, 'base64url');
  if (bytes.length < 65) return null;
  const h = bytes.subarray(49, 65).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The fare: wallet (and debt within its limit) → the terminal owner's transit payable, in a savepoint
 * with the wallet's row locked. The entry key is the presentation (credential + counter + fresh time):
 * two batches bringing the same code book it once, the second sees the first's entry and answers
 * DUPLICATE. The app chooses the counter, so a code with a booked counter but another fresh time is
 * another ride: it is booked too, and the credential blocked (a cloned or modified app).
 */
async function bookRide(tx: EntityManager, terminal: ReaderRow, batchRowId: string, credential: CredentialRow, fresh: { counter: number; freshTime: Date }, ride: QrRideRecord, now: Date): Promise<RideResult> {
  const { counter, freshTime } = fresh;
  return tx.transactional(
    async (sp) => {
      const wallet = (await walletById(sp, credential.wallet_id, true))!;
      const payable = terminal.owner_kind === 'MERCHANT' ? await merchantPayableAccount(sp, terminal.owner_id, wallet.currency) : await transitRevenueAccount(sp, terminal.owner_id, wallet.currency);
      const presentation = `${counter}:${Math.floor(+freshTime / 1000)}`;
      const key = `qr-ride:${credential.id}:${presentation}`;
      const result = (r: Omit<RideResult, 'credential' | 'counter' | 'freshTime'>): RideResult => ({ ...r, credential, counter, freshTime });
      // Under the wallet's lock, a ride another upload booked has committed: it is a duplicate, whatever
      // fare this copy names (asking post() again would compute other lines from the new balance).
      const [booked] = await sp.execute<{ id: string }[]>(`select entry_id as id from journal_entry_key where entry_key = ?`, [key]);
      if (booked) return result({ outcome: 'DUPLICATE', reason: `credential ${credential.id} counter ${counter} drawn at ${freshTime.toISOString()} was booked before`, journalEntryId: null });
      // An honest app never draws a counter twice: the same counter at another time is a clone or a modified app.
      const [reused] = await sp.execute<{ id: string }[]>(`select id from qr_ride where credential_id = ? and counter = ? and fresh_time <> ? and outcome in ('ACCEPTED','DEBT') limit 1`, [credential.id, counter, freshTime]);
      const amount = BigInt(ride.amount);
      const posted = await postRideFare(sp, wallet, {
        payableAccountId: payable.id,
        amount,
        key,
        description: `QR ride on terminal ${terminal.serial}`,
        metadata: { kind: 'QR_RIDE', qrBatch: batchRowId, terminal: terminal.serial, credential: credential.id, counter, freshTime: freshTime.toISOString(), scannedAt: ride.scannedAt.toISOString() },
      });
      if (reused) await blockCredentials(sp, [credential.id], `counter ${counter} presented again with another time: a cloned or modified app`);
      if ('overLimit' in posted) {
        await blockWalletCredentials(sp, wallet.id, 'the wallet’s debt reached its limit', now);
        return result({ outcome: 'DEBT_LIMIT_EXCEEDED', reason: `the wallet owes ${posted.overLimit.debt} of its ${posted.overLimit.limit} limit and holds too little; recorded, not booked, and its credentials blocked`, journalEntryId: null });
      }
      if (posted.entry.replayed) return result({ outcome: 'DUPLICATE', reason: `credential ${credential.id} counter ${counter} drawn at ${freshTime.toISOString()} was booked before`, journalEntryId: null });
      await recordClearingItem(sp, {
        kind: 'TRANSIT',
        participant: { kind: terminal.owner_kind === 'MERCHANT' ? 'MERCHANT' : 'CARD_COMPANY', id: terminal.owner_id },
        // The wallet's card company is the "card's" issuer: a ride in another city makes interchange, as a card fare does.
        cardCompanyId: wallet.card_company_id,
        amount,
        currency: wallet.currency,
        entryKey: key,
        reference: `qr:${credential.id}:${presentation}`,
        occurredAt: ride.scannedAt,
      });
      // Rides past what the wallet holds run up its debt; at the limit its credentials go on the blocklist.
      if (posted.asDebt > 0n && (await walletBalances(sp, wallet)).debt >= BigInt(wallet.debt_limit)) await blockWalletCredentials(sp, wallet.id, 'the wallet’s debt reached its limit', now);
      const cloned = reused ? `; counter ${counter} was booked before with another time, so the credential is now blocked` : '';
      return posted.asDebt > 0n
        ? result({ outcome: 'DEBT', reason: `booked: ${posted.fromWallet} from the wallet, ${posted.asDebt} as debt the next top-up clears${cloned}`, journalEntryId: posted.entry.id })
        : result({ outcome: 'ACCEPTED', reason: `booked from the wallet${cloned}`, journalEntryId: posted.entry.id });
    },
    { propagation: 'nested' },
  );
}
