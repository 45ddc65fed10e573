import type { EntityManager } from '@mikro-orm/postgresql';
import type { ReaderRow } from '../readers.service.js';

/** A terminal transaction serial is 4 bytes; after the last one it starts again at 1. */
const MAX_TERMINAL_SERIAL = 0xffff_ffff;

/**
 * The 6-byte terminal id a reader's card transactions carry: its registered terminal number (终端编号),
 * the terminal field of INITIALIZE FOR LOAD / PURCHASE, so MAC1, MAC2 and the TAC cover it
 * (CARD-PROTOCOL.md §2, §3). Offline uploads verify TACs with it too.
 */
export function terminalIdOf(reader: Pick<ReaderRow, 'terminal_number'>): Buffer {
  return Buffer.from(reader.terminal_number, 'hex');
}

/** Date and time on the card in the reader's city (all demo cities are UTC+8; Asia/Shanghai). */
export function cardClock(now: Date): { date: string; time: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}${parts.month}${parts.day}`, time: `${parts.hour === '24' ? '00' : parts.hour}${parts.minute}${parts.second}` };
}

/** The reader's next terminal transaction serial: per reader, increasing, wrapping after FFFFFFFF. */
export async function nextTerminalSerial(em: EntityManager, readerId: string): Promise<number> {
  const [row] = await em.execute<{ last_serial: string }[]>(
    `insert into reader_terminal_serial (reader_id, last_serial) values (?, 1)
     on conflict (reader_id) do update
       set last_serial = case when reader_terminal_serial.last_serial >= ? then 1 else reader_terminal_serial.last_serial + 1 end, updated_at = now()
     returning last_serial`,
    [readerId, MAX_TERMINAL_SERIAL],
  );
  return Number(row!.last_serial);
}
