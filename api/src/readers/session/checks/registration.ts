import type { ReaderRow } from '../../readers.service.js';
import { SessionError } from '../session.errors.js';
import { type ChainCheck, isRegisteredCityCertificate } from './chains.js';

type Accepted = Extract<ChainCheck, { ok: true }>;

/** The certificates are the ones registered for this reader (the encryption one too, when it has one), and the reader is ACTIVE. */
export function checkRegistration(reader: ReaderRow, chains: { national: Accepted; city: Accepted; encryption: Accepted | null }): void {
  if (chains.national.serial !== reader.national_certificate_serial || !isRegisteredCityCertificate(reader, chains.city) || (chains.encryption?.serial ?? null) !== (reader.encryption_certificate_serial ?? null)) {
    throw new SessionError('CERTIFICATE_NOT_THIS_READER', 'the certificates are not the ones registered for this reader').at('registration');
  }
  if (reader.status !== 'ACTIVE') throw new SessionError('READER_NOT_ACTIVE', `the reader is ${reader.status}`).at('registration');
}
