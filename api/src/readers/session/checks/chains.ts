import type { EntityManager } from '@mikro-orm/postgresql';
import { type ChainCa, checkLeaf, readChainCas } from '../../../pki/pki.service.js';
import type { ReaderRow } from '../../readers.service.js';
import { SessionError } from '../session.errors.js';

/** A reader certificate against its CA and the root: accepted (its serial and key), or the refusal both card sessions and offline uploads give. */
export type ChainCheck =
  | { ok: true; serial: string; publicKeyPem: string; publicKeyFingerprint: string }
  | { ok: false; refusal: 'CERTIFICATE_REVOKED' | 'CERTIFICATE_EXPIRED' | 'UNKNOWN_CA'; reason: string };

function chainCheckOf(leaf: Awaited<ReturnType<typeof checkLeaf>>): ChainCheck {
  if (leaf.ok) return { ok: true, serial: leaf.leaf.serial, publicKeyPem: leaf.leaf.publicKeyPem, publicKeyFingerprint: leaf.leaf.publicKeyFingerprint };
  const refusal = leaf.refusal === 'REVOKED' ? 'CERTIFICATE_REVOKED' : leaf.refusal === 'EXPIRED' || leaf.refusal === 'NOT_YET_VALID' ? 'CERTIFICATE_EXPIRED' : 'UNKNOWN_CA';
  return { ok: false, refusal, reason: leaf.refusal };
}

/** The reader's national certificate chains to the national working CA (and the root), is valid and not revoked. */
export async function verifyNationalChain(em: EntityManager, pem: string, now: Date, cas?: readonly ChainCa[]): Promise<ChainCheck> {
  return chainCheckOf(await checkLeaf(em, pem, { caId: 'national', profile: 'reader', now, cas }));
}

/**
 * The reader's city certificate chains to its city's working CA (and the root), is valid and not
 * revoked. The one check card sessions (the hello) and offline uploads (the batch) share.
 */
export async function verifyCityChain(em: EntityManager, reader: Pick<ReaderRow, 'city_id'>, pem: string, now: Date, cas?: readonly ChainCa[]): Promise<ChainCheck> {
  return chainCheckOf(await checkLeaf(em, pem, { cityId: reader.city_id, profile: 'reader', now, cas }));
}

/** Is this the city certificate registered for the reader: its serial, and its key's fingerprint? */
export function isRegisteredCityCertificate(reader: Pick<ReaderRow, 'city_certificate_serial' | 'public_key_fingerprint'>, check: Extract<ChainCheck, { ok: true }>): boolean {
  return check.serial === reader.city_certificate_serial && check.publicKeyFingerprint === reader.public_key_fingerprint;
}

/** The reader's encryption certificate chains to its city's working CA, valid, not revoked, of the encryption profile. */
async function verifyEncryptionChain(em: EntityManager, reader: Pick<ReaderRow, 'city_id'>, pem: string, now: Date, cas: readonly ChainCa[]): Promise<ChainCheck> {
  return chainCheckOf(await checkLeaf(em, pem, { cityId: reader.city_id, profile: 'reader-encryption', now, cas }));
}

/**
 * The hello's chains, national, city, then encryption (when presented); the first refused one
 * refuses the session. The CAs and their revocation counters are read once for the three, in this
 * message's transaction.
 */
export async function checkChains(em: EntityManager, reader: ReaderRow, pems: { nationalPem: string; cityPem: string; encryptionPem: string | null }, now: Date) {
  const cas = await readChainCas(em, reader.city_id);
  const checks = [await verifyNationalChain(em, pems.nationalPem, now, cas), await verifyCityChain(em, reader, pems.cityPem, now, cas)];
  if (pems.encryptionPem) checks.push(await verifyEncryptionChain(em, reader, pems.encryptionPem, now, cas));
  for (const check of checks) {
    if (!check.ok) throw new SessionError(check.refusal, `a reader certificate was refused: ${check.reason}`).at('chains');
  }
  const [national, city, encryption] = checks as Extract<ChainCheck, { ok: true }>[];
  return { national: national!, city: city!, encryption: encryption ?? null };
}
