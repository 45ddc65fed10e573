import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCrl, fromPem, generateRsaKey, issueCertificate, newSerial, parseCsr, signedBy, toDer, toPem } from './x509.js';

const run = promisify(execFile);
let dir: string;
const day = 86_400_000;
const now = new Date();

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-x509-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

async function openssl(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('openssl', args, { cwd: dir });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

function chain() {
  const rootKey = generateRsaKey(2048);
  const root = issueCertificate({ subject: { commonName: 'OneCard Root CA', organization: 'OneCard', country: 'CN' }, publicKey: forge.pki.setRsaPublicKey(rootKey.privateKey.n, rootKey.privateKey.e), serial: newSerial(), notBefore: now, notAfter: new Date(+now + 3650 * day), profile: 'root-ca', selfKey: rootKey.privateKey });
  const caKey = generateRsaKey(2048);
  const ca = issueCertificate({ subject: { commonName: 'OneCard GZ Working CA', organization: 'OneCard', country: 'CN' }, publicKey: forge.pki.setRsaPublicKey(caKey.privateKey.n, caKey.privateKey.e), serial: newSerial(), notBefore: now, notAfter: new Date(+now + 1825 * day), profile: 'working-ca', issuer: { certificate: root, privateKey: rootKey.privateKey }, crlUrl: 'http://127.0.0.1/pki/root.crl' });
  return { root, rootKey, ca, caKey };
}

function csrFor(commonName: string) {
  const key = generateRsaKey(2048);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.privateKey.n, key.privateKey.e);
  csr.setSubject([{ shortName: 'CN', value: commonName }]);
  csr.sign(key.privateKey, forge.md.sha256.create());
  return { key, pem: forge.pki.certificationRequestToPem(csr) };
}

describe('X.509 issued by node-forge, checked by openssl', () => {
  it('a reader certificate from a CSR chains to the root (openssl verify)', async () => {
    const { root, ca, caKey } = chain();
    const csr = parseCsr(csrFor('reader-0001').pem);
    const reader = issueCertificate({ subject: { commonName: 'GZ-R-0001', organization: 'Demo Shop', country: 'CN' }, publicKey: csr.publicKey!, serial: newSerial(), notBefore: now, notAfter: new Date(+now + 730 * day), profile: 'reader', issuer: { certificate: ca, privateKey: caKey.privateKey }, crlUrl: 'http://127.0.0.1/pki/gz.crl' });
    await fs.writeFile(path.join(dir, 'root.pem'), toPem(root));
    await fs.writeFile(path.join(dir, 'ca.pem'), toPem(ca));
    await fs.writeFile(path.join(dir, 'reader.pem'), toPem(reader));
    const verified = await openssl('verify', '-CAfile', 'root.pem', '-untrusted', 'ca.pem', '-purpose', 'sslclient', 'reader.pem');
    expect(verified).toEqual({ code: 0, out: 'reader.pem: OK\n' });
    const text = (await openssl('x509', '-in', 'reader.pem', '-noout', '-text')).out;
    expect(text).toMatch(/TLS Web Client Authentication/);
    // A reader's national and city keys sign; what is sealed to it goes to its encryption certificate (profile reader-encryption).
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toContain('URI:http://127.0.0.1/pki/gz.crl');
    expect(signedBy(reader, ca)).toBe(true);
    expect(signedBy(reader, root)).toBe(false);
  });

  it('a certificate from another root does not verify', async () => {
    const a = chain();
    const b = chain();
    await fs.writeFile(path.join(dir, 'a-root.pem'), toPem(a.root));
    await fs.writeFile(path.join(dir, 'b-ca.pem'), toPem(b.ca));
    expect((await openssl('verify', '-CAfile', 'a-root.pem', 'b-ca.pem')).code).not.toBe(0);
  });

  it('a CRL lists revoked serials, verifies against its CA, and revokes in openssl verify -crl_check', async () => {
    const { root, ca, caKey } = chain();
    const csr = parseCsr(csrFor('r2').pem);
    const serial = newSerial();
    const reader = issueCertificate({ subject: { commonName: 'GZ-R-0002' }, publicKey: csr.publicKey!, serial, notBefore: now, notAfter: new Date(+now + 30 * day), profile: 'reader', issuer: { certificate: ca, privateKey: caKey.privateKey } });
    const crl = buildCrl({ issuer: ca, issuerKey: caKey.privateKey, crlNumber: 7, thisUpdate: now, nextUpdate: new Date(+now + day), revoked: [{ serial, revokedAt: now, reasonCode: 1 }] });
    await fs.writeFile(path.join(dir, 'crl-root.pem'), toPem(root));
    await fs.writeFile(path.join(dir, 'crl-ca.pem'), toPem(ca));
    await fs.writeFile(path.join(dir, 'crl-reader.pem'), toPem(reader));
    await fs.writeFile(path.join(dir, 'ca.crl'), crl);
    const parsed = await openssl('crl', '-inform', 'DER', '-in', 'ca.crl', '-noout', '-text', '-CAfile', 'crl-ca.pem');
    expect(parsed.out).toMatch(/verify OK/);
    expect(parsed.out).toContain(`Serial Number: ${serial.toUpperCase()}`);
    expect(parsed.out).toMatch(/X509v3 CRL Number:\s+7/);
    expect(parsed.out).toMatch(/Key Compromise/);
    await run('openssl', ['crl', '-inform', 'DER', '-in', 'ca.crl', '-out', 'ca-crl.pem'], { cwd: dir });
    const checked = await openssl('verify', '-CAfile', 'crl-root.pem', '-untrusted', 'crl-ca.pem', '-CRLfile', 'ca-crl.pem', '-crl_check', 'crl-reader.pem');
    expect(checked.code).not.toBe(0);
    expect(checked.out).toMatch(/certificate revoked/);
    expect(toDer(reader).length).toBeGreaterThan(500);
  });

  it('a Chinese owner name is a UTF8String that openssl and node read back, and the chain verifies', async () => {
    const { root, rootKey, ca, caKey } = chain();
    const owner = '广州羊城通 Guangzhou Yangchengtong';
    const csr = parseCsr(csrFor('reader-zh').pem);
    const reader = issueCertificate({ subject: { commonName: 'GZ-R-中文-0001', organization: owner, organizationalUnit: '读写器 R1', country: 'CN' }, publicKey: csr.publicKey!, serial: newSerial(), notBefore: now, notAfter: new Date(+now + 30 * day), profile: 'reader', issuer: { certificate: ca, privateKey: caKey.privateKey } });
    const pem = toPem(reader);
    // node:crypto reads it, and the names come back whole.
    const x509 = new X509Certificate(pem);
    expect(x509.subject).toContain(`O=${owner}`);
    expect(x509.subject).toContain('CN=GZ-R-中文-0001');
    expect(x509.subject).toContain('OU=读写器 R1');
    // openssl reads it: the names are UTF8String, printed back as UTF-8.
    await fs.writeFile(path.join(dir, 'zh-root.pem'), toPem(root));
    await fs.writeFile(path.join(dir, 'zh-ca.pem'), toPem(ca));
    await fs.writeFile(path.join(dir, 'zh-reader.pem'), pem);
    const subject = await openssl('x509', '-in', 'zh-reader.pem', '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus_space');
    expect(subject).toEqual({ code: 0, out: `subject=C=CN, O=${owner}, OU=读写器 R1, CN=GZ-R-中文-0001\n` });
    const parsed = await openssl('asn1parse', '-in', 'zh-reader.pem');
    expect(parsed.out).toMatch(/UTF8STRING\s+:/);
    expect(await openssl('verify', '-CAfile', 'zh-root.pem', '-untrusted', 'zh-ca.pem', 'zh-reader.pem')).toEqual({ code: 0, out: 'zh-reader.pem: OK\n' });
    // A certificate issued by a CA with a Chinese name names that issuer exactly (the chain links by name).
    const zhCaKey = generateRsaKey(2048);
    const zhCa = issueCertificate({ subject: { commonName: '广州市工作 CA', organization: owner, country: 'CN' }, publicKey: forge.pki.setRsaPublicKey(zhCaKey.privateKey.n, zhCaKey.privateKey.e), serial: newSerial(), notBefore: now, notAfter: new Date(+now + 365 * day), profile: 'working-ca', issuer: { certificate: root, privateKey: rootKey.privateKey } });
    const leaf = issueCertificate({ subject: { commonName: 'GZ-R-0003', organization: owner }, publicKey: parseCsr(csrFor('r3').pem).publicKey!, serial: newSerial(), notBefore: now, notAfter: new Date(+now + 30 * day), profile: 'reader', issuer: { certificate: fromPem(toPem(zhCa)), privateKey: zhCaKey.privateKey } });
    await fs.writeFile(path.join(dir, 'zh-ca2.pem'), toPem(zhCa));
    await fs.writeFile(path.join(dir, 'zh-leaf.pem'), toPem(leaf));
    expect(await openssl('verify', '-CAfile', 'zh-root.pem', '-untrusted', 'zh-ca2.pem', 'zh-leaf.pem')).toEqual({ code: 0, out: 'zh-leaf.pem: OK\n' });
    expect(new X509Certificate(toPem(leaf)).issuer).toContain('CN=广州市工作 CA');
    expect(signedBy(fromPem(toPem(leaf)), fromPem(toPem(zhCa)))).toBe(true);
  });

  it('a CSR whose signature does not match its key is refused', () => {
    const good = csrFor('x');
    const other = generateRsaKey(2048);
    const csr = forge.pki.certificationRequestFromPem(good.pem);
    csr.sign(other.privateKey, forge.md.sha256.create()); // signed by a key it does not carry
    expect(() => parseCsr(forge.pki.certificationRequestToPem(csr))).toThrow(/does not verify/);
    expect(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----')).toThrow(/not a PEM/);
  });
});
