/** One on-card purchase as a terminal reports it (CARD-PROTOCOL.md §3: what the TAC covers, and the card's counter). */
export interface OfflineRecord {
  /** Application serial number, 20 hex digits (10 bytes). */
  asn: string;
  /** The city code the card carries (bytes 2–3 of its issuer id), e.g. `5810`. */
  cardCity: string;
  /** The card's offline counter as INITIALIZE FOR PURCHASE reported it (before the debit). */
  offlineCounter: number;
  amount: number;
  /** The terminal's transaction serial that entered SESPK and the TAC. */
  terminalSerial: number;
  /** BCD date `YYYYMMDD` and time `hhmmss`, as the terminal sent them in DEBIT FOR PURCHASE. */
  date: string;
  time: string;
  /** 8 hex digits. */
  tac: string;
  /** The card's purchase key version; 1 when not given. */
  keyVersion: number;
}

/** The most records one batch may carry: one answer, one transaction. */
export const MAX_BATCH_RECORDS = 5000;

export class MalformedBatchError extends Error {}

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isValidDate = (d: string) => {
  const t = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00Z`);
  return !Number.isNaN(+t) && t.toISOString().slice(0, 10).replaceAll('-', '') === d;
};

/** A parsed body: the terminal number its PSAM used (when the terminal names it) and the records. */
export interface OfflineBody {
  /** 12 hex digits, upper case; undefined for terminals that predate registered numbers. */
  terminalNumber?: string;
  records: OfflineRecord[];
}

/**
 * The body's shape: `{ terminalNumber?, records: [...] }` with each field as above. A record that
 * does not parse refuses the whole batch: the terminal signed it, so it is a terminal fault, not a card's.
 */
export function parseOfflineBody(text: string): OfflineBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new MalformedBatchError('the body is not JSON');
  }
  const terminalNumber = (body as { terminalNumber?: unknown })?.terminalNumber;
  if (terminalNumber !== undefined && (typeof terminalNumber !== 'string' || !/^[0-9A-Fa-f]{12}$/.test(terminalNumber))) throw new MalformedBatchError('terminalNumber is 12 digits (6 bytes)');
  const records = (body as { records?: unknown })?.records;
  if (!Array.isArray(records) || records.length === 0 || records.length > MAX_BATCH_RECORDS) throw new MalformedBatchError(`the body is { records: [...] } with 1 to ${MAX_BATCH_RECORDS} records`);
  return { terminalNumber: typeof terminalNumber === 'string' ? terminalNumber.toUpperCase() : undefined, records: records.map((r: Record<string, unknown>, i) => {
    const bad = (what: string) => new MalformedBatchError(`records[${i}]: ${what}`);
    if (!r || typeof r !== 'object') throw bad('not an object');
    if (typeof r.asn !== 'string' || !/^[0-9A-Fa-f]{20}$/.test(r.asn)) throw bad('asn is 20 hex digits');
    if (typeof r.cardCity !== 'string' || !/^[0-9A-Fa-f]{4}$/.test(r.cardCity)) throw bad('cardCity is 4 digits');
    if (!isInt(r.offlineCounter, 0, 0xffff)) throw bad('offlineCounter is 0 to 65535');
    if (!isInt(r.amount, 1, 0xffff_ffff)) throw bad('amount is 1 to 4294967295 minor units');
    if (!isInt(r.terminalSerial, 0, 0xffff_ffff)) throw bad('terminalSerial is 0 to 4294967295');
    if (typeof r.date !== 'string' || !/^\d{8}$/.test(r.date) || !isValidDate(r.date)) throw bad('date is YYYYMMDD');
    if (typeof r.time !== 'string' || !/^([01]\d|2[0-3])[0-5]\d[0-5]\d$/.test(r.time)) throw bad('time is hhmmss');
    if (typeof r.tac !== 'string' || !/^[0-9A-Fa-f]{8}$/.test(r.tac)) throw bad('tac is 8 hex digits');
    if (r.keyVersion !== undefined && !isInt(r.keyVersion, 0, 0xff)) throw bad('keyVersion is 0 to 255');
    return {
      asn: r.asn.toUpperCase(),
      cardCity: r.cardCity.toUpperCase(),
      offlineCounter: r.offlineCounter,
      amount: r.amount,
      terminalSerial: r.terminalSerial,
      date: r.date,
      time: r.time,
      tac: r.tac.toUpperCase(),
      keyVersion: (r.keyVersion as number | undefined) ?? 1,
    };
  }) };
}
