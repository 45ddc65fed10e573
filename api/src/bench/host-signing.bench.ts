/**
 * Host-signing micro-benchmark: `npm run bench:host-signing -- [--messages N]`.
 *
 * What both directions of signing cost per card-session message (DESIGN.md §6): the host signs each
 * message it sends the reader (`signHostMessage`, EC P-256), the reader verifies it (warm: the host
 * chain already checked, as for every message after the first of a session; cold: the chain
 * checked too, as for a session's first message). RSA-2048 signing and verifying of the same
 * payload are printed beside it: what an RSA host key would cost. Prints a table, then one JSON line.
 * No database: the keys and certificates are made in memory as the seed makes them.
 */
import 'reflect-metadata';
import { generateKeyPairSync, type KeyObject, sign, verify, X509Certificate } from 'node:crypto';
import { Command } from 'commander';
import forge from 'node-forge';
import { signHostMessage } from '../readers/session/envelope.js';
import { generateRsaKey, issueCertificate, issueForSubjectKey, newSerial, toPem } from '../pki/x509.js';
import { positiveInt } from './harness.js';

function time(n: number, run: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 200); i++) run(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) run(i);
  return Number(process.hrtime.bigint() - start) / 1000 / n; // µs per call
}

function main(): void {
  const opts = new Command().option('--messages <n>', 'messages per measurement', positiveInt, 5_000).parse().opts<{ messages: number }>();
  const now = Date.now();
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000) };
  // A city working CA as createWorkingCa makes it (RSA-3072), its host key (P-256) and a reader certificate.
  const ca = generateRsaKey(3072);
  const caCert = issueCertificate({ subject: { commonName: 'Bench City CA', country: 'CN' }, publicKey: forge.pki.setRsaPublicKey(ca.privateKey.n, ca.privateKey.e), serial: newSerial(), ...validity, profile: 'root-ca', selfKey: ca.privateKey });
  const host = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const hostPem = issueForSubjectKey({ subject: { commonName: 'Bench host' }, subjectPublicKeyInfoDer: host.publicKey.export({ type: 'spki', format: 'der' }), serial: newSerial(), ...validity, profile: 'server', signingOnly: true, issuer: { certificate: caCert, privateKey: ca.privateKey } });
  const reader = generateRsaKey(2048);
  const readerPem = toPem(issueCertificate({ subject: { commonName: 'BENCH-R1' }, publicKey: forge.pki.setRsaPublicKey(reader.privateKey.n, reader.privateKey.e), serial: newSerial(), ...validity, profile: 'reader', issuer: { certificate: caCert, privateKey: ca.privateKey } }));
  const chain = [hostPem, toPem(caCert)];
  const key = { privateKey: host.privateKey, chainPem: chain };
  // A typical message: the first commands of a CPU load (five APDUs).
  const content = (seq: number) => ({ session: 'Q2FyZFNlc3Npb246YmVuY2g', reader: 'BENCH-R1', seq, state: 'AUTHENTICATED', commands: Array.from({ length: 5 }, () => ({ apdu: '805000020B0100002710112233445566' })), result: null, expiresAt: '2026-12-07T00:02:00.000Z' });
  const signed = signHostMessage(key, content(0));
  const hostPublic = new X509Certificate(hostPem).publicKey;
  const payload = Buffer.from(signed.payload);
  const signature = Buffer.from(signed.signature, 'base64');

  const coldVerify = () => {
    const [h, c, r] = [new X509Certificate(chain[0]!), new X509Certificate(chain[1]!), new X509Certificate(readerPem)];
    if (!(r.checkIssued(c) && r.verify(c.publicKey) && h.checkIssued(c) && h.verify(c.publicKey) && c.verify(c.publicKey))) throw new Error('chain');
    if (!verify('sha256', payload, h.publicKey, signature)) throw new Error('signature');
  };
  const rsaHost = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaSignature = sign('sha256', payload, rsaHost.privateKey);
  const verifyWith = (k: KeyObject, s: Buffer) => () => {
    if (!verify('sha256', payload, k, s)) throw new Error('signature');
  };

  const n = opts.messages;
  const rows = {
    'host signs (P-256, signHostMessage)': time(n, (i) => signHostMessage(key, content(i))),
    'reader verifies, chain known (P-256)': time(n, verifyWith(hostPublic, signature)),
    'reader verifies, chain checked too (first message)': time(Math.ceil(n / 10), coldVerify),
    'for comparison: RSA-2048 host signs': time(Math.ceil(n / 10), () => sign('sha256', payload, rsaHost.privateKey)),
    'for comparison: RSA-2048 reader verifies': time(n, verifyWith(rsaHost.publicKey, rsaSignature)),
  };
  console.log(`host-signing micro-benchmark: ${n} messages, payload ${payload.length} bytes, node ${process.version}, one thread`);
  for (const [name, us] of Object.entries(rows)) console.log(`${name.padEnd(52)} ${us.toFixed(1).padStart(8)} µs`);
  console.log(JSON.stringify({ bench: 'host-signing', messages: n, payloadBytes: payload.length, microseconds: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(v * 10) / 10])) }));
}

main();
