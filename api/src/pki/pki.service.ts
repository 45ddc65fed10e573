import { X509Certificate } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import forge from 'node-forge';
import { seal, unseal } from '../secrets/kek.js';
import { PkiError } from './pki.errors.js';
import { defineMachine, NOW, transition } from '../lifecycle/machine.js';
import type { RootCa } from './root-ca.js';
import { nativeSignedBy, parsedCa, rememberVerifiedLeaf, type VerifiedLeaf, verifiedLeaf, verifiedLeafKey } from './verified-leaves.js';
import {
  buildCrl,
  type Certificate,
  CsrError,
  type DistinguishedName,
  fromPem,
  generateRsaKey,
  issueCertificate,
  keyObjectFingerprint,
  newSerial,
  parseCsr,
  type PrivateKey,
  type Profile,
  publicKeyFingerprint,
  subjectField,
  subjectText,
  toPem,
} from './x509.js';

const DAY = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000;

export interface CaRow {
  id: string;
  kind: 'ROOT' | 'NATIONAL' | 'CITY';
  city_id: string | null;
  name: string;
  certificate_pem: string;
  sealed_private_key: string | null;
  parent_id: string | null;
  revocations: string;
  /** The root: its CRL as signed offline. A working CA: its current CRL, signed online. */
  signed_crl: Buffer | null;
  /** A working CA: when its current CRL was signed, and the revocation count it covers. */
  crl_this_update: Date | null;
  crl_revocations: string | null;
}

export interface IssuedRow {
  serial: string;
  ca_id: string;
  profile: Profile;
  subject: string;
  certificate_pem: string;
  public_key_fingerprint: string;
  not_before: Date;
  not_after: Date;
  status: 'GOOD' | 'REVOKED';
  revoked_at: Date | null;
  revocation_reason: number | null;
}

export const crlUrl = (publicUrl: string, caId: string) => `${publicUrl}/pki/${caId}.crl`;

export async function findCa(em: EntityManager, id: string): Promise<CaRow | undefined> {
  const [row] = await em.execute<CaRow[]>(`select * from certificate_authority where id = ?`, [id]);
  return row;
}

export async function findCityCa(em: EntityManager, cityId: string): Promise<CaRow | undefined> {
  const [row] = await em.execute<CaRow[]>(`select * from certificate_authority where kind = 'CITY' and city_id = ?`, [cityId]);
  return row;
}

export async function listCas(em: EntityManager): Promise<CaRow[]> {
  return em.execute<CaRow[]>(`select * from certificate_authority order by kind, id`);
}

/** Records the root's certificate (public) so that chains can be checked; its key stays offline. */
export async function installRoot(em: EntityManager, root: Certificate): Promise<CaRow> {
  const existing = await findCa(em, 'root');
  if (existing) {
    if (existing.certificate_pem.trim() !== toPem(root).trim()) throw new PkiError('ROOT_MISMATCH', 'another root CA is installed');
    return existing;
  }
  const [row] = await em.execute<CaRow[]>(
    `insert into certificate_authority (id, kind, name, certificate_pem) values ('root', 'ROOT', ?, ?) returning *`,
    [subjectField(root, 'CN') ?? 'root', toPem(root)],
  );
  return row!;
}

/**
 * A working CA signed by the offline root: the national one, or one per city. Its key is sealed
 * with the key-encryption key; its certificate is recorded as issued by the root.
 */
export async function createWorkingCa(
  em: EntityManager,
  kek: Buffer,
  root: RootCa,
  input: { kind: 'NATIONAL' | 'CITY'; cityId?: string; cityCode?: string; name: string; publicUrl: string; now?: Date },
): Promise<CaRow> {
  const installed = await installRoot(em, root.certificate);
  const id = input.kind === 'NATIONAL' ? 'national' : `city-${(input.cityCode ?? '').toLowerCase()}`;
  if (input.kind === 'CITY' && (!input.cityId || !input.cityCode)) throw new PkiError('INVALID_INPUT', 'a city CA needs its city');
  if (await findCa(em, id)) throw new PkiError('ALREADY_EXISTS', `CA ${id} exists`);
  const now = input.now ?? new Date();
  const { privateKey, privateKeyPem } = generateRsaKey(3072);
  const serial = newSerial();
  const certificate = issueCertificate({
    subject: { commonName: input.name, organization: 'OneCard', country: 'CN' },
    publicKey: forge.pki.setRsaPublicKey(privateKey.n, privateKey.e),
    serial,
    notBefore: new Date(+now - CLOCK_SKEW_MS),
    notAfter: new Date(Math.min(+now + 10 * 365 * DAY, +root.certificate.validity.notAfter)),
    profile: 'working-ca',
    issuer: root,
    crlUrl: crlUrl(input.publicUrl, installed.id),
  });
  const [row] = await em.execute<CaRow[]>(
    `insert into certificate_authority (id, kind, city_id, name, certificate_pem, sealed_private_key, parent_id)
     values (?, ?, ?, ?, ?, ?, 'root') returning *`,
    [id, input.kind, input.cityId ?? null, input.name, toPem(certificate), seal(kek, `ca-key:${id}`, Buffer.from(privateKeyPem))],
  );
  await record(em, installed.id, 'working-ca', certificate);
  // The working CA's certificate names the root's CRL: publish one while the root key is at hand.
  await publishRootCrl(em, root, now);
  return row!;
}

async function record(em: EntityManager, caId: string, profile: Profile, cert: Certificate): Promise<IssuedRow> {
  const [row] = await em.execute<IssuedRow[]>(
    `insert into issued_certificate (serial, ca_id, profile, subject, certificate_pem, public_key_fingerprint, not_before, not_after)
     values (?, ?, ?, ?, ?, ?, ?, ?) returning *`,
    [
      cert.serialNumber,
      caId,
      profile,
      subjectText(cert),
      toPem(cert),
      publicKeyFingerprint(cert.publicKey),
      cert.validity.notBefore,
      cert.validity.notAfter,
    ],
  );
  return row!;
}

function caKey(kek: Buffer, ca: CaRow): PrivateKey {
  if (!ca.sealed_private_key) throw new PkiError('INVALID_INPUT', `CA ${ca.id} signs offline`);
  return forge.pki.privateKeyFromPem(unseal(kek, `ca-key:${ca.id}`, ca.sealed_private_key).toString('utf8')) as PrivateKey;
}

/** Issues a certificate from a CSR; the subject is ours (the CSR proves only possession of the key). */
export async function issueFromCsr(
  em: EntityManager,
  kek: Buffer,
  caId: string,
  input: { csrPem: string; profile: 'reader' | 'reader-encryption' | 'terminal' | 'server'; subject: DistinguishedName; validityDays: number; publicUrl: string; dnsNames?: string[]; now?: Date },
): Promise<{ certificate: Certificate; row: IssuedRow; chainPem: string[] }> {
  const ca = await findCa(em, caId);
  if (!ca || ca.kind === 'ROOT') throw new PkiError('NOT_FOUND', `no working CA ${caId}`);
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = parseCsr(input.csrPem);
  } catch (err) {
    throw new PkiError('INVALID_CSR', err instanceof CsrError ? err.message : 'unreadable CSR');
  }
  const issuer = fromPem(ca.certificate_pem);
  const now = input.now ?? new Date();
  const certificate = issueCertificate({
    subject: input.subject,
    publicKey: csr.publicKey!,
    serial: newSerial(),
    // A few minutes back, so a relying party whose clock runs a little behind accepts it at once.
    notBefore: new Date(+now - CLOCK_SKEW_MS),
    notAfter: new Date(Math.min(+now + input.validityDays * DAY, +issuer.validity.notAfter)),
    profile: input.profile,
    issuer: { certificate: issuer, privateKey: caKey(kek, ca) },
    crlUrl: crlUrl(input.publicUrl, ca.id),
    dnsNames: input.dnsNames,
  });
  const row = await record(em, ca.id, input.profile, certificate);
  const root = await findCa(em, 'root');
  return { certificate, row, chainPem: [toPem(certificate), ca.certificate_pem, ...(root ? [root.certificate_pem] : [])] };
}

/** A certificate is GOOD until it is revoked, for good (lifecycle/machine.ts). */
export const certificateMachine = defineMachine<IssuedRow['status'], IssuedRow>({
  name: 'issued_certificate',
  table: 'issued_certificate',
  key: 'serial',
  initial: ['GOOD'],
  transitions: { GOOD: ['REVOKED'], REVOKED: [] },
});

/** Revokes a certificate (idempotent); the next CRL of its CA lists it. */
export async function revokeCertificate(em: EntityManager, serial: string, reasonCode = 0): Promise<IssuedRow> {
  return em.transactional(async (tx) => {
    const [found] = await tx.execute<IssuedRow[]>(`select * from issued_certificate where serial = ? for update`, [serial.toLowerCase()]);
    if (!found) throw new PkiError('NOT_FOUND', `no certificate with serial ${serial}`);
    // Revoked already: it stays as it was revoked (time and reason).
    // The revocation moves its CA's `revocations` counter (a trigger, migration 20261207000003).
    return found.status === 'REVOKED' ? found : await transition(tx, certificateMachine, found, 'REVOKED', { revoked_at: NOW, revocation_reason: reasonCode });
  });
}

export async function findIssued(em: EntityManager, serial: string): Promise<IssuedRow | undefined> {
  if (!/^[0-9a-fA-F]{2,40}$/.test(serial)) return undefined;
  const [row] = await em.execute<IssuedRow[]>(`select * from issued_certificate where serial = ?`, [serial.toLowerCase()]);
  return row;
}

/** A working CA's CRL is signed again at least this often, and at once when a revocation is added. */
const CRL_REISSUE_MS = DAY;

/**
 * The CA's current CRL (DER). A working CA's CRL is signed when its revocations change or the last
 * one is a day old, dated at that moment (RFC 5280 §5.1.2.4: thisUpdate is the issue date), and
 * kept, so every process serves the same bytes until the next change. The CRL number is the issue
 * time in milliseconds: it only grows (and stays above the day-based numbers of earlier versions).
 */
export async function crlFor(em: EntityManager, kek: Buffer, caId: string, now = new Date()): Promise<Buffer> {
  const ca = await findCa(em, caId);
  if (ca?.kind === 'ROOT' && ca.signed_crl) return Buffer.from(ca.signed_crl);
  if (!ca || ca.kind === 'ROOT') throw new PkiError('NOT_FOUND', `no CRL for ${caId}`);
  const current = ca.signed_crl && ca.crl_this_update && ca.crl_revocations !== null && String(ca.crl_revocations) === String(ca.revocations) && +now - +new Date(ca.crl_this_update) < CRL_REISSUE_MS;
  if (current) return Buffer.from(ca.signed_crl!);
  // Read after the CA row: a revocation counted later makes the next request sign again.
  const revoked = await em.execute<{ serial: string; revoked_at: Date; revocation_reason: number }[]>(
    `select serial, revoked_at, revocation_reason from issued_certificate where ca_id = ? and status = 'REVOKED' and not_after > now() order by serial`,
    [caId],
  );
  const der = buildCrl({
    issuer: fromPem(ca.certificate_pem),
    issuerKey: caKey(kek, ca),
    crlNumber: +now,
    thisUpdate: now,
    nextUpdate: new Date(+now + 2 * DAY),
    revoked: revoked.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revoked_at), reasonCode: r.revocation_reason })),
  });
  // Two processes may sign at once: both CRLs are valid; the newer one is kept.
  await em.execute(
    `update certificate_authority set signed_crl = ?, crl_this_update = ?, crl_revocations = ? where id = ? and (crl_this_update is null or crl_this_update < ?)`,
    [der, now, ca.revocations, ca.id, now],
  );
  return der;
}

export type ChainRefusal = 'UNKNOWN_CA' | 'BAD_SIGNATURE' | 'NOT_YET_VALID' | 'EXPIRED' | 'REVOKED' | 'UNKNOWN_CERTIFICATE' | 'WRONG_PROFILE';

/** Where a leaf's working CA is: by its id, or the working CA of a city. */
export type CaRef = { caId: string } | { cityId: string };

/** A CA row as a chain check reads it: its certificate and its revocation counter. */
export type ChainCa = Pick<CaRow, 'id' | 'kind' | 'city_id' | 'certificate_pem' | 'revocations'>;

/**
 * The CAs a reader's chains are checked against (the national working CA, the city's, the root)
 * in one statement, for checkLeaf's `cas`: read in the same transaction as the check, never kept,
 * since their revocation counters are what makes a remembered chain safe to use.
 */
export async function readChainCas(em: EntityManager, cityId: string): Promise<ChainCa[]> {
  return em.execute<ChainCa[]>(`select id, kind, city_id, certificate_pem, revocations from certificate_authority where id in ('national', 'root') or (kind = 'CITY' and city_id = ?)`, [cityId]);
}

/**
 * Checks a leaf certificate against one of our working CAs: signed by it, within validity at
 * `now`, issued by us (on record), not revoked, of the expected profile. The working CA itself
 * must chain to the installed root and be unrevoked.
 *
 * With node:crypto's X509Certificate (node-forge stays for issuing), and once per certificate
 * triple: one statement reads the CA, the root and their revocation counters; a leaf checked
 * before under the same certificates and counters is not parsed, verified or looked up again
 * (verified-leaves.ts). A revocation moves a counter in its own transaction, so no process serves
 * a revoked certificate from what it remembers.
 */
export async function checkLeaf(
  em: EntityManager,
  leafPem: string,
  expected: CaRef & { profile: Profile; now: Date; cas?: readonly ChainCa[] },
): Promise<{ ok: true; row: Pick<IssuedRow, 'serial' | 'ca_id'>; leaf: VerifiedLeaf } | { ok: false; refusal: ChainRefusal }> {
  const cas = expected.cas
    ? expected.cas.filter((c) => c.id === 'root' || ('caId' in expected ? c.id === expected.caId : c.kind === 'CITY' && c.city_id === expected.cityId))
    : await em.execute<ChainCa[]>(
        'caId' in expected
          ? `select id, kind, city_id, certificate_pem, revocations from certificate_authority where id in (?, 'root')`
          : `select id, kind, city_id, certificate_pem, revocations from certificate_authority where (kind = 'CITY' and city_id = ?) or id = 'root'`,
        ['caId' in expected ? expected.caId : expected.cityId],
      );
  const root = cas.find((c) => c.kind === 'ROOT');
  const ca = cas.find((c) => c.kind !== 'ROOT');
  if (!ca || !root) return { ok: false, refusal: 'UNKNOWN_CA' };
  const key = verifiedLeafKey(leafPem, ca.certificate_pem, root.certificate_pem, expected.profile);
  const counters = { ca: String(ca.revocations), root: String(root.revocations) };
  let leaf = verifiedLeaf(key, counters);
  if (!leaf) {
    const checked = await verifyLeaf(em, leafPem, ca, root, expected.profile, expected.now);
    if (!checked.ok) return checked;
    leaf = checked.leaf;
    rememberVerifiedLeaf(key, counters, leaf);
  }
  if (expected.now < leaf.notBefore) return { ok: false, refusal: 'NOT_YET_VALID' };
  if (expected.now > leaf.notAfter || expected.now > leaf.caNotAfter) return { ok: false, refusal: 'EXPIRED' };
  return { ok: true, row: { serial: leaf.serial, ca_id: leaf.caId }, leaf };
}

/** The checks of checkLeaf that need parsing, signatures and the records, in its order of refusals. */
async function verifyLeaf(em: EntityManager, leafPem: string, ca: Pick<CaRow, 'id' | 'certificate_pem'>, root: Pick<CaRow, 'certificate_pem'>, profile: Profile, now: Date): Promise<{ ok: true; leaf: VerifiedLeaf } | { ok: false; refusal: ChainRefusal }> {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch {
    return { ok: false, refusal: 'UNKNOWN_CERTIFICATE' };
  }
  const caCert = parsedCa(ca.certificate_pem);
  if (!nativeSignedBy(leaf, caCert) || !nativeSignedBy(caCert, parsedCa(root.certificate_pem))) return { ok: false, refusal: 'UNKNOWN_CA' };
  const caRecord = await findIssued(em, caCert.serialNumber);
  if (caRecord?.status === 'REVOKED') return { ok: false, refusal: 'REVOKED' };
  if (now < new Date(leaf.validFrom)) return { ok: false, refusal: 'NOT_YET_VALID' };
  if (now > new Date(leaf.validTo) || now > new Date(caCert.validTo)) return { ok: false, refusal: 'EXPIRED' };
  const row = await findIssued(em, leaf.serialNumber);
  if (!row || row.ca_id !== ca.id) return { ok: false, refusal: 'UNKNOWN_CERTIFICATE' };
  if (row.status === 'REVOKED') return { ok: false, refusal: 'REVOKED' };
  if (row.profile !== profile) return { ok: false, refusal: 'WRONG_PROFILE' };
  return {
    ok: true,
    leaf: {
      serial: row.serial,
      caId: ca.id,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      caNotAfter: new Date(caCert.validTo),
      publicKeyPem: leaf.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      publicKeyFingerprint: keyObjectFingerprint(leaf.publicKey),
    },
  };
}

/**
 * Signs the root's CRL (the working CAs it revoked) with the offline root key and stores it to be
 * served at /pki/root.crl. Run whenever a working CA is revoked, and before the last one expires.
 */
export async function publishRootCrl(em: EntityManager, root: RootCa, now = new Date(), validityDays = 30): Promise<Buffer> {
  const installed = await installRoot(em, root.certificate);
  const revoked = await em.execute<{ serial: string; revoked_at: Date; revocation_reason: number }[]>(
    `select serial, revoked_at, revocation_reason from issued_certificate where ca_id = 'root' and status = 'REVOKED' order by serial`,
  );
  const der = buildCrl({
    issuer: root.certificate,
    issuerKey: root.privateKey,
    crlNumber: Math.floor(+now / 1000),
    thisUpdate: now,
    nextUpdate: new Date(+now + validityDays * DAY),
    revoked: revoked.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revoked_at), reasonCode: r.revocation_reason })),
  });
  await em.execute(`update certificate_authority set signed_crl = ? where id = ?`, [der, installed.id]);
  return der;
}
