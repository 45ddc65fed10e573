/**
 * An offline purchase as a gate or bus validator makes it (CARD-PROTOCOL.md §1, §3, §5): select
 * the application, read the card's identity (SFI 0x15), INITIALIZE FOR PURCHASE with the PSAM's
 * terminal number, MAC1 from the PSAM, DEBIT FOR PURCHASE, and the card's MAC2 checked by the
 * PSAM. Five APDUs, no network: the card leaves the field with its fare taken, and the terminal
 * keeps the record (with the card's TAC) for its next upload.
 */
import type { CardTransport } from '../cards/card-transport.js';
import type { SoftwarePsam } from './software-psam.js';

/** The city-union (CJ/T 166) application (CARD-PROTOCOL.md §1). */
const CITY_UNION_AID = Buffer.from('A00000000386980701', 'hex');
/** The key index of the purchase key the terminal asks the card to use. */
const KEY_INDEX = 1;

/** One purchase as the terminal keeps it and uploads it (docs/settlement.md, "Offline transaction uploads"). */
export interface OfflinePurchaseRecord {
  asn: string;
  cardCity: string;
  offlineCounter: number;
  amount: number;
  terminalSerial: number;
  date: string;
  time: string;
  tac: string;
  keyVersion: number;
}

/** The card refused a command (its status word), or the PSAM refused the card's MAC2. */
export class OfflinePurchaseError extends Error {
  constructor(
    message: string,
    /** `9401` insufficient balance, `9302` bad MAC1, …; `NO_KEY` when the PSAM holds no key of the card's version; `MAC2` when the card's MAC2 did not verify. */
    readonly code: string,
    /**
     * For `MAC2` only: the card did debit and answered a TAC. The gate refuses passage but keeps
     * the record for its next upload: the host verifies the TAC with the card's key and books the
     * value if it proves the purchase (value never stays on a chip unbooked), or answers BAD_TAC.
     */
    readonly record?: OfflinePurchaseRecord,
  ) {
    super(message);
  }
}

/** The card's date and time (BCD `YYYYMMDD`, `hhmmss`) in the terminal's time zone. */
export function cardDateTime(now: Date, timeZone = 'Asia/Shanghai'): { date: string; time: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}${parts.month}${parts.day}`, time: `${parts.hour === '24' ? '00' : parts.hour}${parts.minute}${parts.second}` };
}

async function command(card: CardTransport, apdu: Buffer, what: string): Promise<Buffer> {
  const response = Buffer.from(await card.transmit(apdu));
  const sw = response.subarray(-2).toString('hex').toUpperCase();
  if (sw !== '9000') throw new OfflinePurchaseError(`${what}: the card answered ${sw}`, sw);
  return response.subarray(0, -2);
}

/**
 * Takes `amount` (minor units) from the card in front of the terminal. Throws
 * {@link OfflinePurchaseError} when the card refuses (e.g. `9401`, not enough value) or its MAC2
 * does not verify; the returned record is what the card's TAC proves.
 */
export async function offlinePurchase(card: CardTransport, psam: SoftwarePsam, input: { amount: number; now?: Date; timeZone?: string }): Promise<OfflinePurchaseRecord> {
  const { amount } = input;
  if (!Number.isInteger(amount) || amount < 1 || amount > 0xffff_ffff) throw new RangeError('an amount is 1 to 4294967295 minor units');
  await command(card, Buffer.concat([Buffer.from([0x00, 0xa4, 0x04, 0x00, CITY_UNION_AID.length]), CITY_UNION_AID]), 'SELECT');
  const publicData = await command(card, Buffer.from('00B0950000', 'hex'), 'READ BINARY (SFI 15)');
  if (publicData.length < 28) throw new OfflinePurchaseError(`public data is ${publicData.length} bytes, expected 28`, 'CARD_ERROR');
  const asn = publicData.subarray(10, 20);
  const terminal = Buffer.from(psam.terminalNumber, 'hex');
  const init = Buffer.alloc(11);
  init[0] = KEY_INDEX;
  init.writeUInt32BE(amount, 1);
  terminal.copy(init, 5);
  const answer = await command(card, Buffer.concat([Buffer.from([0x80, 0x50, 0x01, 0x02, 0x0b]), init, Buffer.from([0x0f])]), 'INITIALIZE FOR PURCHASE');
  if (answer.length !== 15) throw new OfflinePurchaseError(`INITIALIZE FOR PURCHASE answered ${answer.length} bytes, expected 15`, 'CARD_ERROR');
  // balance (4), offline counter (2), overdraft limit (3), key version (1), algorithm id (1), random (4)
  const offlineCounter = answer.readUInt16BE(4);
  const keyVersion = answer[9]!;
  const { date, time } = cardDateTime(input.now ?? new Date(), input.timeZone);
  let computed: ReturnType<SoftwarePsam['purchaseMac1']>;
  try {
    computed = psam.purchaseMac1({ asn, keyVersion, algorithmId: answer[10]!, random: answer.subarray(11, 15), offlineCounter, amount, date, time });
  } catch (err) {
    // A card keyed with a version (or algorithm) this PSAM was not provisioned with: nothing was debited.
    if (err instanceof RangeError) throw new OfflinePurchaseError(err.message, 'NO_KEY');
    throw err;
  }
  const { terminalSerial, mac1, session } = computed;
  const serial = Buffer.alloc(4);
  serial.writeUInt32BE(terminalSerial);
  const debit = await command(card, Buffer.concat([Buffer.from([0x80, 0x54, 0x01, 0x00, 0x0f]), serial, Buffer.from(date + time, 'hex'), mac1, Buffer.from([0x08])]), 'DEBIT FOR PURCHASE');
  if (debit.length !== 8) throw new OfflinePurchaseError(`DEBIT FOR PURCHASE answered ${debit.length} bytes, expected 8`, 'CARD_ERROR');
  const record: OfflinePurchaseRecord = {
    asn: asn.toString('hex').toUpperCase(),
    cardCity: publicData.subarray(2, 4).toString('hex').toUpperCase(),
    offlineCounter,
    amount,
    terminalSerial,
    date,
    time,
    tac: debit.subarray(0, 4).toString('hex').toUpperCase(),
    keyVersion,
  };
  // The card debited, but a MAC2 that does not verify means it is not a card of this card company's keys (or was
  // tampered with): no passage; the record goes to the host all the same, whose TAC check decides.
  if (!session.verifyMac2(debit.subarray(4, 8))) throw new OfflinePurchaseError('the card’s MAC2 does not verify with the PSAM’s session key', 'MAC2', record);
  return record;
}
