import type { IncomingMessage, SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/** Only the client that opened a session relays its messages (someone else's is audited, not ended). */
export function checkOpener(session: SessionRow, message: IncomingMessage): void {
  if (session.opened_by_client !== message.clientId) throw new SessionError('NOT_THE_OPENER', 'only the client that opened a session may relay its messages').at('envelope');
}

/** A finished session takes no more messages: a second use is refused. */
export function checkNotFinished(session: SessionRow): void {
  if (session.state === 'COMPLETED' || session.state === 'FAILED') throw new SessionError('SESSION_FINISHED', `the session is ${session.state}`).at('envelope');
}
