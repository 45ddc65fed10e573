import type { HostMessage, SealedCommand } from './envelope.js';
export type { HostMessage };
import type { SessionRefusal } from './session.errors.js';
import type { CardProfile, SelectionStep } from './card-profile.js';

export type CardOperation = 'BALANCE' | 'LOAD' | 'PURCHASE';
export type SessionState = 'OPEN' | 'AUTHENTICATED' | 'AWAITING_TAC' | 'AWAITING_PROOF' | 'AWAITING_PURSE' | 'AWAITING_WRITE' | 'COMPLETED' | 'FAILED';
/** A CPU (e-purse) card speaks APDUs and proves itself with MACs; an M1 card is driven by sealed scripts. */
export type CardType = 'CPU' | 'M1';

/** Sessions are short: a card is in the field for seconds (DESIGN.md §6 asks for at most 120 s). */
export const SESSION_TTL_SECONDS = 120;
/** Amounts travel as 4 bytes on the wire (CARD-PROTOCOL.md: amounts are 4-byte big-endian fen). */
export const MAX_CARD_AMOUNT = 0xffff_ffffn;

export interface SessionRow {
  id: string;
  reader_id: string;
  operation: CardOperation;
  card_type: CardType;
  amount: string | null;
  state: SessionState;
  challenge: string;
  next_seq: number;
  expires_at: Date;
  opened_by_client: string;
  card_asn: string | null;
  context: SessionContext;
  result: Record<string, unknown> | null;
  refusal: SessionRefusal | null;
}

/** What INITIALIZE FOR LOAD told the host, kept for the TAC check. */
export interface LoadInit {
  oldBalance: number;
  onlineCounter: number;
  keyVersion: number;
  algorithmId: number;
  date: string;
  time: string;
}

/** What INITIALIZE FOR PURCHASE told the host and what the host sent with MAC1, kept for MAC2 and the TAC. */
export interface PurchaseInit {
  balance: number;
  offlineCounter: number;
  keyVersion: number;
  algorithmId: number;
  /** The card's random, hex: SESPK is derived again from it rather than stored. */
  random: string;
  terminalSerial: number;
  date: string;
  time: string;
}

export interface SessionContext {
  /** Who finishes the operation's business side when the card is done (a purpose's name, e.g. `counter-load`). */
  purpose?: string;
  purposeData?: Record<string, unknown>;
  /** The reader's encryption key (its encryption certificate's; a SINGLE_KEY reader's one key): sealed commands are wrapped to it. */
  publicKeyPem?: string;
  /** The reader's city certificate key: it signs every message after the hello. */
  signingKeyPem?: string;
  cardCompanyId?: string;
  cityCode?: string;
  /** The card's currency: the one of its card company's city. */
  currency?: string;
  init?: LoadInit;
  purchase?: PurchaseInit;
  /**
   * CPU: the counters of the earlier load and purchase this session asked the card to prove (GET
   * TRANSACTION PROVE), and the balance a balance read already read; `proofAsked` once the card has
   * answered (one proof round per session).
   */
  proving?: { load?: number; purchase?: number; balance?: number };
  proofAsked?: boolean;
  /** M1: the purse before and (expected) after the script. */
  m1?: { oldValue: number; newValue: number };
  /**
   * The card profile the commands sent so far were built with: at the hello, the reader's city's
   * (the card is not known yet); once the card said who issued it, its own (card-profile.ts).
   */
  profile?: CardProfile;
  /** The card's profile asked for other key indexes or files than the first batch used, and the session started again with them (once). */
  profileRestarted?: boolean;
}

/** A command for the reader: a plain APDU, or a sealed one carrying a secret. */
export interface ReaderCommand {
  apdu?: string;
  sealed?: SealedCommand;
  /** M1: ask the card's UID. */
  readUid?: boolean;
  /** M1: a script sealed to the reader. */
  sealedScript?: SealedCommand;
  /**
   * CPU: the ways to select the application, in order; the reader tries each until the card
   * accepts one and answers with that SELECT's answer. `apdu` then carries the first one's SELECT,
   * which is all a reader that predates profiles sends.
   */
  select?: SelectionStep[];
}

/** The card as the session identified it. */
export interface CardIdentity {
  asn: string;
  asnBytes: Buffer;
  cityCode: string;
  cardCompanyId: string;
  currency: string;
}

export interface IncomingMessage {
  sessionId: string;
  seq: number;
  body: string;
  signature: string;
  clientId: string;
}

/** The card as message 1 identified it, read back from the session. */
export function cardOf(session: SessionRow): CardIdentity {
  const c = session.context;
  return { asn: session.card_asn!, asnBytes: Buffer.from(session.card_asn!, 'hex'), cityCode: c.cityCode!, cardCompanyId: c.cardCompanyId!, currency: c.currency ?? 'CNY' };
}

export const hex = (b: Buffer) => b.toString('hex').toUpperCase();
