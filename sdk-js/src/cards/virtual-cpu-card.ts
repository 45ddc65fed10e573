/**
 * A virtual CPU card with a PBOC electronic purse (电子钱包) as city-union cards carry it (CJ/T 166
 * style), answering real APDUs: what a reader sends to a physical card it can send to this one, so
 * tests, examples and the demo drive the same host code a card on a counter would.
 *
 * Reference: /work/shared/reference/CARD-PROTOCOL.md (§1 files and commands, §2 load, §3 purchase,
 * §4 MACs and keys). The card computes with its own crypto (`card-crypto.ts`), never the host's.
 *
 * Behaviour worth knowing (choices where the reference is silent):
 *  - The card holds an e-purse (EP, P2 `02`) and, if issued with `eDeposit: true`, an e-deposit
 *    (ED, 电子存折, P2 `01`; the L1 vector loads one). Each has its own balance, online counter and
 *    offline counter; both share the key files and the transaction log. Load types are 02 / 01,
 *    purchase types 06 / 05. No PIN is modelled (a real ED purchase would VERIFY a PIN first).
 *  - Transaction state (after INITIALIZE) lives in the chip's RAM: any command other than the one
 *    that completes it — CREDIT after a load, DEBIT after a purchase — ends it, as does a refused
 *    completion (bad MAC, wrong length); the state machine is drawn at {@link Transaction}, and the
 *    commands are one table (`#COMMANDS`). It is not serialised; neither is the selected file.
 *  - The overdraft limit is reported as 000000 and never spent.
 *  - Status words where the reference is silent ({@link StatusWord}): a counter at FFFF refuses a new
 *    INITIALIZE with `94 02` (交易计数器到达最大值, as common PBOC status lists give it); a load that
 *    would take the balance over the card's maximum is refused at INITIALIZE FOR LOAD with `69 85`
 *    (conditions of use not satisfied) — **unconfirmed**; e-purse commands before the application
 *    is selected get `69 85`; a wrong Le on READ BINARY / READ RECORD gets `6C xx` (xx = the right
 *    length), a read past the end of a binary file `6B 00`.
 *  - GET TRANSACTION PROVE `80 5A 00 P2 02 <counter> 08` (P2 the transaction type: 02 / 01 load,
 *    06 / 05 purchase) answers MAC2 || TAC of the card's last transaction of that type on that purse
 *    if it was made at that counter (the counter as INITIALIZE returned it), else `94 06` (the MAC
 *    or TAC asked for is not available). The card keeps one proof per purse and kind (load,
 *    purchase): a purchase does not erase the proof of a load. For a load MAC2 is the host's MAC2
 *    the card accepted; for a purchase the card's own MAC2.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CardStateError, checkedInt, fromHex, toHex, uintBE } from './card-bytes.js';
import { purseCipher, type PurseAlgorithm, type PurseCipher } from './card-crypto.js';

export { ALGORITHM_IDS, type PurseAlgorithm } from './card-crypto.js';

/** The city-union (CJ/T 166) application identifier (§1). */
export const CITY_UNION_AID = 'A00000000386980701';
/** Name of the payment system environment (§1). */
export const PSE_NAME = '1PAY.SYS.DDF01';

/** Status words the card returns (SW1 SW2 as one number). */
export const StatusWord = {
  OK: 0x9000,
  WRONG_LENGTH: 0x6700,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  /** A load beyond the card's maximum balance: **unconfirmed**, see the module comment. */
  BALANCE_LIMIT_EXCEEDED: 0x6985,
  NOT_FOUND: 0x6a82,
  RECORD_NOT_FOUND: 0x6a83,
  WRONG_P1P2: 0x6a86,
  WRONG_OFFSET: 0x6b00,
  /** `6C xx`: wrong Le, xx is the length the card has. */
  WRONG_LE: 0x6c00,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  MAC_INVALID: 0x9302,
  INSUFFICIENT_BALANCE: 0x9401,
  /** Online or offline counter at FFFF (交易计数器到达最大值). */
  COUNTER_EXHAUSTED: 0x9402,
  KEY_INDEX_NOT_SUPPORTED: 0x9403,
  /** GET TRANSACTION PROVE: no proof of a transaction of that type at that counter (所需MAC/TAC不可用). */
  PROOF_NOT_AVAILABLE: 0x9406,
} as const;

/** Transaction types written in MACs and log records (§1). */
export const TRANSACTION_TYPES = {
  DEPOSIT_LOAD: 0x01,
  PURSE_LOAD: 0x02,
  DEPOSIT_PURCHASE: 0x05,
  PURSE_PURCHASE: 0x06,
} as const;

/** EP 电子钱包 (P2 `02`) or ED 电子存折 (P2 `01`). */
export type PurseKind = 'EP' | 'ED';

/** Default purse maximum: 1,000,000.00 yuan in fen. */
export const DEFAULT_MAX_BALANCE = 100_000_000;
/** Default capacity of the cyclic transaction log (SFI 0x18). */
export const DEFAULT_LOG_CAPACITY = 10;
/** Length of a transaction log record (§1). */
export const LOG_RECORD_LENGTH = 23;

/** One purse's balance (fen) and counters. */
export interface PurseState {
  balance: number;
  onlineCounter: number;
  offlineCounter: number;
}

/** What the card keeps of its last transaction of one kind: its counter (before the transaction), MAC2 and TAC, hex. */
export interface TransactionProof {
  counter: number;
  mac2: string;
  tac: string;
}

/** A card key with the index a terminal names it by and the version the card reports. */
export interface CpuCardKey {
  index: number;
  version: number;
  /** 16 bytes, hex. */
  key: string;
}

/** The card keys (already diversified by the ASN). */
export interface CpuCardKeys {
  /** DLK, load keys (圈存密钥). */
  load: CpuCardKey[];
  /** DPK, purchase keys (消费密钥). */
  purchase: CpuCardKey[];
  /** DTK, the TAC key, 16 bytes hex. */
  tac: string;
}

/** Everything the card keeps in its EEPROM, as plain JSON (hex strings for bytes). */
export interface VirtualCpuCardState {
  kind: 'onecard.virtual-cpu-card';
  version: 1;
  /** 8 bytes; bytes 2–3 (counting from 0) are the city code. */
  issuerId: string;
  appType: number;
  appVersion: number;
  /** Application serial number, 10 bytes. */
  asn: string;
  /** `YYYYMMDD`. */
  startDate: string;
  /** `YYYYMMDD`. */
  expiryDate: string;
  algorithm: PurseAlgorithm;
  /** The e-purse application's AID, hex (default the city-union AID; a T-Union card: A000000632010105). */
  aid?: string;
  /** The algorithm id byte INITIALIZE answers, when not the usual one for `algorithm` (a T-Union card answers 01 for 3DES). */
  algorithmId?: number;
  keys: CpuCardKeys;
  /** No load may take a balance above this (fen). */
  maxBalance: number;
  purses: { EP: PurseState; ED?: PurseState };
  /** The cyclic transaction log, newest record first, 23-byte records in hex. */
  log: { capacity: number; records: string[] };
  /** What GET TRANSACTION PROVE answers with, per purse: its last load's and its last purchase's proof (absent before the first). */
  proofs?: Partial<Record<PurseKind, PurseProofs>>;
}

/** A purse's last load and last purchase, as GET TRANSACTION PROVE proves them. */
export interface PurseProofs {
  load?: TransactionProof;
  purchase?: TransactionProof;
}

/** What a card is made with besides its keys. */
export interface CpuCardProfile {
  /** 10 bytes hex. */
  asn: string;
  /** 2 bytes hex (BCD), e.g. `4401`; written into the issuer id at bytes 2–3. */
  cityCode: string;
  algorithm: PurseAlgorithm;
  /** The e-purse application's AID, hex (default the city-union AID). */
  aid?: string;
  /** The algorithm id byte INITIALIZE answers, when not the usual one for `algorithm` ({@link ALGORITHM_IDS}). */
  algorithmId?: number;
  /** Opening e-purse balance in fen (default 0). */
  balance?: number;
  /** Carry an e-deposit (ED) too (default false). */
  eDeposit?: boolean;
  maxBalance?: number;
  /** 8 bytes hex; default `0000` + city code + `FFFFFFFF`. Must carry `cityCode` at bytes 2–3. */
  issuerId?: string;
  appType?: number;
  appVersion?: number;
  startDate?: string;
  expiryDate?: string;
  logCapacity?: number;
}

/** Issue a card from issuer master keys: the card is keyed with keys diversified by its ASN (§4). */
export interface IssueCpuCardOptions extends CpuCardProfile {
  /** 16-byte master keys, hex: MLK, MPK, MTK. */
  masterKeys: { load: string; purchase: string; tac: string };
  keyVersion: number;
  /** Key index of the load and purchase keys (default 1). */
  keyIndex?: number;
}

/** Make a card from keys already diversified (e.g. the reference vectors' DLK / DPK). */
export interface CpuCardWithKeysOptions extends CpuCardProfile {
  keys: CpuCardKeys;
}

/** Effects the card needs from outside: its random number generator. */
export interface VirtualCpuCardRuntime {
  /** Default `crypto.randomBytes`; inject a fixed source for deterministic tests. */
  random?: (length: number) => Uint8Array;
}

/** The city code a card's issuer id carries at bytes 2–3. */
export function cityCodeOf(issuerId: string): string {
  return fromHex(issuerId, 'issuerId', 8).subarray(2, 4).toString('hex').toUpperCase();
}

interface Apdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Buffer;
  /** The Le byte as sent (`00` means "up to 256"), absent for cases 1 and 3. */
  le: number | undefined;
}

/**
 * The card's transaction state, in RAM: idle (undefined), or an INITIALIZE that answered 90 00 and
 * awaits the one command that completes it. Each command ends the state it finds; only the
 * completion awaited can use it:
 *
 *     idle ── INITIALIZE FOR LOAD, 90 00 ───────▶ awaiting CREDIT FOR LOAD ──── CREDIT FOR LOAD ─────▶ idle
 *     idle ── INITIALIZE FOR PURCHASE, 90 00 ───▶ awaiting DEBIT FOR PURCHASE ── DEBIT FOR PURCHASE ──▶ idle
 *     awaiting … ── any other command (answered as from idle), a refused completion, a reset ──▶ idle
 *
 * A completion that finds another state (idle included) is refused with 69 85.
 */
type Transaction =
  | { awaiting: 'CREDIT FOR LOAD'; purse: PurseKind; amount: number; terminal: Buffer; counter: number; sessionKey: Buffer }
  | { awaiting: 'DEBIT FOR PURCHASE'; purse: PurseKind; amount: number; terminal: Buffer; counter: number; random: Buffer; purchaseKey: Buffer };

type Selected = 'MF' | 'PSE' | 'ADF';

/** ISO 7816-4 inter-industry commands. */
const CLA_ISO = 0x00;
/** PBOC e-purse (proprietary) commands. */
const CLA_PBOC = 0x80;

/** A command the card answers: the CLA it belongs to, and what answers it, given the transaction the command ended. */
interface Command {
  cla: number;
  name: string;
  answer: (card: VirtualCpuCard, c: Apdu, ended: Transaction | undefined) => Uint8Array;
}

const SFI_PSE_DIRECTORY = 0x01;
const SFI_PUBLIC_DATA = 0x15;
const SFI_TRANSACTION_LOG = 0x18;
const MAX_COUNTER = 0xffff;
const PURSE_OF_P2: Readonly<Record<number, PurseKind>> = { 0x01: 'ED', 0x02: 'EP' };

function reply(sw: number, data: Uint8Array = Buffer.alloc(0)): Uint8Array {
  return Uint8Array.from(Buffer.concat([data, uintBE(sw, 2)]));
}

/** Splits a short APDU into its parts (ISO 7816-3 cases 1–4), or undefined if its length is wrong. */
function parseApdu(apdu: Uint8Array): Apdu | undefined {
  if (apdu.length < 4) return undefined;
  const bytes = Buffer.from(apdu);
  const header = { cla: bytes[0]!, ins: bytes[1]!, p1: bytes[2]!, p2: bytes[3]! };
  if (bytes.length === 4) return { ...header, data: Buffer.alloc(0), le: undefined };
  if (bytes.length === 5) return { ...header, data: Buffer.alloc(0), le: bytes[4]! };
  const lc = bytes[4]!;
  if (lc === 0) return undefined;
  if (bytes.length === 5 + lc) return { ...header, data: bytes.subarray(5), le: undefined };
  if (bytes.length === 6 + lc) return { ...header, data: bytes.subarray(5, 5 + lc), le: bytes[5 + lc]! };
  return undefined;
}

/** Le absent, `00`, or exactly `expected`. */
function leAccepts(le: number | undefined, expected: number): boolean {
  return le === undefined || le === 0 || le === expected;
}

function tlv(tag: number[], value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(tag), Buffer.from([value.length]), value]);
}

function checkedDate(value: string, field: string): string {
  if (!/^\d{8}$/.test(value)) throw new CardStateError(`${field} must be YYYYMMDD`, field);
  return value;
}

function checkedKeys(keys: CpuCardKey[], field: string): CpuCardKey[] {
  if (!Array.isArray(keys) || keys.length === 0) throw new CardStateError(`${field} needs at least one key`, field);
  const seen = new Set<number>();
  return keys.map((k, i) => {
    const index = checkedInt(k.index, `${field}[${i}].index`, 0, 0xff);
    if (seen.has(index)) throw new CardStateError(`${field} has key index ${index} twice`, `${field}[${i}].index`);
    seen.add(index);
    return { index, version: checkedInt(k.version, `${field}[${i}].version`, 0, 0xff), key: toHex(fromHex(k.key, `${field}[${i}].key`, 16)) };
  });
}

function checkedProof(proof: TransactionProof | undefined, field: string): TransactionProof | undefined {
  if (proof === undefined) return undefined;
  return { counter: checkedInt(proof.counter, `${field}.counter`, 0, MAX_COUNTER), mac2: toHex(fromHex(proof.mac2, `${field}.mac2`, 4)), tac: toHex(fromHex(proof.tac, `${field}.tac`, 4)) };
}

function checkedProofs(proofs: VirtualCpuCardState['proofs']): VirtualCpuCardState['proofs'] {
  if (proofs === undefined) return undefined;
  const out: Partial<Record<PurseKind, PurseProofs>> = {};
  for (const kind of ['EP', 'ED'] as const) {
    const p = proofs[kind];
    if (!p) continue;
    const load = checkedProof(p.load, `proofs.${kind}.load`);
    const purchase = checkedProof(p.purchase, `proofs.${kind}.purchase`);
    out[kind] = { ...(load ? { load } : {}), ...(purchase ? { purchase } : {}) };
  }
  return out;
}

function checkedPurse(purse: PurseState, field: string, maxBalance: number): PurseState {
  if (typeof purse !== 'object' || purse === null) throw new CardStateError(`${field} is missing`, field);
  return {
    balance: checkedInt(purse.balance, `${field}.balance`, 0, maxBalance),
    onlineCounter: checkedInt(purse.onlineCounter, `${field}.onlineCounter`, 0, MAX_COUNTER),
    offlineCounter: checkedInt(purse.offlineCounter, `${field}.offlineCounter`, 0, MAX_COUNTER),
  };
}

/** A validated, normalised copy of a saved state, or a CardStateError naming the bad field. */
function checkedState(state: VirtualCpuCardState): VirtualCpuCardState {
  if (state?.kind !== 'onecard.virtual-cpu-card' || state.version !== 1) {
    throw new CardStateError('not a saved virtual CPU card (kind/version)', 'kind');
  }
  if (state.algorithm !== '3DES' && state.algorithm !== 'SM4') throw new CardStateError('algorithm must be 3DES or SM4', 'algorithm');
  const maxBalance = checkedInt(state.maxBalance, 'maxBalance', 0, 0xffffffff);
  const capacity = checkedInt(state.log?.capacity, 'log.capacity', 1, 0xff);
  if (!Array.isArray(state.log.records) || state.log.records.length > capacity) {
    throw new CardStateError('log.records must be an array of at most log.capacity records', 'log.records');
  }
  return {
    kind: state.kind,
    version: 1,
    issuerId: toHex(fromHex(state.issuerId, 'issuerId', 8)),
    appType: checkedInt(state.appType, 'appType', 0, 0xff),
    appVersion: checkedInt(state.appVersion, 'appVersion', 0, 0xff),
    asn: toHex(fromHex(state.asn, 'asn', 10)),
    startDate: checkedDate(state.startDate, 'startDate'),
    expiryDate: checkedDate(state.expiryDate, 'expiryDate'),
    algorithm: state.algorithm,
    ...(state.aid !== undefined ? { aid: toHex(fromHex(state.aid, 'aid')) } : {}),
    ...(state.algorithmId !== undefined ? { algorithmId: checkedInt(state.algorithmId, 'algorithmId', 0, 0xff) } : {}),
    keys: {
      load: checkedKeys(state.keys?.load, 'keys.load'),
      purchase: checkedKeys(state.keys?.purchase, 'keys.purchase'),
      tac: toHex(fromHex(state.keys?.tac ?? '', 'keys.tac', 16)),
    },
    maxBalance,
    purses: {
      EP: checkedPurse(state.purses?.EP, 'purses.EP', maxBalance),
      ...(state.purses.ED ? { ED: checkedPurse(state.purses.ED, 'purses.ED', maxBalance) } : {}),
    },
    log: { capacity, records: state.log.records.map((r, i) => toHex(fromHex(r, `log.records[${i}]`, LOG_RECORD_LENGTH))) },
    ...(state.proofs ? { proofs: checkedProofs(state.proofs) } : {}),
  };
}

function stateFromProfile(profile: CpuCardProfile, keys: CpuCardKeys): VirtualCpuCardState {
  const cityCode = toHex(fromHex(profile.cityCode, 'cityCode', 2));
  const issuerId = profile.issuerId ?? `0000${cityCode}FFFFFFFF`;
  if (cityCodeOf(issuerId) !== cityCode) throw new CardStateError('issuerId must carry cityCode at bytes 2–3', 'issuerId');
  const maxBalance = profile.maxBalance ?? DEFAULT_MAX_BALANCE;
  const fresh = (balance: number): PurseState => ({ balance, onlineCounter: 0, offlineCounter: 0 });
  return checkedState({
    kind: 'onecard.virtual-cpu-card',
    version: 1,
    issuerId,
    appType: profile.appType ?? 0x01,
    appVersion: profile.appVersion ?? 0x01,
    asn: profile.asn,
    startDate: profile.startDate ?? '20250101',
    expiryDate: profile.expiryDate ?? '20341231',
    algorithm: profile.algorithm,
    ...(profile.aid !== undefined ? { aid: profile.aid } : {}),
    ...(profile.algorithmId !== undefined ? { algorithmId: profile.algorithmId } : {}),
    keys,
    maxBalance,
    purses: { EP: fresh(profile.balance ?? 0), ...(profile.eDeposit ? { ED: fresh(0) } : {}) },
    log: { capacity: profile.logCapacity ?? DEFAULT_LOG_CAPACITY, records: [] },
  });
}

/**
 * A PBOC e-purse CPU card. `transmit(apdu)` answers like the chip: response data || SW1 SW2.
 *
 * @example
 * const card = VirtualCpuCard.issue({ asn, cityCode: '4401', masterKeys, keyVersion: 1, algorithm: '3DES' });
 * card.transmit(Buffer.from('00A4040009A00000000386980701', 'hex')); // FCI || 90 00
 */
export class VirtualCpuCard {
  readonly #state: VirtualCpuCardState;
  readonly #cipher: PurseCipher;
  readonly #random: (length: number) => Uint8Array;
  #selected: Selected = 'MF';
  #transaction: Transaction | undefined;

  /** Every command the card answers, by INS: the whole command path is this table and the transaction state ({@link Transaction}). */
  static readonly #COMMANDS: ReadonlyMap<number, Command> = new Map<number, Command>([
    [0xa4, { cla: CLA_ISO, name: 'SELECT', answer: (card, c) => card.#select(c) }],
    [0xb0, { cla: CLA_ISO, name: 'READ BINARY', answer: (card, c) => card.#readBinary(c) }],
    [0xb2, { cla: CLA_ISO, name: 'READ RECORD', answer: (card, c) => card.#readRecord(c) }],
    [0x5c, { cla: CLA_PBOC, name: 'GET BALANCE', answer: (card, c) => card.#getBalance(c) }],
    // P1 names the operation: 00 load, 01 purchase (not composite purchase, 03).
    [0x50, { cla: CLA_PBOC, name: 'INITIALIZE FOR LOAD / PURCHASE', answer: (card, c) => (c.p1 === 0x00 ? card.#initializeForLoad(c) : c.p1 === 0x01 ? card.#initializeForPurchase(c) : reply(StatusWord.WRONG_P1P2)) }],
    [0x52, { cla: CLA_PBOC, name: 'CREDIT FOR LOAD', answer: (card, c, ended) => card.#creditForLoad(c, ended) }],
    [0x54, { cla: CLA_PBOC, name: 'DEBIT FOR PURCHASE', answer: (card, c, ended) => card.#debitForPurchase(c, ended) }],
    [0x5a, { cla: CLA_PBOC, name: 'GET TRANSACTION PROVE', answer: (card, c) => card.#getTransactionProve(c) }],
  ]);

  private constructor(state: VirtualCpuCardState, runtime: VirtualCpuCardRuntime) {
    this.#state = state;
    this.#cipher = purseCipher(state.algorithm);
    this.#random = runtime.random ?? randomBytes;
  }

  /**
   * Issues (personalises) a card: the master keys are diversified by the ASN (§4) and only the
   * diversified DLK, DPK and DTK are stored on the card.
   */
  static issue(options: IssueCpuCardOptions, runtime: VirtualCpuCardRuntime = {}): VirtualCpuCard {
    const cipher = purseCipher(options.algorithm);
    const asn = fromHex(options.asn, 'asn', 10);
    const diversified = (master: string, field: string) => toHex(cipher.diversify(fromHex(master, field, 16), asn));
    const index = options.keyIndex ?? 1;
    const version = options.keyVersion;
    const keys: CpuCardKeys = {
      load: [{ index, version, key: diversified(options.masterKeys.load, 'masterKeys.load') }],
      purchase: [{ index, version, key: diversified(options.masterKeys.purchase, 'masterKeys.purchase') }],
      tac: diversified(options.masterKeys.tac, 'masterKeys.tac'),
    };
    return new VirtualCpuCard(stateFromProfile(options, keys), runtime);
  }

  /** A card keyed with already-diversified keys (test vectors, keys from a key ceremony). */
  static withKeys(options: CpuCardWithKeysOptions, runtime: VirtualCpuCardRuntime = {}): VirtualCpuCard {
    return new VirtualCpuCard(stateFromProfile(options, options.keys), runtime);
  }

  /** A card from a saved state ({@link toJSON}); throws CardStateError if the state is malformed. */
  static fromJSON(state: VirtualCpuCardState, runtime: VirtualCpuCardRuntime = {}): VirtualCpuCard {
    return new VirtualCpuCard(checkedState(state), runtime);
  }

  /** The card's persistent state as plain JSON (a copy). */
  toJSON(): VirtualCpuCardState {
    return structuredClone(this.#state);
  }

  /** The application serial number, hex. */
  get asn(): string {
    return this.#state.asn;
  }

  /** Power cycle: the card forgets the selected application and any transaction in progress. */
  reset(): void {
    this.#selected = 'MF';
    this.#transaction = undefined;
  }

  /** Processes one command APDU and returns the response APDU (data || SW1 SW2). */
  transmit(apdu: Uint8Array): Uint8Array {
    // Whatever comes next ends the transaction in progress; only the completion it awaits may use it.
    const ended = this.#transaction;
    this.#transaction = undefined;
    const command = parseApdu(apdu);
    if (!command) return reply(StatusWord.WRONG_LENGTH);
    const known = VirtualCpuCard.#COMMANDS.get(command.ins);
    if (!known) return reply(StatusWord.INS_NOT_SUPPORTED);
    if (known.cla !== command.cla) return reply(StatusWord.CLA_NOT_SUPPORTED);
    return known.answer(this, command, ended);
  }

  // ——— ISO 7816-4 file commands ———

  /** SELECT by DF name (P1 04: the PSE or the city-union AID) or by file id (P1 00: 3F00, 1001). */
  #select(c: Apdu): Uint8Array {
    if (c.p2 !== 0x00 || (c.p1 !== 0x04 && c.p1 !== 0x00)) return reply(StatusWord.WRONG_P1P2);
    if (c.data.length === 0 || c.data.length > 16) return reply(StatusWord.WRONG_LENGTH);
    const aid = fromHex(this.#state.aid ?? CITY_UNION_AID, 'aid');
    const pse = Buffer.from(PSE_NAME, 'ascii');
    let target: Selected | undefined;
    if (c.p1 === 0x04) target = c.data.equals(aid) ? 'ADF' : c.data.equals(pse) ? 'PSE' : undefined;
    else if (c.data.length !== 2) return reply(StatusWord.WRONG_LENGTH);
    else target = c.data.equals(Buffer.from([0x3f, 0x00])) ? 'MF' : c.data.equals(Buffer.from([0x10, 0x01])) ? 'ADF' : undefined;
    if (!target) return reply(StatusWord.NOT_FOUND);
    this.#selected = target;
    if (target === 'ADF') {
      const proprietary = tlv([0x9f, 0x08], Buffer.from([this.#state.appVersion]));
      return reply(StatusWord.OK, tlv([0x6f], Buffer.concat([tlv([0x84], aid), tlv([0xa5], proprietary)])));
    }
    // The PSE (and the MF, its legacy-path equivalent) points to its directory file, SFI 1.
    const proprietary = tlv([0x88], Buffer.from([SFI_PSE_DIRECTORY]));
    return reply(StatusWord.OK, tlv([0x6f], Buffer.concat([tlv([0x84], pse), tlv([0xa5], proprietary)])));
  }

  /** READ BINARY by SFI (P1 = 80 | SFI, P2 = offset); only the public basic data, SFI 0x15. */
  #readBinary(c: Apdu): Uint8Array {
    if (c.data.length > 0 || c.le === undefined) return reply(StatusWord.WRONG_LENGTH);
    if ((c.p1 & 0xe0) !== 0x80 || (c.p1 & 0x1f) !== SFI_PUBLIC_DATA || this.#selected !== 'ADF') return reply(StatusWord.NOT_FOUND);
    const file = this.#publicData();
    if (c.p2 >= file.length) return reply(StatusWord.WRONG_OFFSET);
    const rest = file.subarray(c.p2);
    if (c.le === 0) return reply(StatusWord.OK, rest);
    if (c.le > rest.length) return reply(StatusWord.WRONG_LE | rest.length);
    return reply(StatusWord.OK, rest.subarray(0, c.le));
  }

  /** SFI 0x15: issuer id, app type, version, ASN, start date, expiry date (§1). */
  #publicData(): Buffer {
    const s = this.#state;
    return Buffer.concat([
      fromHex(s.issuerId, 'issuerId'),
      Buffer.from([s.appType, s.appVersion]),
      fromHex(s.asn, 'asn'),
      fromHex(s.startDate, 'startDate'),
      fromHex(s.expiryDate, 'expiryDate'),
    ]);
  }

  /** READ RECORD nn (P2 = SFI << 3 | 4): the transaction log in the ADF, the directory in the PSE. */
  #readRecord(c: Apdu): Uint8Array {
    if (c.data.length > 0 || c.le === undefined) return reply(StatusWord.WRONG_LENGTH);
    if ((c.p2 & 0x07) !== 0x04 || c.p1 === 0) return reply(StatusWord.WRONG_P1P2);
    const sfi = c.p2 >> 3;
    let records: Buffer[];
    if (sfi === SFI_TRANSACTION_LOG && this.#selected === 'ADF') {
      records = this.#state.log.records.map((r) => fromHex(r, 'log'));
    } else if (sfi === SFI_PSE_DIRECTORY && this.#selected !== 'ADF') {
      records = [this.#directoryRecord()];
    } else {
      return reply(StatusWord.NOT_FOUND);
    }
    const record = records[c.p1 - 1];
    if (!record) return reply(StatusWord.RECORD_NOT_FOUND);
    if (c.le !== 0 && c.le !== record.length) return reply(StatusWord.WRONG_LE | record.length);
    return reply(StatusWord.OK, record);
  }

  /** The PSE directory's one entry: the card's application. */
  #directoryRecord(): Buffer {
    const entry = Buffer.concat([tlv([0x4f], fromHex(this.#state.aid ?? CITY_UNION_AID, 'aid')), tlv([0x50], Buffer.from('ONECARD', 'ascii'))]);
    return tlv([0x70], tlv([0x61], entry));
  }

  // ——— PBOC e-purse commands ———

  /** The purse P2 names, if the card has it. */
  #purse(p2: number): PurseKind | undefined {
    const kind = PURSE_OF_P2[p2];
    return kind && this.#state.purses[kind] ? kind : undefined;
  }

  #purseState(kind: PurseKind): PurseState {
    return this.#state.purses[kind]!;
  }

  /** GET BALANCE `80 5C 00 P2 04`. */
  #getBalance(c: Apdu): Uint8Array {
    if (c.data.length > 0 || !leAccepts(c.le, 4) || c.le === undefined) return reply(StatusWord.WRONG_LENGTH);
    const purse = this.#purse(c.p2);
    if (c.p1 !== 0x00 || !purse) return reply(StatusWord.WRONG_P1P2);
    if (this.#selected !== 'ADF') return reply(StatusWord.CONDITIONS_NOT_SATISFIED);
    return reply(StatusWord.OK, uintBE(this.#purseState(purse).balance, 4));
  }

  /** The checks both INITIALIZE commands share; a status word if one refuses. */
  #initializeChecks(c: Apdu, le: number, keys: CpuCardKey[]): { purse: PurseKind; key: CpuCardKey; amount: number; terminal: Buffer } | number {
    if (c.data.length !== 0x0b || !leAccepts(c.le, le)) return StatusWord.WRONG_LENGTH;
    const purse = this.#purse(c.p2);
    if (!purse) return StatusWord.WRONG_P1P2;
    if (this.#selected !== 'ADF') return StatusWord.CONDITIONS_NOT_SATISFIED;
    const key = keys.find((k) => k.index === c.data[0]);
    if (!key) return StatusWord.KEY_INDEX_NOT_SUPPORTED;
    return { purse, key, amount: c.data.readUInt32BE(1), terminal: Buffer.from(c.data.subarray(5, 11)) };
  }

  /** INITIALIZE FOR LOAD `80 50 00 P2 0B` key index, amount, terminal → … MAC1 (§2). */
  #initializeForLoad(c: Apdu): Uint8Array {
    const checked = this.#initializeChecks(c, 0x10, this.#state.keys.load);
    if (typeof checked === 'number') return reply(checked);
    const { purse, key, amount, terminal } = checked;
    const state = this.#purseState(purse);
    if (state.onlineCounter >= MAX_COUNTER) return reply(StatusWord.COUNTER_EXHAUSTED);
    if (state.balance + amount > this.#state.maxBalance) return reply(StatusWord.BALANCE_LIMIT_EXCEEDED);
    const random = this.#randomChallenge();
    const counter = uintBE(state.onlineCounter, 2);
    const sessionKey = this.#cipher.sessionKey(fromHex(key.key, 'key'), Buffer.concat([random, counter, Buffer.from([0x80, 0x00])]));
    const type = purse === 'EP' ? TRANSACTION_TYPES.PURSE_LOAD : TRANSACTION_TYPES.DEPOSIT_LOAD;
    const oldBalance = uintBE(state.balance, 4);
    const mac1 = this.#cipher.mac(sessionKey, Buffer.concat([oldBalance, uintBE(amount, 4), Buffer.from([type]), terminal]));
    this.#transaction = { awaiting: 'CREDIT FOR LOAD', purse, amount, terminal, counter: state.onlineCounter, sessionKey };
    return reply(StatusWord.OK, Buffer.concat([oldBalance, counter, Buffer.from([key.version, this.#algorithmId]), random, mac1]));
  }

  /** CREDIT FOR LOAD `80 52 00 00 0B` date, time, MAC2 → TAC (§2): completes the load INITIALIZE began. */
  #creditForLoad(c: Apdu, load: Transaction | undefined): Uint8Array {
    if (c.data.length !== 0x0b || !leAccepts(c.le, 4)) return reply(StatusWord.WRONG_LENGTH);
    if (c.p1 !== 0x00 || c.p2 !== 0x00) return reply(StatusWord.WRONG_P1P2);
    if (load?.awaiting !== 'CREDIT FOR LOAD') return reply(StatusWord.CONDITIONS_NOT_SATISFIED);
    const dateTime = c.data.subarray(0, 7);
    const type = load.purse === 'EP' ? TRANSACTION_TYPES.PURSE_LOAD : TRANSACTION_TYPES.DEPOSIT_LOAD;
    const amount = uintBE(load.amount, 4);
    const expected = this.#cipher.mac(load.sessionKey, Buffer.concat([amount, Buffer.from([type]), load.terminal, dateTime]));
    if (!timingSafeEqual(expected, c.data.subarray(7, 11))) return reply(StatusWord.MAC_INVALID);
    const state = this.#purseState(load.purse);
    state.balance += load.amount;
    state.onlineCounter += 1;
    // The TAC carries the counter as INITIALIZE returned it, before the increment (§2).
    const tac = this.#tac(Buffer.concat([uintBE(state.balance, 4), uintBE(load.counter, 2), amount, Buffer.from([type]), load.terminal, dateTime]));
    this.#appendLog(load.counter, load.amount, type, load.terminal, dateTime);
    this.#keepProof(load.purse, 'load', { counter: load.counter, mac2: toHex(c.data.subarray(7, 11)), tac: toHex(tac) });
    return reply(StatusWord.OK, tac);
  }

  /** INITIALIZE FOR PURCHASE `80 50 01 P2 0B` key index, amount, terminal → balance … random (§3). */
  #initializeForPurchase(c: Apdu): Uint8Array {
    const checked = this.#initializeChecks(c, 0x0f, this.#state.keys.purchase);
    if (typeof checked === 'number') return reply(checked);
    const { purse, key, amount, terminal } = checked;
    const state = this.#purseState(purse);
    if (state.offlineCounter >= MAX_COUNTER) return reply(StatusWord.COUNTER_EXHAUSTED);
    if (state.balance < amount) return reply(StatusWord.INSUFFICIENT_BALANCE);
    const random = this.#randomChallenge();
    this.#transaction = { awaiting: 'DEBIT FOR PURCHASE', purse, amount, terminal, counter: state.offlineCounter, random, purchaseKey: fromHex(key.key, 'key') };
    const overdraftLimit = Buffer.alloc(3);
    return reply(StatusWord.OK, Buffer.concat([uintBE(state.balance, 4), uintBE(state.offlineCounter, 2), overdraftLimit, Buffer.from([key.version, this.#algorithmId]), random]));
  }

  /** DEBIT FOR PURCHASE `80 54 01 00 0F` terminal serial, date, time, MAC1 → TAC || MAC2 (§3): completes the purchase INITIALIZE began. */
  #debitForPurchase(c: Apdu, purchase: Transaction | undefined): Uint8Array {
    if (c.data.length !== 0x0f || !leAccepts(c.le, 8)) return reply(StatusWord.WRONG_LENGTH);
    if (c.p1 !== 0x01 || c.p2 !== 0x00) return reply(StatusWord.WRONG_P1P2);
    if (purchase?.awaiting !== 'DEBIT FOR PURCHASE') return reply(StatusWord.CONDITIONS_NOT_SATISFIED);
    const serial = c.data.subarray(0, 4);
    const dateTime = c.data.subarray(4, 11);
    const sessionKey = this.#cipher.sessionKey(purchase.purchaseKey, Buffer.concat([purchase.random, uintBE(purchase.counter, 2), serial.subarray(2, 4)]));
    const type = purchase.purse === 'EP' ? TRANSACTION_TYPES.PURSE_PURCHASE : TRANSACTION_TYPES.DEPOSIT_PURCHASE;
    const amount = uintBE(purchase.amount, 4);
    const expected = this.#cipher.mac(sessionKey, Buffer.concat([amount, Buffer.from([type]), purchase.terminal, dateTime]));
    if (!timingSafeEqual(expected, c.data.subarray(11, 15))) return reply(StatusWord.MAC_INVALID);
    const state = this.#purseState(purchase.purse);
    state.balance -= purchase.amount;
    state.offlineCounter += 1;
    const tac = this.#tac(Buffer.concat([amount, Buffer.from([type]), purchase.terminal, serial, dateTime]));
    const mac2 = this.#cipher.mac(sessionKey, amount);
    this.#appendLog(purchase.counter, purchase.amount, type, purchase.terminal, dateTime);
    this.#keepProof(purchase.purse, 'purchase', { counter: purchase.counter, mac2: toHex(mac2), tac: toHex(tac) });
    return reply(StatusWord.OK, Buffer.concat([tac, mac2]));
  }

  /** GET TRANSACTION PROVE `80 5A 00 P2 02` counter → MAC2 || TAC of the last transaction of type P2, if made at that counter. */
  #getTransactionProve(c: Apdu): Uint8Array {
    if (c.data.length !== 2 || !leAccepts(c.le, 8)) return reply(StatusWord.WRONG_LENGTH);
    const kind = ({ 0x02: ['EP', 'load'], 0x01: ['ED', 'load'], 0x06: ['EP', 'purchase'], 0x05: ['ED', 'purchase'] } as const)[c.p2 as 1 | 2 | 5 | 6];
    if (c.p1 !== 0x00 || !kind || !this.#state.purses[kind[0]]) return reply(StatusWord.WRONG_P1P2);
    if (this.#selected !== 'ADF') return reply(StatusWord.CONDITIONS_NOT_SATISFIED);
    const proof = this.#state.proofs?.[kind[0]]?.[kind[1]];
    if (!proof || proof.counter !== c.data.readUInt16BE(0)) return reply(StatusWord.PROOF_NOT_AVAILABLE);
    return reply(StatusWord.OK, Buffer.concat([fromHex(proof.mac2, 'mac2'), fromHex(proof.tac, 'tac')]));
  }

  /** The proof GET TRANSACTION PROVE will answer with, replacing the purse's last one of that kind. */
  #keepProof(purse: PurseKind, kind: keyof PurseProofs, proof: TransactionProof): void {
    const proofs = (this.#state.proofs ??= {});
    proofs[purse] = { ...proofs[purse], [kind]: proof };
  }

  #tac(data: Buffer): Buffer {
    return this.#cipher.mac(this.#cipher.tacKey(fromHex(this.#state.keys.tac, 'keys.tac')), data);
  }

  /** The algorithm id byte INITIALIZE answers. */
  get #algorithmId(): number {
    return this.#state.algorithmId ?? this.#cipher.id;
  }

  #randomChallenge(): Buffer {
    const random = Buffer.from(this.#random(4));
    if (random.length !== 4) throw new RangeError('the random source must return the bytes asked for');
    return random;
  }

  /** Writes a record to the cyclic log (SFI 0x18): newest first, the oldest falls off (§1). */
  #appendLog(counter: number, amount: number, type: number, terminal: Buffer, dateTime: Buffer): void {
    const overdraftLimit = Buffer.alloc(3);
    const record = Buffer.concat([uintBE(counter, 2), overdraftLimit, uintBE(amount, 4), Buffer.from([type]), terminal, dateTime]);
    const log = this.#state.log;
    log.records = [toHex(record), ...log.records].slice(0, log.capacity);
  }
}
