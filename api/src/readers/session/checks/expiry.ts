import type { SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/** Sessions are short (SESSION_TTL_SECONDS): a late message is refused. */
export function checkExpiry(session: SessionRow, now: Date): void {
  if (now > new Date(session.expires_at)) throw new SessionError('SESSION_EXPIRED', 'the session has expired').at('expiry');
}
