import type { EntityManager } from '@mikro-orm/postgresql';
import type forge from 'node-forge';
import { checkLeaf, findCityCa } from '../../../pki/pki.service.js';
import { publicKeyFingerprint } from '../../../pki/x509.js';
import type { ReaderRow } from '../../readers.service.js';
import { SessionError } from '../session.errors.js';

/** A reader certificate against its CA and the root: accepted, or the refusal both card sessions and offline uploads give. */
export type ChainCheck =
  | { ok: true; certificate: forge.pki.Certificate; serial: string }
  | { ok: false; refusal: 'CERTIFICATE_REVOKED' | 'CERTIFICATE_EXPIRED' | 'UNKNOWN_CA'; reason: string };

type Leaf = Awaited<ReturnType<typeof checkLeaf>> | { ok: false; refusal: 'UNKNOWN_CA' };

function chainCheckOf(leaf: Leaf): ChainCheck {
  if (leaf.ok) return { ok: true, certificate: leaf.certificate, serial: leaf.row.serial };
  const refusal = leaf.refusal === 'REVOKED' ? 'CERTIFICATE_REVOKED' : leaf.refusal === 'EXPIRED' || leaf.refusal === 'NOT_YET_VALID' ? 'CERTIFICATE_EXPIRED' : 'UNKNOWN_CA';
  return { ok: false, refusal, reason: leaf.refusal };
}

/** The reader's national certificate chains to the national working CA (and the root), is valid and not revoked. */
export async function verifyNationalChain(em: EntityManager, pem: string, now: Date): Promise<ChainCheck> {
  return chainCheckOf(await checkLeaf(em, pem, { caId: 'national', profile: 'reader', now }));
}

/**
 * The reader's city certificate chains to its city's working CA (and the root), is valid and not
 * revoked. The one check card sessions (the hello) and offline uploads (the batch) share.
 */
export async function verifyCityChain(em: EntityManager, reader: Pick<ReaderRow, 'city_id'>, pem: string, now: Date): Promise<ChainCheck> {
  const cityCa = await findCityCa(em, reader.city_id);
  return chainCheckOf(cityCa ? await checkLeaf(em, pem, { caId: cityCa.id, profile: 'reader', now }) : { ok: false, refusal: 'UNKNOWN_CA' });
}

/** Is this the city certificate registered for the reader: its serial, and its key's fingerprint? */
export function isRegisteredCityCertificate(reader: Pick<ReaderRow, 'city_certificate_serial' | 'public_key_fingerprint'>, check: Extract<ChainCheck, { ok: true }>): boolean {
  return check.serial === reader.city_certificate_serial && publicKeyFingerprint(check.certificate.publicKey) === reader.public_key_fingerprint;
}

/** The reader's encryption certificate chains to its city's working CA, valid, not revoked, of the encryption profile. */
async function verifyEncryptionChain(em: EntityManager, reader: Pick<ReaderRow, 'city_id'>, pem: string, now: Date): Promise<ChainCheck> {
  const cityCa = await findCityCa(em, reader.city_id);
  return chainCheckOf(cityCa ? await checkLeaf(em, pem, { caId: cityCa.id, profile: 'reader-encryption', now }) : { ok: false, refusal: 'UNKNOWN_CA' });
}

/** The hello's chains, national, city, then encryption (when presented); the first refused one refuses the session. */
export async function checkChains(em: EntityManager, reader: ReaderRow, pems: { nationalPem: string; cityPem: string; encryptionPem: string | null }, now: Date) {
  const checks = [await verifyNationalChain(em, pems.nationalPem, now), await verifyCityChain(em, reader, pems.cityPem, now)];
  if (pems.encryptionPem) checks.push(await verifyEncryptionChain(em, reader, pems.encryptionPem, now));
  for (const check of checks) {
    if (!check.ok) throw new SessionError(check.refusal, `a reader certificate was refused: ${check.reason}`).at('chains');
  }
  const [national, city, encryption] = checks as Extract<ChainCheck, { ok: true }>[];
  return { national: national!, city: city!, encryption: encryption ?? null };
}
