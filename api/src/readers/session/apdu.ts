/** The APDUs the host asks a reader to send, and how to read the answers (CARD-PROTOCOL.md §1–§3). */
import { CITY_UNION_AID, type SelectionStep } from './card-profile.js';

/** SELECT for one selection step: by DF name (an AID, or the PSE's name), or the first file id of a path. */
export function selectCommand(step: SelectionStep): Buffer {
  const name = step.kind === 'AID' ? Buffer.from(step.aid, 'hex') : step.kind === 'PSE' ? Buffer.from(step.name, 'ascii') : Buffer.from(step.path[0]!, 'hex');
  return Buffer.concat([Buffer.from([0x00, 0xa4, step.kind === 'PATH' ? 0x00 : 0x04, 0x00, name.length]), name]);
}
/** SELECT of the city-union application (the default profile's one way in). */
export const selectApplication = () => selectCommand({ kind: 'AID', aid: CITY_UNION_AID });
/** READ BINARY of a short file (P1 = 80 | SFI), the whole file (the public basic data is SFI 0x15). */
export const readPublicData = (sfi = 0x15) => Buffer.from([0x00, 0xb0, 0x80 | sfi, 0x00, 0x00]);
export const getBalance = () => Buffer.from('805C000204', 'hex');
/** READ RECORD 1 (the newest) of the transaction log (SFI 0x18 by default). */
export const readLastTransaction = (sfi = 0x18) => Buffer.from([0x00, 0xb2, 0x01, (sfi << 3) | 0x04, 0x00]);
/** The card's status word for READ RECORD of an empty log. */
export const SW_RECORD_NOT_FOUND = '6A83';

export function initializeForLoad(keyIndex: number, amount: number, terminalId: Buffer): Buffer {
  const body = Buffer.alloc(11);
  body[0] = keyIndex;
  body.writeUInt32BE(amount, 1);
  terminalId.copy(body, 5);
  return Buffer.concat([Buffer.from([0x80, 0x50, 0x00, 0x02, 0x0b]), body, Buffer.from([0x10])]);
}

export function creditForLoad(date: string, time: string, mac2: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80, 0x52, 0x00, 0x00, 0x0b]), Buffer.from(date + time, 'hex'), mac2, Buffer.from([0x04])]);
}

/** INITIALIZE FOR PURCHASE on the e-purse (P2 02): key index, amount, terminal; Le 0F. */
export function initializeForPurchase(keyIndex: number, amount: number, terminalId: Buffer): Buffer {
  const body = Buffer.alloc(11);
  body[0] = keyIndex;
  body.writeUInt32BE(amount, 1);
  terminalId.copy(body, 5);
  return Buffer.concat([Buffer.from([0x80, 0x50, 0x01, 0x02, 0x0b]), body, Buffer.from([0x0f])]);
}

/** DEBIT FOR PURCHASE: terminal transaction serial, date, time, MAC1; Le 08 (TAC || MAC2). */
export function debitForPurchase(terminalSerial: number, date: string, time: string, mac1: Buffer): Buffer {
  const serial = Buffer.alloc(4);
  serial.writeUInt32BE(terminalSerial);
  return Buffer.concat([Buffer.from([0x80, 0x54, 0x01, 0x00, 0x0f]), serial, Buffer.from(date + time, 'hex'), mac1, Buffer.from([0x08])]);
}

/**
 * GET TRANSACTION PROVE `80 5A 00 <type> 02 <counter> 08` (CARD-PROTOCOL.md §8): MAC2 || TAC of the
 * card's last transaction of that type, if it was made at that counter (as INITIALIZE returned it).
 */
export function getTransactionProve(transactionType: number, counter: number): Buffer {
  const data = Buffer.alloc(2);
  data.writeUInt16BE(counter);
  return Buffer.concat([Buffer.from([0x80, 0x5a, 0x00, transactionType, 0x02]), data, Buffer.from([0x08])]);
}

/** The card has no proof of a transaction of that type at that counter. */
export const SW_PROOF_NOT_AVAILABLE = '9406';

export function parseTransactionProve(data: Buffer): { mac2: Buffer; tac: Buffer } {
  if (data.length !== 8) throw new CardAnswerError(`GET TRANSACTION PROVE answered ${data.length} bytes, expected 8`);
  return { mac2: data.subarray(0, 4), tac: data.subarray(4, 8) };
}

/** Status words the host tells apart (CARD-PROTOCOL.md §3). */
export const SW_INSUFFICIENT_BALANCE = '9401';

export class CardAnswerError extends Error {
  constructor(
    message: string,
    /** The card's status word (hex, upper case) when it answered with one other than 9000. */
    readonly statusWord?: string,
  ) {
    super(message);
  }
}

/**
 * Splits a response into data and status word; anything but 9000 is the card refusing, except the
 * warnings its card profile tolerates (e.g. 6282), whose data is read as with 9000.
 */
export function ok(response: string | undefined, what: string, tolerated: readonly string[] = []): Buffer {
  if (typeof response !== 'string' || !/^([0-9a-fA-F]{2}){2,300}$/.test(response)) throw new CardAnswerError(`${what}: no valid response`);
  const bytes = Buffer.from(response, 'hex');
  const sw = bytes.subarray(-2).toString('hex').toUpperCase();
  if (sw !== '9000' && !tolerated.includes(sw)) throw new CardAnswerError(`${what}: the card answered ${sw}`, sw);
  return bytes.subarray(0, -2);
}

export interface PublicData {
  issuerId: Buffer;
  /** Bytes 2–3 of the issuer id: the card's city code, e.g. 5810. */
  cityCode: string;
  asn: Buffer;
}

export function parsePublicData(data: Buffer): PublicData {
  if (data.length < 28) throw new CardAnswerError(`public data is ${data.length} bytes, expected 28`);
  return { issuerId: data.subarray(0, 8), cityCode: data.subarray(2, 4).toString('hex').toUpperCase(), asn: data.subarray(10, 20) };
}

export interface InitializeForLoadAnswer {
  oldBalance: number;
  onlineCounter: number;
  keyVersion: number;
  algorithmId: number;
  random: Buffer;
  mac1: Buffer;
}

export function parseInitializeForLoad(data: Buffer): InitializeForLoadAnswer {
  if (data.length !== 16) throw new CardAnswerError(`INITIALIZE FOR LOAD answered ${data.length} bytes, expected 16`);
  return { oldBalance: data.readUInt32BE(0), onlineCounter: data.readUInt16BE(4), keyVersion: data[6]!, algorithmId: data[7]!, random: data.subarray(8, 12), mac1: data.subarray(12, 16) };
}

export interface InitializeForPurchaseAnswer {
  balance: number;
  offlineCounter: number;
  keyVersion: number;
  algorithmId: number;
  random: Buffer;
}

/** balance (4), offline counter (2), overdraft limit (3, unused: we never spend it), key version, algorithm id, random (4). */
export function parseInitializeForPurchase(data: Buffer): InitializeForPurchaseAnswer {
  if (data.length !== 15) throw new CardAnswerError(`INITIALIZE FOR PURCHASE answered ${data.length} bytes, expected 15`);
  return { balance: data.readUInt32BE(0), offlineCounter: data.readUInt16BE(4), keyVersion: data[9]!, algorithmId: data[10]!, random: data.subarray(11, 15) };
}

/** DEBIT FOR PURCHASE answers TAC (4) then MAC2 (4). */
export function parseDebitForPurchase(data: Buffer): { tac: Buffer; mac2: Buffer } {
  if (data.length !== 8) throw new CardAnswerError(`DEBIT FOR PURCHASE answered ${data.length} bytes, expected 8`);
  return { tac: data.subarray(0, 4), mac2: data.subarray(4, 8) };
}

/** One record of the card's transaction log (SFI 0x18): what the card itself wrote about an operation. */
export interface TransactionRecord {
  /** The counter before the operation (online counter for a load, offline for a purchase). */
  counter: number;
  amount: number;
  /** 02 e-purse load, 06 e-purse purchase. */
  type: number;
  terminal: string;
  date: string;
  time: string;
}

/** counter (2), overdraft limit (3), amount (4), type (1), terminal (6), date (4), time (3). */
export function parseTransactionRecord(data: Buffer): TransactionRecord {
  if (data.length !== 23) throw new CardAnswerError(`a transaction log record is ${data.length} bytes, expected 23`);
  const hexOf = (b: Buffer) => b.toString('hex').toUpperCase();
  return { counter: data.readUInt16BE(0), amount: data.readUInt32BE(5), type: data[9]!, terminal: hexOf(data.subarray(10, 16)), date: hexOf(data.subarray(16, 20)), time: hexOf(data.subarray(20, 23)) };
}
