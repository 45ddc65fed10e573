import type { IncomingMessage, SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/** Each message carries the next sequence number: replays and reordering are refused. */
export function checkSequence(session: SessionRow, message: IncomingMessage): void {
  if (message.seq !== session.next_seq) throw new SessionError('OUT_OF_ORDER', `expected message ${session.next_seq}, got ${message.seq}`).at('sequence');
}
