import type { SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/**
 * The reader did not refuse the host's last message. A reader that finds a host message unsigned,
 * signed by another key, for another session or sequence, or altered, runs nothing and says so in
 * its next (signed) message, `{"refusedHostMessage": "<why>"}` (sdk-js ReaderAgent): the session
 * ends, audited, and nothing moved.
 */
export function checkReaderReport(session: SessionRow, body: Record<string, unknown>): void {
  if (body.refusedHostMessage === undefined) return;
  const reason = typeof body.refusedHostMessage === 'string' ? body.refusedHostMessage.slice(0, 200) : 'unstated';
  throw new SessionError('HOST_MESSAGE_REFUSED', `the reader refused the host's message to ${session.state}: ${reason}`, { readerSaid: reason }).at('reader-report');
}
