import type { SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/** The hello signs this session's fresh challenge, and presents both reader certificates. */
export function checkChallenge(session: SessionRow, body: Record<string, unknown>): { nationalPem: string; cityPem: string } {
  if (body.challenge !== session.challenge) throw new SessionError('CHALLENGE_MISMATCH', 'the signed challenge is not this session’s').at('challenge');
  const nationalPem = typeof body.nationalCertificate === 'string' ? body.nationalCertificate : undefined;
  const cityPem = typeof body.cityCertificate === 'string' ? body.cityCertificate : undefined;
  if (!nationalPem || !cityPem) throw new SessionError('CERTIFICATE_MISSING', 'a reader presents both its national and its city certificate').at('challenge');
  return { nationalPem, cityPem };
}
