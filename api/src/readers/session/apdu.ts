/** The APDUs the host asks a reader to send, and how to read the answers (CARD-PROTOCOL.md §1–§3). */

export const CITY_UNION_AID = Buffer.from('A00000000386980701', 'hex');

export const selectApplication = () => Buffer.concat([Buffer.from([0x00, 0xa4, 0x04, 0x00, CITY_UNION_AID.length]), CITY_UNION_AID]);
export const readPublicData = () => Buffer.from('00B0950000', 'hex');
export const getBalance = () => Buffer.from('805C000204', 'hex');

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

export class CardAnswerError extends Error {}

/** Splits a response into data and status word; anything but 9000 is the card refusing. */
export function ok(response: string | undefined, what: string): Buffer {
  if (typeof response !== 'string' || !/^([0-9a-fA-F]{2}){2,300}$/.test(response)) throw new CardAnswerError(`${what}: no valid response`);
  const bytes = Buffer.from(response, 'hex');
  const sw = bytes.subarray(-2).toString('hex').toUpperCase();
  if (sw !== '9000') throw new CardAnswerError(`${what}: the card answered ${sw}`);
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
