import type { SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/**
 * The hello signs this session's fresh challenge, and presents both reader certificates, and the
 * encryption certificate unless the reader has one key for all (SINGLE_KEY, registered before).
 */
export function checkChallenge(session: SessionRow, body: Record<string, unknown>, keyScheme: 'SINGLE_KEY' | 'SEPARATE_KEYS'): { nationalPem: string; cityPem: string; encryptionPem: string | null } {
  if (body.challenge !== session.challenge) throw new SessionError('CHALLENGE_MISMATCH', 'the signed challenge is not this session’s').at('challenge');
  const nationalPem = typeof body.nationalCertificate === 'string' ? body.nationalCertificate : undefined;
  const cityPem = typeof body.cityCertificate === 'string' ? body.cityCertificate : undefined;
  if (!nationalPem || !cityPem) throw new SessionError('CERTIFICATE_MISSING', 'a reader presents both its national and its city certificate').at('challenge');
  const encryptionPem = keyScheme === 'SEPARATE_KEYS' && typeof body.encryptionCertificate === 'string' ? body.encryptionCertificate : null;
  if (keyScheme === 'SEPARATE_KEYS' && !encryptionPem) throw new SessionError('CERTIFICATE_MISSING', 'a reader presents its encryption certificate too').at('challenge');
  return { nationalPem, cityPem, encryptionPem };
}
