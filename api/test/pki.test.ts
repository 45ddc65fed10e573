import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaf, createWorkingCa, issueFromCsr, revokeCertificate } from '../src/pki/pki.service.js';
import { initRootCa, openRootCa, type RootCa } from '../src/pki/root-ca.js';
import { generateRsaKey, toPem } from '../src/pki/x509.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

const run = promisify(execFile);
const kek = Buffer.from(TEST_KEK, 'base64url');
let db: TestDatabase;
let server: TestServer;
let dir: string;
let root: RootCa;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-pki-'));
  root = await initRootCa(path.join(dir, 'root.json'), 'a long root passphrase');
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'GZ cards' });
  await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'National Working CA', publicUrl: server.url });
  await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: gz.city.id, cityCode: 'GZ', name: 'GZ Working CA', publicUrl: server.url });
});
afterAll(async () => {
  await server.close();
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function csr(): string {
  const { privateKey } = generateRsaKey(2048);
  const request = forge.pki.createCertificationRequest();
  request.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  request.setSubject([{ shortName: 'CN', value: 'whatever the device says' }]);
  request.sign(privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(request);
}

async function readerCert(caId = 'city-gz') {
  return issueFromCsr(db.orm.em.fork(), kek, caId, { csrPem: csr(), profile: 'reader', subject: { commonName: 'GZ-R-1', organization: 'Demo Shop', country: 'CN' }, validityDays: 730, publicUrl: server.url });
}

describe('the CA hierarchy', () => {
  it('the root file holds the key encrypted; a wrong passphrase does not open it', async () => {
    const content = await fs.readFile(path.join(dir, 'root.json'), 'utf8');
    expect(content).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(content).not.toContain('BEGIN RSA PRIVATE KEY');
    await expect(openRootCa(path.join(dir, 'root.json'), 'not the passphrase!')).rejects.toThrow(/wrong passphrase/);
    const [{ n }] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from certificate_authority where kind = 'ROOT' and sealed_private_key is null`);
    expect(Number(n)).toBe(1);
  });

  it('a reader certificate issued from a CSR passes openssl verify against the root', async () => {
    const issued = await readerCert();
    expect(issued.chainPem).toHaveLength(3);
    await fs.writeFile(path.join(dir, 'leaf.pem'), issued.chainPem[0]!);
    await fs.writeFile(path.join(dir, 'ca.pem'), issued.chainPem[1]!);
    await fs.writeFile(path.join(dir, 'root.pem'), issued.chainPem[2]!);
    const { stdout } = await run('openssl', ['verify', '-CAfile', 'root.pem', '-untrusted', 'ca.pem', '-purpose', 'sslclient', 'leaf.pem'], { cwd: dir });
    expect(stdout).toBe('leaf.pem: OK\n');
    // The subject is ours, not the CSR's.
    expect(issued.certificate.subject.getField('CN').value).toBe('GZ-R-1');
  });

  it('revocation shows in certificateStatus and in the CRL served over HTTP, which openssl verifies', async () => {
    const issued = await readerCert();
    const serial = issued.row.serial;
    const STATUS = `query($s: String!) { certificateStatus(serial: $s) { status issuer revocationReason } }`;
    expect((await graphql(server.url, STATUS, { s: serial })).body.data.certificateStatus).toEqual({ status: 'GOOD', issuer: 'city-gz', revocationReason: null });
    await revokeCertificate(db.orm.em.fork(), serial, 1);
    expect((await graphql(server.url, STATUS, { s: serial })).body.data.certificateStatus).toEqual({ status: 'REVOKED', issuer: 'city-gz', revocationReason: 1 });
    expect((await graphql(server.url, STATUS, { s: 'abcdef' })).body.data.certificateStatus.status).toBe('UNKNOWN');

    const res = await fetch(`${server.url}/pki/city-gz.crl`);
    expect(res.headers.get('content-type')).toBe('application/pkix-crl');
    await fs.writeFile(path.join(dir, 'gz.crl'), Buffer.from(await res.arrayBuffer()));
    await fs.writeFile(path.join(dir, 'gz-ca.pem'), issued.chainPem[1]!);
    const { stdout, stderr } = await run('openssl', ['crl', '-inform', 'DER', '-in', 'gz.crl', '-noout', '-text', '-CAfile', 'gz-ca.pem'], { cwd: dir });
    expect(stdout + stderr).toMatch(/verify OK/);
    expect(stdout).toContain(`Serial Number: ${serial.toUpperCase()}`);
    expect((await fetch(`${server.url}/pki/nope.crl`)).status).toBe(404);
  });

  it('a CRL is dated when it is issued: a revocation made later in the day is in a CRL dated after it, with no reason code for "unspecified"', async () => {
    const issued = await readerCert();
    await fs.writeFile(path.join(dir, 'gz-ca-2.pem'), issued.chainPem[1]!);
    const crlText = async (name: string) => {
      await fs.writeFile(path.join(dir, name), Buffer.from(await (await fetch(`${server.url}/pki/city-gz.crl`)).arrayBuffer()));
      const { stdout, stderr } = await run('openssl', ['crl', '-inform', 'DER', '-in', name, '-noout', '-text', '-CAfile', 'gz-ca-2.pem'], { cwd: dir });
      expect(stdout + stderr).toMatch(/verify OK/);
      return stdout;
    };
    const lastUpdate = (text: string) => new Date(/Last Update: (.+)/.exec(text)![1]!);
    const crlNumber = (text: string) => BigInt(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]!);
    const before = await crlText('before.crl');
    expect(await crlText('again.crl')).toBe(before); // the same CRL until something changes
    const revoked = await revokeCertificate(db.orm.em.fork(), issued.row.serial); // reason: unspecified (0)
    const after = await crlText('after.crl');
    // openssl prints whole seconds: the CRL is dated no earlier than the second of the revocation.
    expect(+lastUpdate(after)).toBeGreaterThanOrEqual(Math.floor(+new Date(revoked.revoked_at!) / 1000) * 1000);
    expect(crlNumber(after)).toBeGreaterThan(crlNumber(before));
    const entry = after.slice(after.indexOf(`Serial Number: ${issued.row.serial.toUpperCase()}`)).split('Serial Number:')[1]!;
    expect(entry).not.toMatch(/Reason Code|Unspecified/);
    expect(after).toMatch(/Key Compromise/); // an earlier revocation's reason is kept
  });

  it('checkLeaf refuses revoked, foreign, expired and wrong-profile certificates', async () => {
    const em = db.orm.em.fork();
    const good = await readerCert();
    const now = new Date();
    expect((await checkLeaf(em, good.chainPem[0]!, { caId: 'city-gz', profile: 'reader', now })).ok).toBe(true);
    expect(await checkLeaf(em, good.chainPem[0]!, { caId: 'national', profile: 'reader', now })).toEqual({ ok: false, refusal: 'UNKNOWN_CA' });
    expect(await checkLeaf(em, good.chainPem[0]!, { caId: 'city-gz', profile: 'terminal', now })).toEqual({ ok: false, refusal: 'WRONG_PROFILE' });
    expect(await checkLeaf(em, good.chainPem[0]!, { caId: 'city-gz', profile: 'reader', now: new Date(+now + 800 * 86_400_000) })).toEqual({ ok: false, refusal: 'EXPIRED' });
    await revokeCertificate(em, good.row.serial, 4);
    expect(await checkLeaf(em, good.chainPem[0]!, { caId: 'city-gz', profile: 'reader', now })).toEqual({ ok: false, refusal: 'REVOKED' });
    expect(await checkLeaf(em, 'not a certificate', { caId: 'city-gz', profile: 'reader', now })).toEqual({ ok: false, refusal: 'UNKNOWN_CERTIFICATE' });
  });

  it('a certificate revoked or deleted however it is written (plain SQL too) is refused at the next check, though its chain was checked and kept before', async () => {
    const em = db.orm.em.fork();
    const now = new Date();
    for (const write of [
      `update issued_certificate set status = 'REVOKED', revoked_at = now(), revocation_reason = 1 where serial = ?`,
      `delete from issued_certificate where serial = ?`,
    ]) {
      const leaf = await readerCert();
      expect((await checkLeaf(em, leaf.chainPem[0]!, { caId: 'city-gz', profile: 'reader', now })).ok).toBe(true);
      await em.execute(write, [leaf.row.serial]);
      expect((await checkLeaf(em, leaf.chainPem[0]!, { caId: 'city-gz', profile: 'reader', now })).ok).toBe(false);
    }
  });

  it('the root CRL, signed offline, is served and verifies against the root', async () => {
    const res = await fetch(`${server.url}/pki/root.crl`);
    expect(res.status).toBe(200);
    await fs.writeFile(path.join(dir, 'root.crl'), Buffer.from(await res.arrayBuffer()));
    await fs.writeFile(path.join(dir, 'root-ca.pem'), toPem(root.certificate));
    const { stdout, stderr } = await run('openssl', ['crl', '-inform', 'DER', '-in', 'root.crl', '-noout', '-text', '-CAfile', 'root-ca.pem'], { cwd: dir });
    expect(stdout + stderr).toMatch(/verify OK/);
    expect(stdout).toMatch(/No Revoked Certificates/);
  });

  it('the CA certificates are public', async () => {
    const { body } = await graphql(server.url, '{ certificateAuthorities { id kind crlUrl } }');
    expect(body.data.certificateAuthorities).toEqual([
      { id: 'city-gz', kind: 'CITY', crlUrl: `${server.url}/pki/city-gz.crl` },
      { id: 'national', kind: 'NATIONAL', crlUrl: `${server.url}/pki/national.crl` },
      { id: 'root', kind: 'ROOT', crlUrl: null },
    ]);
    expect(await (await fetch(`${server.url}/pki/root.pem`)).text()).toContain('BEGIN CERTIFICATE');
  });
});
