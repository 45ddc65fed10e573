import { createPrivateKey, createHash, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { NoticedCache } from '../db/noticed-cache.js';
import { seal, unseal } from '../secrets/kek.js';
import { PkiError } from './pki.errors.js';
import { crlUrl, findCa } from './pki.service.js';
import { fromPem, issueForSubjectKey, newSerial, type PrivateKey } from './x509.js';
import forge from 'node-forge';

const DAY = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000;
/** A host certificate lives two years (at most as long as its CA). */
const HOST_CERTIFICATE_DAYS = 730;

/**
 * The card-session host's signing key for one city working CA (DESIGN.md §6: the card company signs
 * what it sends the reader, with a server certificate from its city CA). EC P-256: signing a
 * message costs tens of microseconds, not the milliseconds of RSA (docs/performance.md).
 */
export interface HostKey {
  caId: string;
  privateKey: KeyObject;
  /** The host certificate, then the city working CA's: the reader checks both up to the root it pins. */
  chainPem: string[];
}

interface HostKeyRow {
  ca_id: string;
  certificate_serial: string;
  certificate_pem: string;
  sealed_private_key: string;
}

/** Unsealed keys by certificate serial: every host → reader message is signed, unsealing each time would cost. */
const unsealed = new Map<string, KeyObject>();

const sealContext = (caId: string) => `host-key:${caId}`;

const kekIds = new WeakMap<Buffer, string>();
const kekId = (kek: Buffer): string => {
  let id = kekIds.get(kek);
  if (!id) kekIds.set(kek, (id = createHash('sha256').update(kek).digest('hex')));
  return id;
};

/**
 * The city's host key, made and certified by its city CA on first need (the seed makes it with the
 * CA). Retiring a host key (docs/readers.md, "Host key rotation") removes its row, and the next
 * message of every process must sign with the new one: the rows are read in one statement, or
 * kept in `reads` (the card-session requests' cache, readers/session/session-reads.ts), which every
 * change to host_signing_key or certificate_authority empties in every process. A key this call
 * made itself is not kept (its transaction may roll back). The unsealing is remembered by serial.
 */
export async function hostKeyOfCity(em: EntityManager, kek: Buffer, cityId: string, publicUrl: string, reads?: NoticedCache): Promise<HostKey> {
  const read = async () => {
    // The city's CA and its host key in one statement.
    const [found] = await em.execute<(Partial<HostKeyRow> & { id: string; ca_pem: string })[]>(
      `select ca.id, ca.certificate_pem as ca_pem, h.ca_id, h.certificate_serial, h.certificate_pem, h.sealed_private_key
         from certificate_authority ca left join host_signing_key h on h.ca_id = ca.id
        where ca.kind = 'CITY' and ca.city_id = ?`,
      [cityId],
    );
    if (!found) throw new PkiError('NOT_FOUND', `no working CA for city ${cityId}`);
    if (!found.ca_id) return { value: await ensureHostKey(em, kek, found.id, publicUrl), keep: false };
    return { value: hostKeyOf(kek, found as HostKeyRow, found.ca_pem), keep: true };
  };
  // By key-encryption key too: a process that opens two configurations keeps each one's unsealing apart.
  return reads ? reads.get(`host-key:${kekId(kek)}:${cityId}`, read) : (await read()).value;
}

/** The key of a host key row, unsealed once per certificate serial. */
function hostKeyOf(kek: Buffer, row: HostKeyRow, caPem: string): HostKey {
  let privateKey = unsealed.get(row.certificate_serial);
  if (!privateKey) {
    privateKey = createPrivateKey(unseal(kek, sealContext(row.ca_id), row.sealed_private_key).toString('utf8'));
    unsealed.set(row.certificate_serial, privateKey);
  }
  return { caId: row.ca_id, privateKey, chainPem: [row.certificate_pem, caPem] };
}

/** The CA's host key: the one on record, or a new one (P-256, certified by the CA, sealed with the KEK). */
export async function ensureHostKey(em: EntityManager, kek: Buffer, caId: string, publicUrl: string, now = new Date()): Promise<HostKey> {
  const [existing] = await em.execute<HostKeyRow[]>(`select * from host_signing_key where ca_id = ?`, [caId]);
  const row = existing ?? (await createHostKey(em, kek, caId, publicUrl, now));
  const ca = (await findCa(em, caId))!;
  return hostKeyOf(kek, row, ca.certificate_pem);
}

async function createHostKey(em: EntityManager, kek: Buffer, caId: string, publicUrl: string, now: Date): Promise<HostKeyRow> {
  const ca = await findCa(em, caId);
  if (!ca || ca.kind !== 'CITY' || !ca.sealed_private_key) throw new PkiError('NOT_FOUND', `no city working CA ${caId}`);
  const issuer = fromPem(ca.certificate_pem);
  const issuerKey = forge.pki.privateKeyFromPem(unseal(kek, `ca-key:${ca.id}`, ca.sealed_private_key).toString('utf8')) as PrivateKey;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const serial = newSerial();
  const subject = { commonName: `${ca.name} card session host`, organization: 'OneCard', country: 'CN' };
  const pem = issueForSubjectKey({
    subject,
    subjectPublicKeyInfoDer: spki,
    serial,
    notBefore: new Date(+now - CLOCK_SKEW_MS),
    notAfter: new Date(Math.min(+now + HOST_CERTIFICATE_DAYS * DAY, +issuer.validity.notAfter)),
    profile: 'server',
    signingOnly: true,
    issuer: { certificate: issuer, privateKey: issuerKey },
    crlUrl: crlUrl(publicUrl, ca.id),
  });
  const x509 = new X509Certificate(pem);
  // On record like every certificate a CA issues (revocable, in its CRL); the fingerprint is of the SubjectPublicKeyInfo.
  await em.execute(
    `insert into issued_certificate (serial, ca_id, profile, subject, certificate_pem, public_key_fingerprint, not_before, not_after)
     values (?, ?, 'server', ?, ?, ?, ?, ?)`,
    [serial, ca.id, `C=CN, O=OneCard, CN=${subject.commonName}`, pem, createHash('sha256').update(spki).digest('hex'), new Date(x509.validFrom), new Date(x509.validTo)],
  );
  const sealedKey = seal(kek, sealContext(ca.id), Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string));
  // Two first messages at once: one key wins, the other's certificate stays on record unused.
  const [inserted] = await em.execute<HostKeyRow[]>(
    `insert into host_signing_key (ca_id, certificate_serial, certificate_pem, sealed_private_key) values (?, ?, ?, ?) on conflict (ca_id) do nothing returning *`,
    [ca.id, serial, pem, sealedKey],
  );
  if (inserted) return inserted;
  const [winner] = await em.execute<HostKeyRow[]>(`select * from host_signing_key where ca_id = ?`, [ca.id]);
  return winner!;
}
