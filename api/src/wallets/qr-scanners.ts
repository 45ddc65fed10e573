import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import type { ReaderRow } from '../readers/readers.service.js';
import { WalletError } from './wallets.errors.js';

/**
 * QR scanners (docs/qr-rides.md, "Scanners and fare caps"): which terminals may upload QR rides,
 * and the highest fare each may charge. The card company of the terminal's city decides, as it
 * decides which readers exist: it clears the rides and carries the risk of a fare the holder never
 * signed (the code proves who rode, not what it cost). A terminal with a line for analytics is not
 * thereby a scanner: a shop till of a bus company has an owner and a city too.
 */

/** The highest fare a cap may allow: a fare, not a purchase (1,000.00). */
export const MAX_FARE_CAP = 100_000;
/** A scanner's cap when the card company names none: 50.00, above any city bus or metro fare in China today. */
export const DEFAULT_FARE_CAP = 5_000;

export interface QrScannerRow {
  reader_id: string;
  fare_cap: string;
}

export async function qrScannerOf(em: EntityManager, readerId: string): Promise<QrScannerRow | null> {
  const [row] = await em.execute<QrScannerRow[]>(`select reader_id, fare_cap::text as fare_cap from qr_scanner where reader_id = ?`, [readerId]);
  return row ?? null;
}

/**
 * Makes a terminal a QR scanner with its fare cap, or takes it off (`acceptsQrRides` false). The
 * caller found the terminal among those the principal manages (the operator, or its city's card company).
 */
export async function setQrScanner(em: EntityManager, principal: Principal, terminal: ReaderRow, input: { acceptsQrRides: boolean; fareCap: bigint | null }): Promise<QrScannerRow | null> {
  if (!input.acceptsQrRides) {
    if (input.fareCap !== null) throw new WalletError('INVALID_INPUT', 'a terminal taken off the QR scanners has no fare cap', 'fareCap');
    await em.execute(`delete from qr_scanner where reader_id = ?`, [terminal.id]);
    return null;
  }
  const cap = input.fareCap ?? BigInt(DEFAULT_FARE_CAP);
  if (cap < 1n || cap > BigInt(MAX_FARE_CAP)) throw new WalletError('INVALID_INPUT', `a fare cap is 1 to ${MAX_FARE_CAP} minor units`, 'fareCap');
  await em.execute(
    `insert into qr_scanner (reader_id, fare_cap, registered_by) values (?, ?, ?)
     on conflict (reader_id) do update set fare_cap = excluded.fare_cap, registered_by = excluded.registered_by, updated_at = now()`,
    [terminal.id, cap.toString(), principal.clientId],
  );
  return { reader_id: terminal.id, fare_cap: cap.toString() };
}
