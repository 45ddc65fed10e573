import { createHash, X509Certificate } from 'node:crypto';

/**
 * What checking a leaf certificate against a working CA and the root found, kept so that a reader's
 * certificates are parsed and their signatures verified once, not on every card session (issue 20:
 * node-forge's pure-JavaScript chain checks were 12 % of the API's time per payment).
 *
 * An entry is keyed by the fingerprints of the three certificates (leaf, CA, root) and the profile,
 * and holds the revocation counters (`certificate_authority.revocations`) of the CA and the root as
 * they were when it was made. A revocation, or any change or deletion of an issued certificate
 * however it is written, bumps its issuer's counter in the same transaction (a trigger), and
 * every check reads both counters first: an entry whose counters moved is not used, so every API
 * process sees a revocation at the next check, with no notification to miss. Validity dates are
 * compared with the check's `now` every time.
 */
export interface VerifiedLeaf {
  serial: string;
  caId: string;
  notBefore: Date;
  notAfter: Date;
  caNotAfter: Date;
  /** SPKI PEM of the leaf's key. */
  publicKeyPem: string;
  /** The key's fingerprint as `publicKeyFingerprint` (x509.ts) computes it. */
  publicKeyFingerprint: string;
}

interface Entry {
  leaf: VerifiedLeaf;
  caRevocations: string;
  rootRevocations: string;
}

/** Plenty for every reader of a city working at once; the oldest entry goes first beyond it. */
const MAX_ENTRIES = 10_000;
const entries = new Map<string, Entry>();

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export const verifiedLeafKey = (leafPem: string, caPem: string, rootPem: string, profile: string) => `${sha256(leafPem)}:${sha256(caPem)}:${sha256(rootPem)}:${profile}`;

/** The leaf checked under this key while the CA's and the root's revocation counters stood where they stand now. */
export function verifiedLeaf(key: string, counters: { ca: string; root: string }): VerifiedLeaf | undefined {
  const entry = entries.get(key);
  if (!entry) return undefined;
  if (entry.caRevocations !== counters.ca || entry.rootRevocations !== counters.root) {
    entries.delete(key);
    return undefined;
  }
  return entry.leaf;
}

/** Keeps a leaf that passed every check, with the counters read before its records were. */
export function rememberVerifiedLeaf(key: string, counters: { ca: string; root: string }, leaf: VerifiedLeaf): void {
  entries.delete(key);
  if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
  entries.set(key, { leaf, caRevocations: counters.ca, rootRevocations: counters.root });
}

/** Parsed CA certificates by PEM: a handful per installation, parsed once. */
const parsedCas = new Map<string, X509Certificate>();

export function parsedCa(pem: string): X509Certificate {
  let cert = parsedCas.get(pem);
  if (!cert) {
    if (parsedCas.size >= 1_000) parsedCas.clear();
    cert = new X509Certificate(pem);
    parsedCas.set(pem, cert);
  }
  return cert;
}

/** Whether `cert` names `issuer` as its issuer and carries a signature by its key. */
export function nativeSignedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
