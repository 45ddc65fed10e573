import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { LedgerError, LedgerErrorCode } from '../ledger/ledger.errors.js';
import { type CardActivityRow, cardHistory, purseAsnOfPosting } from './card-history.service.js';
import { movePendingLoads, recordTransferLoad } from '../topups/topups.service.js';
import { CardError } from './cards.errors.js';
import { cardPurseBalance } from '../ledger/accounts.js';
import { assertMove, canMove, defineMachine, NOW, sql, transition } from '../lifecycle/machine.js';
import { inTransaction } from '../db/in-transaction.js';

export { CARD_ACTIVITY_KINDS, CARD_ENTRY_KINDS, type CardActivityKind, type CardEntryKind } from './card-history.service.js';

export type CardKind = 'CPU' | 'M1';
export type CardStatus = 'ACTIVE' | 'LOST' | 'BLOCKED' | 'REPLACED' | 'EXPIRED';
export type Concession = 'ADULT' | 'STUDENT' | 'SENIOR';

export interface CardRow {
  id: string;
  card_company_id: string;
  card_number: string;
  asn: string;
  card_type: CardKind;
  key_version: number;
  /** YYYY-MM-DD */
  issued_on: string;
  /** YYYY-MM-DD */
  expires_on: string;
  status: CardStatus;
  holder_id: string | null;
  concession: Concession;
  concession_valid_until: string | null;
  concession_proof: string | null;
  replaced_by: string | null;
  created_at: Date;
  status_changed_at: Date;
  /** The currency of the card company's city: the card purse's. */
  currency: string;
}

export interface CardStatusChangeRow {
  id: string;
  card_id: string;
  from_status: CardStatus;
  to_status: CardStatus;
  reason: string | null;
  at: Date;
  by_client: string;
}

/**
 * Card states as data (STYLE.md §2). A lost card may be found; a blocked one unblocked; any live
 * card may be replaced. REPLACED and EXPIRED are final.
 */
export const CARD_TRANSITIONS: Readonly<Record<CardStatus, readonly CardStatus[]>> = {
  ACTIVE: ['LOST', 'BLOCKED', 'EXPIRED', 'REPLACED'],
  LOST: ['ACTIVE', 'REPLACED'],
  BLOCKED: ['ACTIVE', 'REPLACED'],
  REPLACED: [],
  EXPIRED: [],
};

/**
 * The card lifecycle (lifecycle/machine.ts). Cards keep their own history, card_status_history
 * (who moved it and why), which cardHistory shows.
 */
export const cardMachine = defineMachine<CardStatus, CardRow>({
  name: 'card',
  table: 'card',
  initial: ['ACTIVE'],
  transitions: CARD_TRANSITIONS,
  refuse: (from, to) => new CardError('INVALID_TRANSITION', `a ${from} card cannot become ${to}`),
  reload: async (em, id) => (await cardById(em, id))!,
  history: (em, move) =>
    em.execute(`insert into card_status_history (card_id, from_status, to_status, reason, by_client) values (?, ?, ?, ?, ?)`, [move.id, move.from, move.to, move.reason ?? null, move.cause]).then(() => undefined),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Every card query selects these: dates as text (no time-zone drift) and the purse currency. */
const CARD_COLUMNS = `c.id, c.card_company_id, c.card_number, c.asn, c.card_type, c.key_version,
  c.issued_on::text as issued_on, c.expires_on::text as expires_on, c.status, c.holder_id, c.concession,
  c.concession_valid_until::text as concession_valid_until, c.concession_proof, c.replaced_by,
  c.created_at, c.status_changed_at, btrim(ci.currency) as currency`;
const CARD_FROM = `card c join card_company cc on cc.id = c.card_company_id join city ci on ci.id = cc.city_id`;

/** `body` followed by its Luhn (mod 10) check digit: the number a card with that body carries. */
export function withLuhnCheckDigit(body: string): string {
  for (let check = 0; check <= 9; check++) if (luhnValid(`${body}${check}`)) return `${body}${check}`;
  throw new RangeError(`not a digit string: ${body}`);
}

/** The Luhn (mod 10) check digit test card numbers carry. */
export function luhnValid(number: string): boolean {
  if (!/^[0-9]+$/.test(number)) return false;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let digit = Number(number[number.length - 1 - i]);
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** A real calendar day as YYYY-MM-DD. */
function isDay(value: string): boolean {
  if (!DATE.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(value);
}

export interface IssueCardInput {
  cardNumber: string;
  asn: string;
  cardType: CardKind;
  keyVersion: number;
  issuedOn: string;
  expiresOn: string;
  concession?: Concession;
  concessionValidUntil?: string | null;
  concessionProof?: string | null;
  holderId?: string | null;
}

function validateIssue(input: IssueCardInput): { asn: string } {
  if (!/^[0-9]{16,19}$/.test(input.cardNumber)) throw new CardError('INVALID_CARD_NUMBER', 'a card number is 16 to 19 digits', 'cardNumber');
  if (!luhnValid(input.cardNumber)) throw new CardError('INVALID_CARD_NUMBER', 'the card number fails its Luhn check digit', 'cardNumber');
  const asn = input.asn.toUpperCase();
  const asnLength = input.cardType === 'CPU' ? 20 : 8;
  if (!new RegExp(`^[0-9A-F]{${asnLength}}$`).test(asn)) {
    throw new CardError('INVALID_INPUT', input.cardType === 'CPU' ? 'a CPU card’s ASN is 20 hex digits' : 'an M1 card’s ASN is its 8-hex-digit UID', 'asn');
  }
  if (!Number.isInteger(input.keyVersion) || input.keyVersion < 0 || input.keyVersion > 255) throw new CardError('INVALID_INPUT', 'a key version is 0 to 255', 'keyVersion');
  if (!isDay(input.issuedOn)) throw new CardError('INVALID_INPUT', 'issuedOn is a YYYY-MM-DD day', 'issuedOn');
  if (!isDay(input.expiresOn)) throw new CardError('INVALID_INPUT', 'expiresOn is a YYYY-MM-DD day', 'expiresOn');
  if (input.expiresOn <= input.issuedOn) throw new CardError('INVALID_INPUT', 'a card expires after the day it is issued', 'expiresOn');
  const concession = input.concession ?? 'ADULT';
  if (concession === 'STUDENT') {
    if (!input.concessionValidUntil || !isDay(input.concessionValidUntil)) throw new CardError('INVALID_INPUT', 'a STUDENT concession needs its valid-until day', 'concessionValidUntil');
    if (input.concessionValidUntil < input.issuedOn) throw new CardError('INVALID_INPUT', 'the STUDENT concession ends before the card is issued', 'concessionValidUntil');
    if (!input.concessionProof?.trim() || input.concessionProof.length > 200) throw new CardError('INVALID_INPUT', 'a STUDENT concession needs a proof reference (1 to 200 characters)', 'concessionProof');
  } else if (input.concessionValidUntil != null || input.concessionProof != null) {
    throw new CardError('INVALID_INPUT', `only a STUDENT concession has a validity and a proof reference`, input.concessionValidUntil != null ? 'concessionValidUntil' : 'concessionProof');
  }
  return { asn };
}

async function cardById(em: EntityManager, id: string, lock = false): Promise<CardRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<CardRow[]>(`select ${CARD_COLUMNS} from ${CARD_FROM} where c.id = ?${lock ? ' for update of c' : ''}`, [id]);
  return row ?? null;
}

/**
 * Issues a card of this card company; all checks first, then one insert. Runs in the caller's
 * transaction when there is one (a replacement issues its new card in the same transaction).
 */
export async function issueCard(em: EntityManager, cardCompanyId: string, input: IssueCardInput): Promise<CardRow> {
  const { asn } = validateIssue(input);
  if (!UUID.test(cardCompanyId)) throw new CardError('NOT_FOUND', 'no such card company');
  return inTransaction(em, async (tx) => {
    const [company] = await tx.execute(`select 1 from card_company where id = ?`, [cardCompanyId]);
    if (!company) throw new CardError('NOT_FOUND', 'no such card company');
    if (input.holderId && !(UUID.test(input.holderId) && (await tx.execute(`select 1 from cardholder where id = ?`, [input.holderId]))[0])) {
      throw new CardError('NOT_FOUND', `no cardholder ${input.holderId}`, 'holder');
    }
    const [number] = await tx.execute(`select 1 from card where card_number = ?`, [input.cardNumber]);
    if (number) throw new CardError('DUPLICATE_CARD_NUMBER', `card number ${input.cardNumber} is already issued`, 'cardNumber');
    const [sameAsn] = await tx.execute(`select 1 from card where asn = ?`, [asn]);
    if (sameAsn) throw new CardError('DUPLICATE_ASN', `a card with ASN ${asn} is already issued`, 'asn');
    const id = randomUUID();
    try {
      await tx.execute(
        `insert into card (id, card_company_id, card_number, asn, card_type, key_version, issued_on, expires_on, holder_id, concession, concession_valid_until, concession_proof)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [id, cardCompanyId, input.cardNumber, asn, input.cardType, input.keyVersion, input.issuedOn, input.expiresOn, input.holderId ?? null, input.concession ?? 'ADULT', input.concessionValidUntil ?? null, input.concessionProof ?? null],
      );
    } catch (err) {
      // Two issues of the same number or ASN at once: the unique index decides, the loser is told.
      const constraint = (err as { constraint?: string }).constraint ?? String((err as Error).message);
      if (/card_number/.test(constraint)) throw new CardError('DUPLICATE_CARD_NUMBER', `card number ${input.cardNumber} is already issued`, 'cardNumber');
      if (/asn/.test(constraint)) throw new CardError('DUPLICATE_ASN', `a card with ASN ${asn} is already issued`, 'asn');
      throw err;
    }
    return (await cardById(tx, id))!;
  });
}

/**
 * Moves a card along CARD_TRANSITIONS inside the caller's transaction (it locks the card row):
 * refuses an illegal move with INVALID_TRANSITION, and writes one history row per move.
 * `onlyFrom` narrows the starting states for one operation (unblocking starts from BLOCKED only).
 */
export async function transitionCard(em: EntityManager, cardId: string, to: CardStatus, opts: { reason?: string | null; by: string; replacedBy?: string; onlyFrom?: readonly CardStatus[] }): Promise<CardRow> {
  const card = await cardById(em, cardId, true);
  if (!card) throw new CardError('NOT_FOUND', `no card ${cardId}`);
  if (opts.onlyFrom && !opts.onlyFrom.includes(card.status)) throw new CardError('INVALID_TRANSITION', `a ${card.status} card cannot become ${to} this way`);
  assertMove(cardMachine, card.status, to);
  if (opts.replacedBy && to !== 'REPLACED') throw new CardError('INVALID_INPUT', 'only a REPLACED card names its replacement');
  const moved = await transition(em, cardMachine, card, to, { status_changed_at: NOW, replaced_by: sql('coalesce(?, replaced_by)', opts.replacedBy ?? null) }, { cause: opts.by, reason: opts.reason ?? null });
  const action = blacklistEffect(card.status, to);
  if (action) await appendBlacklist(em, card, action, opts.reason ?? null, opts.by);
  return moved;
}

export type BlacklistAction = 'ADD' | 'REMOVE';

export interface BlacklistEntryRow {
  version: string;
  asn: string;
  card_id: string;
  card_company_id: string;
  action: BlacklistAction;
  reason: string | null;
  at: Date;
}

/**
 * What a status change does to the blacklist (as data): a card that becomes LOST, BLOCKED or
 * REPLACED goes on it (terminals must refuse a replaced card offline too, or its holder could spend
 * the old chip's value again while the balance moves to the new card); one that comes back from LOST
 * or BLOCKED to ACTIVE comes off. Other moves leave it as is (a LOST card that is REPLACED stays
 * listed).
 */
export function blacklistEffect(from: CardStatus, to: CardStatus): BlacklistAction | null {
  if (from === 'ACTIVE' && (to === 'LOST' || to === 'BLOCKED' || to === 'REPLACED')) return 'ADD';
  if ((from === 'LOST' || from === 'BLOCKED') && to === 'ACTIVE') return 'REMOVE';
  return null;
}

/** Advisory lock key that serialises blacklist writers, so versions commit in version order. */
const BLACKLIST_LOCK = 0x0c_b1_ac_1;

/** Appends one blacklist entry inside the caller's transaction (the card's status change). */
async function appendBlacklist(em: EntityManager, card: CardRow, action: BlacklistAction, reason: string | null, by: string): Promise<void> {
  // Held to commit: a later version cannot become visible before an earlier one.
  await em.execute(`select pg_advisory_xact_lock(?)`, [BLACKLIST_LOCK]);
  await em.execute(`insert into card_blacklist (asn, card_id, card_company_id, action, reason, by_client) values (?, ?, ?, ?, ?, ?)`, [card.asn, card.id, card.card_company_id, action, reason, by]);
}

/**
 * Blacklist entries after version `since`, in version order, as the principal may see them
 * (ownership in the query): the operator every card company's, an issuer its own company's;
 * both need `cards:read`. `latestVersion` is the highest version the principal may see (0 if none);
 * `limit` rows at most (ask for one more than a page to learn whether there are more).
 */
export async function blacklistSince(em: EntityManager, principal: Principal, opts: { since: number; limit: number }): Promise<{ entries: BlacklistEntryRow[]; latestVersion: string }> {
  let where: { sql: string; params: unknown[] } | null = null;
  if (principal.kind === 'OPERATOR' && principal.scopes.includes('cards:read')) where = { sql: 'true', params: [] };
  else if (principal.kind === 'ISSUER' && principal.scopes.includes('cards:read') && principal.tenantId && UUID.test(principal.tenantId)) where = { sql: 'b.card_company_id = ?', params: [principal.tenantId] };
  if (!where) return { entries: [], latestVersion: '0' };
  // The latest version first, then nothing above it: an entry committed in between (always of a
  // higher version, see appendBlacklist) is left for the next call instead of being skipped.
  const [latest] = await em.execute<{ v: string }[]>(`select coalesce(max(b.version), 0)::text as v from card_blacklist b where (${where.sql})`, where.params);
  const latestVersion = latest?.v ?? '0';
  const rows = await em.execute<(Omit<BlacklistEntryRow, 'at'> & { at: string })[]>(
    `select b.version::text as version, b.asn, b.card_id, b.card_company_id, b.action, b.reason, to_json(b.at) #>> '{}' as at from card_blacklist b where (${where.sql}) and b.version > ? and b.version <= ? order by b.version limit ?`,
    [...where.params, opts.since, latestVersion, opts.limit],
  );
  // Raw rows carry timestamps as text: ISO 8601 from to_json, parsed here.
  return { entries: rows.map((r) => ({ ...r, at: new Date(r.at) })), latestVersion };
}

/** The status changes of a card, oldest first. */
export function cardStatusHistory(em: EntityManager, cardId: string): Promise<CardStatusChangeRow[]> {
  return em.execute<CardStatusChangeRow[]>(`select id::text, card_id, from_status, to_status, reason, at, by_client from card_status_history where card_id = ? order by id`, [cardId]);
}

/**
 * Who sees which cards, as a WHERE clause (DESIGN.md §5): the operator all; a card company the
 * cards it issued; a cardholder app only the registered cards of its signed-in holder; nobody else
 * any. Each also needs its read scope.
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  switch (principal.kind) {
    case 'OPERATOR':
      return principal.scopes.includes('cards:read') ? { sql: 'true', params: [] } : null;
    case 'ISSUER':
      return principal.scopes.includes('cards:read') && principal.tenantId && UUID.test(principal.tenantId) ? { sql: 'c.card_company_id = ?', params: [principal.tenantId] } : null;
    case 'CARDHOLDER_APP':
      return principal.scopes.includes('card:read') && principal.holderId && UUID.test(principal.holderId) ? { sql: 'c.holder_id = ?', params: [principal.holderId] } : null;
    default:
      return null;
  }
}

export async function findCardFor(em: EntityManager, principal: Principal, id: string): Promise<CardRow | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<CardRow[]>(`select ${CARD_COLUMNS} from ${CARD_FROM} where c.id = ? and (${where.sql})`, [id, ...where.params]);
  return row ?? null;
}

/** The cards a principal may see, in card-number order (numbers are unique: the keyset). */
export async function listCardsFor(em: EntityManager, principal: Principal, opts: { afterNumber?: string; limit: number; number?: string }): Promise<CardRow[]> {
  const where = visibility(principal);
  if (!where) return [];
  // A search by number stays inside what the caller may see: the visibility clause comes first.
  const byNumber = opts.number === undefined ? '' : ' and c.card_number = ?';
  return em.execute<CardRow[]>(`select ${CARD_COLUMNS} from ${CARD_FROM} where (${where.sql})${byNumber} and c.card_number > ? order by c.card_number limit ?`, [
    ...where.params,
    ...(opts.number === undefined ? [] : [opts.number]),
    opts.afterNumber ?? '',
    opts.limit,
  ]);
}

/** A card of this card company that it may manage (block, register), or null: ownership in the query. */
export async function findCardOfCompany(em: EntityManager, cardCompanyId: string, id: string): Promise<CardRow | null> {
  if (!UUID.test(cardCompanyId) || !UUID.test(id)) return null;
  const [row] = await em.execute<CardRow[]>(`select ${CARD_COLUMNS} from ${CARD_FROM} where c.id = ? and c.card_company_id = ?`, [id, cardCompanyId]);
  return row ?? null;
}

/**
 * The card a cardholder app may manage (report lost): one registered to its signed-in holder.
 * Another holder's card is null, exactly like a missing one; an anonymous (unregistered) card is
 * refused with NOT_REGISTERED, since nobody can prove it is theirs.
 */
export async function findCardOfHolder(em: EntityManager, holderId: string | null, id: string): Promise<CardRow | null> {
  if (!holderId || !UUID.test(holderId) || !UUID.test(id)) return null;
  const [row] = await em.execute<CardRow[]>(`select ${CARD_COLUMNS} from ${CARD_FROM} where c.id = ? and (c.holder_id = ? or c.holder_id is null)`, [id, holderId]);
  if (row && !row.holder_id) throw new CardError('NOT_REGISTERED', 'only a registered card (记名卡) can be reported lost from a cardholder app; report it at the card company', 'card');
  return row ?? null;
}

/**
 * The purse movements of a card the principal may see (none otherwise), newest first: checked
 * here, wherever the caller's Card came from, because this is money.
 */
export async function cardHistoryFor(em: EntityManager, principal: Principal, cardId: string, opts: Omit<Parameters<typeof cardHistory>[2], 'onlyId'>): Promise<CardActivityRow[]> {
  const card = await findCardFor(em, principal, cardId);
  return card ? cardHistory(em, card, opts) : [];
}

/** One purse movement by its posting id, for those who see the card whose purse it moved. */
export async function findCardActivityFor(em: EntityManager, principal: Principal, postingId: string): Promise<CardActivityRow | null> {
  const asn = await purseAsnOfPosting(em, postingId);
  const card = asn ? await findCardByAsn(em, asn) : null;
  const visible = card && (await findCardFor(em, principal, card.id));
  if (!visible) return null;
  const [row] = await cardHistory(em, visible, { onlyId: postingId, limit: 1 });
  return row ?? null;
}

/** The card a chip reported, for other contexts (sessions, top-ups); ASN in any hex case. */
export async function findCardByAsn(em: EntityManager, asn: string): Promise<CardRow | null> {
  if (!/^[0-9A-Fa-f]{8}$|^[0-9A-Fa-f]{20}$/.test(asn)) return null;
  const [row] = await em.execute<CardRow[]>(`select ${CARD_COLUMNS} from ${CARD_FROM} where c.asn = ?`, [asn.toUpperCase()]);
  return row ?? null;
}

/** Makes a card registered (记名): the issuer names its cardholder. Only the issuer's own cards. */
export async function registerCardHolder(em: EntityManager, cardCompanyId: string, cardId: string, holderId: string): Promise<CardRow> {
  return em.transactional(async (tx) => {
    const card = await findCardOfCompany(tx, cardCompanyId, cardId);
    if (!card) throw new CardError('NOT_FOUND', `no card ${cardId} of this card company`, 'card');
    if (!UUID.test(holderId) || !(await tx.execute(`select 1 from cardholder where id = ?`, [holderId]))[0]) throw new CardError('NOT_FOUND', `no cardholder ${holderId}`, 'holder');
    if (card.status === 'REPLACED' || card.status === 'EXPIRED') throw new CardError('INVALID_INPUT', `a ${card.status} card cannot be registered`, 'card');
    if (card.holder_id && card.holder_id !== holderId) throw new CardError('INVALID_INPUT', 'the card is already registered to another cardholder', 'card');
    await tx.execute(`update card set holder_id = ? where id = ?`, [holderId, cardId]);
    return (await cardById(tx, cardId))!;
  });
}

/** What the host's purse shadow holds for a card (0 before its account exists). */
export function cardPurseBalanceOf(em: EntityManager, card: Pick<CardRow, 'asn' | 'currency'>): Promise<bigint> {
  return cardPurseBalance(em, card.asn, card.currency);
}

/** The replacement's balance transfer: scheduled with the replacement, finished by the job. */
export interface BalanceTransfer {
  id: string;
  fromCardId: string;
  toCardId: string;
  currency: string;
  dueAt: Date;
  transferredAt: Date | null;
  /** What moved; null until the transfer is done (0 when the old purse was empty). */
  amount: bigint | null;
}

const TRANSFER_COLUMNS = `t.id, t.from_card_id, t.to_card_id, btrim(t.currency) as currency, to_json(t.due_at) #>> '{}' as due_at,
  to_json(t.transferred_at) #>> '{}' as transferred_at, t.amount::text as amount`;

type TransferRow = { id: string; from_card_id: string; to_card_id: string; currency: string; due_at: string; transferred_at: string | null; amount: string | null };

function transferOf(r: TransferRow): BalanceTransfer {
  return {
    id: r.id,
    fromCardId: r.from_card_id,
    toCardId: r.to_card_id,
    currency: r.currency,
    dueAt: new Date(r.due_at),
    transferredAt: r.transferred_at ? new Date(r.transferred_at) : null,
    amount: r.amount === null ? null : BigInt(r.amount),
  };
}

/** The new card's own particulars; company, holder and concession are the old card's. */
export type NewCardInput = Pick<IssueCardInput, 'cardNumber' | 'asn' | 'cardType' | 'keyVersion' | 'issuedOn' | 'expiresOn'>;
const NEW_CARD_FIELDS = new Set(['cardNumber', 'asn', 'cardType', 'keyVersion', 'issuedOn', 'expiresOn']);

/**
 * 补卡: the card company replaces one of its cards, in one transaction: it issues the new card (same
 * company, holder and concession), moves the old one to REPLACED (on the blacklist if it was ACTIVE),
 * and schedules the balance transfer `transferDelaySeconds` from now. A refusal writes nothing.
 * The old card's row is locked before anything is written, so of two replacements of one card
 * exactly one goes ahead and the other finds it REPLACED (INVALID_TRANSITION).
 */
export async function replaceCard(
  em: EntityManager,
  cardCompanyId: string,
  cardId: string,
  input: { newCard: NewCardInput; reason?: string | null; by: string; transferDelaySeconds: number },
): Promise<{ card: CardRow; oldCard: CardRow; transfer: BalanceTransfer }> {
  return em.transactional(async (tx) => {
    if (!(await findCardOfCompany(tx, cardCompanyId, cardId))) throw new CardError('NOT_FOUND', `no card ${cardId} of this card company`, 'card');
    const old = (await cardById(tx, cardId, true))!;
    if (!canMove(cardMachine, old.status, 'REPLACED')) throw new CardError('INVALID_TRANSITION', `a ${old.status} card cannot be replaced`, 'card');
    const { cardNumber, asn, cardType, keyVersion, issuedOn, expiresOn } = input.newCard;
    let card: CardRow;
    try {
      card = await issueCard(tx, cardCompanyId, {
        cardNumber,
        asn,
        cardType,
        keyVersion,
        issuedOn,
        expiresOn,
        holderId: old.holder_id,
        concession: old.concession,
        concessionValidUntil: old.concession_valid_until,
        concessionProof: old.concession_proof,
      });
    } catch (err) {
      if (!(err instanceof CardError)) throw err;
      // A refusal about what the old card carries over (its concession ends before the new card's
      // issue day) is about the card, not the new card's particulars.
      throw new CardError(err.code, err.message, err.field && NEW_CARD_FIELDS.has(err.field) ? `newCard.${err.field}` : 'card');
    }
    const oldCard = await transitionCard(tx, cardId, 'REPLACED', { reason: input.reason ?? null, by: input.by, replacedBy: card.id });
    await movePendingLoads(tx, old.id, card.id);
    const [row] = await tx.execute<TransferRow[]>(
      `insert into card_balance_transfer as t (id, from_card_id, to_card_id, currency, due_at) values (?, ?, ?, ?, now() + make_interval(secs => ?)) returning ${TRANSFER_COLUMNS}`,
      [randomUUID(), old.id, card.id, old.currency, input.transferDelaySeconds],
    );
    return { card, oldCard, transfer: transferOf(row!) };
  });
}

/** The balance transfer a card takes part in: the one out of it once it is replaced, else the one into it. */
export async function balanceTransferOf(em: EntityManager, cardId: string): Promise<BalanceTransfer | null> {
  if (!UUID.test(cardId)) return null;
  const [row] = await em.execute<TransferRow[]>(
    `select ${TRANSFER_COLUMNS} from card_balance_transfer t where t.from_card_id = ? or t.to_card_id = ? order by (t.from_card_id = ?) desc limit 1`,
    [cardId, cardId, cardId],
  );
  return row ? transferOf(row) : null;
}

/** A balance transfer by id, for those who may see its cards (both have the same company and holder). */
export async function findBalanceTransferFor(em: EntityManager, principal: Principal, id: string): Promise<BalanceTransfer | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<TransferRow[]>(`select ${TRANSFER_COLUMNS} from card_balance_transfer t join card c on c.id = t.from_card_id where t.id = ? and (${where.sql})`, [id, ...where.params]);
  return row ? transferOf(row) : null;
}

/** The old purse changed between reading its balance and moving it: try again with the new balance. */
class PurseMoved extends Error {}

const TRANSFER_BATCH = 100;
const TRANSFER_ATTEMPTS = 3;

/**
 * The balance transfer job: for each due, unfinished replacement, moves the old card's whole purse
 * shadow (by now including the offline transactions that arrived during the wait) to the new card's
 * purse with one ledger entry, and records what moved. Each row in its own transaction, taken with
 * `for update skip locked`, so any number of API processes can run this side by side. Returns how
 * many rows it finished; a row that fails for an unexpected reason is left for the next run, the
 * others still get their turn, and the first such error is thrown at the end.
 */
export async function runDueBalanceTransfers(em: EntityManager, now: Date): Promise<number> {
  let finished = 0;
  let failure: unknown;
  let after: { dueAt: string; id: string } | null = null;
  for (;;) {
    const batch: { id: string; due_at: string }[] = await em.execute(
      `select t.id, to_json(t.due_at) #>> '{}' as due_at from card_balance_transfer t
        where t.transferred_at is null and t.due_at <= ? ${after ? 'and (t.due_at, t.id) > (?::timestamptz, ?::uuid)' : ''}
        order by t.due_at, t.id limit ?`,
      [now, ...(after ? [after.dueAt, after.id] : []), TRANSFER_BATCH],
    );
    for (const { id } of batch) {
      for (let attempt = 1; ; attempt++) {
        try {
          if (await transferBalance(em, id, now)) finished++;
          break;
        } catch (err) {
          const raced = err instanceof PurseMoved || (err instanceof LedgerError && err.code === LedgerErrorCode.INSUFFICIENT_FUNDS);
          if (raced && attempt < TRANSFER_ATTEMPTS) continue;
          if (!raced) failure ??= err;
          break;
        }
      }
    }
    if (batch.length < TRANSFER_BATCH) break;
    after = { dueAt: batch.at(-1)!.due_at, id: batch.at(-1)!.id };
  }
  if (failure) throw failure;
  return finished;
}

/** One transfer in its own transaction; false when another process has it, or it is not ready. */
function transferBalance(em: EntityManager, id: string, now: Date): Promise<boolean> {
  return em.fork().transactional(async (tx) => {
    // A chain (the new card replaced in turn) waits until the value has reached its middle card.
    const [t] = await tx.execute<{ id: string; from_card_id: string; to_card_id: string; currency: string; from_asn: string; to_asn: string }[]>(
      `select t.id, t.from_card_id, t.to_card_id, btrim(t.currency) as currency, f.asn as from_asn, n.asn as to_asn
         from card_balance_transfer t join card f on f.id = t.from_card_id join card n on n.id = t.to_card_id
        where t.id = ? and t.transferred_at is null and t.due_at <= ?
          and not exists (select 1 from card_balance_transfer i where i.to_card_id = t.from_card_id and i.transferred_at is null)
        for update of t skip locked`,
      [id, now],
    );
    if (!t) return false;
    const amount = await cardPurseBalance(tx, t.from_asn, t.currency);
    let entryId: string | null = null;
    if (amount > 0n) {
      // The value goes to the new card as a pending load: the ledger holds it for the card until the
      // card meets a reader and the load is written onto the chip (补登), like a paid top-up.
      const entry = await recordTransferLoad(tx, { transferId: t.id, fromCardId: t.from_card_id, fromAsn: t.from_asn, toCardId: t.to_card_id, currency: t.currency, amount });
      // post() applied the debit under the purse's row lock: anything but zero left means the purse
      // moved after we read it, and the whole purse is what must move.
      if (entry.purseBalanceAfter !== 0n) throw new PurseMoved();
      entryId = entry.id;
    }
    await tx.execute(`update card_balance_transfer set amount = ?, transferred_at = ?, journal_entry_id = ? where id = ?`, [amount.toString(), now, entryId, t.id]);
    return true;
  });
}
