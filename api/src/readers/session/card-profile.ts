import { ALG_3DES, ALG_SM4, ALGORITHM_ID_MEANINGS, type AlgorithmId } from '../../cardcrypto/algorithm.js';

/**
 * A card profile (issue 24 item 2): how the engine talks to one card company's cards, or to one
 * of its card products. Today's behaviour is `DEFAULT_CARD_PROFILE`; each card company has a row
 * (table `card_profile`) and may add one per product, matched by the application the card selected.
 * Pure: bytes and rules, no database (card-profile.service.ts reads and writes the rows).
 */

/** One way to reach the e-purse application, tried in the profile's order (CARD-PROTOCOL.md §1). */
export type SelectionStep =
  /** SELECT by DF name: `00 A4 04 00` + the AID. */
  | { kind: 'AID'; aid: string }
  /** SELECT the payment system environment by name, then the applications its directory lists. */
  | { kind: 'PSE'; name: string }
  /** SELECT by file id, one after the other (the legacy path `3F00`, `1001`). */
  | { kind: 'PATH'; path: string[] };

/** Where an M1 card keeps its purse and how its sector key is derived. */
export interface M1Layout {
  purseSector: number;
  valueBlock: number;
  backupBlock: number;
  keyType: 'A' | 'B';
  /** The derivation the key store runs (`m1SectorKey`): the only one implemented is UID_SECTOR_3DES. */
  keyDerivation: 'UID_SECTOR_3DES';
}

export interface CardProfile {
  /** Null for the built-in default (a card company without a row). */
  id: string | null;
  cardCompanyId: string | null;
  /** Null: the card company's profile; otherwise a product's, which applies to cards that selected one of its AIDs. */
  product: string | null;
  selection: SelectionStep[];
  loadKeyIndex: number;
  purchaseKeyIndex: number;
  /** Algorithm id bytes the card may answer (ALGORITHM_ID_MEANINGS gives each one's cipher). */
  algorithmIds: number[];
  /** SFI of the public basic data (issuer id, ASN…). */
  publicDataSfi: number;
  /** SFI of the cyclic transaction log (23-byte records). */
  transactionLogSfi: number;
  m1: M1Layout;
  /** Warnings (62xx, 63xx) taken as success, the data they carry read as with 9000. */
  toleratedStatusWords: string[];
}

export const CITY_UNION_AID = 'A00000000386980701';
export const T_UNION_AID = 'A000000632010105';
export const PSE_NAME = '1PAY.SYS.DDF01';

/** Today's behaviour, for every card company until it sets its own (and seeded as its row). */
export const DEFAULT_CARD_PROFILE: CardProfile = {
  id: null,
  cardCompanyId: null,
  product: null,
  selection: [{ kind: 'AID', aid: CITY_UNION_AID }],
  loadKeyIndex: 1,
  purchaseKeyIndex: 1,
  algorithmIds: [ALG_3DES, ALG_SM4],
  publicDataSfi: 0x15,
  transactionLogSfi: 0x18,
  m1: { purseSector: 1, valueBlock: 4, backupBlock: 5, keyType: 'B', keyDerivation: 'UID_SECTOR_3DES' },
  toleratedStatusWords: [],
};

/** Why a profile is refused; the API turns each into a userError (docs/errors.md). */
export type ProfileProblemCode = 'UNKNOWN_ALGORITHM_ID' | 'MALFORMED_AID' | 'INVALID_SFI' | 'INVALID_INPUT';
export interface ProfileProblem {
  code: ProfileProblemCode;
  field: (string | number)[];
  message: string;
}

const HEX = /^([0-9A-F]{2})+$/;

/** Every rule a profile must meet before a reader ever acts on it; empty when it is sound. */
export function profileProblems(p: Omit<CardProfile, 'id' | 'cardCompanyId'>): ProfileProblem[] {
  const problems: ProfileProblem[] = [];
  const bad = (code: ProfileProblemCode, field: (string | number)[], message: string) => problems.push({ code, field, message });
  if (p.product !== null && !/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(p.product)) bad('INVALID_INPUT', ['product'], 'a product name is 1–64 letters, digits, spaces, dots, dashes or underscores');
  if (p.selection.length === 0 || p.selection.length > 8) bad('INVALID_INPUT', ['selection'], 'a profile selects its application in 1 to 8 ways');
  p.selection.forEach((s, i) => {
    if (s.kind === 'AID') {
      // ISO/IEC 7816-5: a 5-byte registered application provider id and up to 11 bytes more.
      if (!HEX.test(s.aid) || s.aid.length < 10 || s.aid.length > 32) bad('MALFORMED_AID', ['selection', i, 'value'], `${s.aid} is not an AID (5 to 16 bytes, hex)`);
    } else if (s.kind === 'PSE') {
      if (!/^[\x21-\x7e]{1,16}$/.test(s.name)) bad('INVALID_INPUT', ['selection', i, 'value'], 'a PSE name is 1 to 16 printable ASCII characters');
    } else if (s.path.length === 0 || s.path.length > 4 || s.path.some((f) => !/^[0-9A-F]{4}$/.test(f))) {
      bad('INVALID_INPUT', ['selection', i, 'value'], 'a path is 1 to 4 file ids of 4 hex digits, e.g. 3F00/1001');
    }
  });
  const aids = p.selection.flatMap((s) => (s.kind === 'AID' ? [s.aid] : []));
  if (new Set(aids).size !== aids.length) bad('INVALID_INPUT', ['selection'], 'an AID is listed twice');
  if (p.product !== null && aids.length === 0) bad('INVALID_INPUT', ['selection'], 'a product profile names the AIDs its cards answer (a card is matched to its product by the AID it selected)');
  for (const [field, index] of [['loadKeyIndex', p.loadKeyIndex], ['purchaseKeyIndex', p.purchaseKeyIndex]] as const) {
    if (!Number.isInteger(index) || index < 0 || index > 0xff) bad('INVALID_INPUT', [field], 'a key index is one byte (0–255)');
  }
  if (p.algorithmIds.length === 0) bad('UNKNOWN_ALGORITHM_ID', ['algorithmIds'], 'a profile accepts at least one algorithm id');
  p.algorithmIds.forEach((id, i) => {
    if (!ALGORITHM_ID_MEANINGS.has(id)) bad('UNKNOWN_ALGORITHM_ID', ['algorithmIds', i], `algorithm id ${id} has no known meaning (known: ${[...ALGORITHM_ID_MEANINGS.keys()].join(', ')})`);
  });
  if (new Set(p.algorithmIds).size !== p.algorithmIds.length) bad('INVALID_INPUT', ['algorithmIds'], 'an algorithm id is listed twice');
  // A short EF identifier is 5 bits; 0 and 31 are reserved (ISO/IEC 7816-4 §7.2.2).
  for (const [field, sfi] of [['publicDataSfi', p.publicDataSfi], ['transactionLogSfi', p.transactionLogSfi]] as const) {
    if (!Number.isInteger(sfi) || sfi < 1 || sfi > 30) bad('INVALID_SFI', [field], `SFI ${sfi} is not a short file identifier (1–30)`);
  }
  if (p.publicDataSfi === p.transactionLogSfi) bad('INVALID_SFI', ['transactionLogSfi'], 'the public data and the transaction log are different files');
  const m1 = p.m1;
  if (!Number.isInteger(m1.purseSector) || m1.purseSector < 1 || m1.purseSector > 15) bad('INVALID_INPUT', ['m1', 'purseSector'], 'the purse sector is 1–15 (sector 0 holds the manufacturer block)');
  else {
    const dataBlocks = [0, 1, 2].map((b) => m1.purseSector * 4 + b);
    if (!dataBlocks.includes(m1.valueBlock)) bad('INVALID_INPUT', ['m1', 'valueBlock'], `the value block is a data block of sector ${m1.purseSector} (${dataBlocks.join(', ')})`);
    if (!dataBlocks.includes(m1.backupBlock) || m1.backupBlock === m1.valueBlock) bad('INVALID_INPUT', ['m1', 'backupBlock'], `the backup block is another data block of sector ${m1.purseSector}`);
  }
  // UID_SECTOR_3DES derives the sector's key B (the 0B in its input); no derivation of a key A is implemented.
  if (m1.keyType !== 'B') bad('INVALID_INPUT', ['m1', 'keyType'], 'the host authenticates with the sector key B, the one UID_SECTOR_3DES derives');
  if (m1.keyDerivation !== 'UID_SECTOR_3DES') bad('INVALID_INPUT', ['m1', 'keyDerivation'], 'the M1 key derivation implemented is UID_SECTOR_3DES');
  p.toleratedStatusWords.forEach((sw, i) => {
    // Only warnings: a card refusing (69xx, 6Axx, 93xx, 94xx…) never counts as having done it.
    if (!/^6[23][0-9A-F]{2}$/.test(sw)) bad('INVALID_INPUT', ['toleratedStatusWords', i], `${sw} is not a warning status word (62xx or 63xx)`);
  });
  return problems;
}

/** The cipher a card's algorithm id byte means, if the profile accepts that byte. */
export function acceptedCipher(profile: Pick<CardProfile, 'algorithmIds'>, id: number): AlgorithmId | null {
  if (!profile.algorithmIds.includes(id)) return null;
  return ALGORITHM_ID_MEANINGS.get(id)?.cipher ?? null;
}

/** The AIDs a profile selects by name, in order. */
export const aidsOf = (p: Pick<CardProfile, 'selection'>): string[] => p.selection.flatMap((s) => (s.kind === 'AID' ? [s.aid] : []));

/** The profile's selection steps, without repeats, in the order given: what a reader tries. */
export function mergedSelection(profiles: Pick<CardProfile, 'selection'>[]): SelectionStep[] {
  const seen = new Set<string>();
  const out: SelectionStep[] = [];
  for (const step of profiles.flatMap((p) => p.selection)) {
    const key = JSON.stringify(step);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(step);
  }
  return out;
}

/**
 * The DF name (tag 84) of a SELECT answer's FCI template (tag 6F), upper-case hex; null when the
 * answer carries none (a card selected by path may not say). Short BER-TLV only, as FCIs are.
 */
export function dfNameOf(fci: Buffer): string | null {
  const read = (bytes: Buffer, want: number[]): Buffer | null => {
    let i = 0;
    while (i < bytes.length) {
      let tag = bytes[i++]!;
      if ((tag & 0x1f) === 0x1f) tag = (tag << 8) | (bytes[i++] ?? 0);
      let length = bytes[i++];
      if (length === undefined) return null;
      if (length === 0x81) length = bytes[i++] ?? 0;
      const value = bytes.subarray(i, i + length);
      if (value.length !== length) return null;
      if (tag === want[0]) return want.length === 1 ? value : read(value, want.slice(1));
      i += length;
    }
    return null;
  };
  const name = read(fci, [0x6f, 0x84]);
  return name && name.length > 0 ? name.toString('hex').toUpperCase() : null;
}

/** The profile that applies to a card of this card company that selected `aid`: its product's, else the company's own. */
export function profileForSelected(profiles: readonly CardProfile[], aid: string | null): CardProfile {
  const product = aid ? profiles.find((p) => p.product !== null && aidsOf(p).includes(aid)) : undefined;
  return product ?? profiles.find((p) => p.product === null) ?? DEFAULT_CARD_PROFILE;
}

export type CardProfileInput = Omit<CardProfile, 'id' | 'cardCompanyId'>;

export class CardProfileRefused extends Error {
  constructor(readonly problems: ProfileProblem[]) {
    super(problems.map((p) => p.message).join('; '));
  }
}

/** A selection step as a card company writes it: its kind, and the AID, the PSE name or the path (`3F00/1001`). */
export function selectionStepOf(kind: string, value: string, at: number): SelectionStep {
  if (kind === 'AID') return { kind: 'AID', aid: value.replace(/\s+/g, '').toUpperCase() };
  if (kind === 'PSE') return { kind: 'PSE', name: value };
  if (kind === 'PATH') return { kind: 'PATH', path: value.split('/').map((f) => f.trim().toUpperCase()) };
  throw new CardProfileRefused([{ code: 'INVALID_INPUT', field: ['selection', at, 'kind'], message: `${kind} is not a way of selection (AID, PSE or PATH)` }]);
}

export const selectionValue = (step: SelectionStep): string => (step.kind === 'AID' ? step.aid : step.kind === 'PSE' ? step.name : step.path.join('/'));

/** A profile as the API's input and `onecard card-profile` write it (selection as kind and value); the defaults are today's. */
export interface CardProfileText {
  product?: string | null;
  selection: { kind: string; value: string }[];
  loadKeyIndex: number;
  purchaseKeyIndex: number;
  algorithmIds: number[];
  publicDataSfi?: number;
  transactionLogSfi?: number;
  m1?: Partial<M1Layout> | null;
  toleratedStatusWords?: string[];
}

/**
 * The profile a text (the API's input, a CLI file) describes; a value of the wrong type becomes one
 * `profileProblems` refuses (NaN, an empty list), so a malformed file is refused, never thrown on.
 */
export function profileFromText(text: unknown): CardProfileInput {
  const t = (text !== null && typeof text === 'object' ? text : {}) as Record<string, unknown>;
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const int = (v: unknown, otherwise: number) => (v === undefined || v === null ? otherwise : typeof v === 'number' ? v : NaN);
  const m1 = (t.m1 !== null && typeof t.m1 === 'object' ? t.m1 : {}) as Record<string, unknown>;
  const d = DEFAULT_CARD_PROFILE;
  return {
    product: t.product === undefined || t.product === null ? null : String(t.product),
    selection: list(t.selection).map((s, i) => {
      const step = (s ?? {}) as Record<string, unknown>;
      return selectionStepOf(String(step.kind), String(step.value ?? ''), i);
    }),
    loadKeyIndex: int(t.loadKeyIndex, NaN),
    purchaseKeyIndex: int(t.purchaseKeyIndex, NaN),
    algorithmIds: list(t.algorithmIds).map((id) => int(id, NaN)),
    publicDataSfi: int(t.publicDataSfi, d.publicDataSfi),
    transactionLogSfi: int(t.transactionLogSfi, d.transactionLogSfi),
    m1: {
      purseSector: int(m1.purseSector, d.m1.purseSector),
      valueBlock: int(m1.valueBlock, d.m1.valueBlock),
      backupBlock: int(m1.backupBlock, d.m1.backupBlock),
      keyType: (m1.keyType ?? d.m1.keyType) as M1Layout['keyType'],
      keyDerivation: (m1.keyDerivation ?? d.m1.keyDerivation) as M1Layout['keyDerivation'],
    },
    toleratedStatusWords: list(t.toleratedStatusWords).map((sw) => String(sw).toUpperCase()),
  };
}

/** A profile as `profileFromText` reads it back. */
export function profileAsText(p: CardProfile): CardProfileText {
  return {
    product: p.product,
    selection: p.selection.map((s) => ({ kind: s.kind, value: selectionValue(s) })),
    loadKeyIndex: p.loadKeyIndex,
    purchaseKeyIndex: p.purchaseKeyIndex,
    algorithmIds: p.algorithmIds,
    publicDataSfi: p.publicDataSfi,
    transactionLogSfi: p.transactionLogSfi,
    m1: p.m1,
    toleratedStatusWords: p.toleratedStatusWords,
  };
}
