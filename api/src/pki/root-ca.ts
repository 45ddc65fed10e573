import fs from 'node:fs/promises';
import forge from 'node-forge';
import { type Certificate, fromPem, generateRsaKey, issueCertificate, newSerial, type PrivateKey, toPem } from './x509.js';

/** The offline root: its certificate and its key, which lives only in this file, encrypted. */
export interface RootCa {
  certificate: Certificate;
  privateKey: PrivateKey;
}

interface RootFile {
  kind: 'onecard-root-ca';
  certificatePem: string;
  /** PKCS#8, AES-256 under the passphrase (`openssl pkey` reads it too). */
  encryptedPrivateKeyPem: string;
}

const YEAR = 365 * 86_400_000;

/** `onecard ca init-root`: a new root CA (RSA 3072, 20 years) written to `file`, never to the database. */
export async function initRootCa(file: string, passphrase: string, opts: { commonName?: string; now?: Date } = {}): Promise<RootCa> {
  if (passphrase.length < 12) throw new Error('the root CA passphrase must be at least 12 characters');
  const now = opts.now ?? new Date();
  const { privateKey } = generateRsaKey(3072);
  const certificate = issueCertificate({
    subject: { commonName: opts.commonName ?? 'OneCard Root CA', organization: 'OneCard', country: 'CN' },
    publicKey: forge.pki.setRsaPublicKey(privateKey.n, privateKey.e),
    serial: newSerial(),
    notBefore: new Date(+now - 5 * 60_000), // a little back, for relying parties whose clocks lag
    notAfter: new Date(+now + 20 * YEAR),
    profile: 'root-ca',
    selfKey: privateKey,
  });
  const content: RootFile = {
    kind: 'onecard-root-ca',
    certificatePem: toPem(certificate),
    encryptedPrivateKeyPem: forge.pki.encryptRsaPrivateKey(privateKey, passphrase, { algorithm: 'aes256' }),
  };
  await fs.writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { certificate, privateKey };
}

/** Opens a root CA file with its passphrase (for signing working CAs, offline). */
export async function openRootCa(file: string, passphrase: string): Promise<RootCa> {
  const content = JSON.parse(await fs.readFile(file, 'utf8')) as RootFile;
  if (content.kind !== 'onecard-root-ca') throw new Error(`${file} is not a OneCard root CA file`);
  const privateKey = forge.pki.decryptRsaPrivateKey(content.encryptedPrivateKeyPem, passphrase) as PrivateKey | null;
  if (!privateKey) throw new Error('wrong passphrase for the root CA');
  return { certificate: fromPem(content.certificatePem), privateKey };
}
