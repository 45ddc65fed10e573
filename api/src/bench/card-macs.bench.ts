/**
 * Card MACs, software against PKCS#11: `npm run bench:card-macs -- [--sessions N]`.
 *
 * What one load's or purchase's MAC1 + MAC2 cost through each KeyStore (docs/cardcrypto.md, "Keys
 * in an HSM"): the sealed software store (diversification, session key and MACs in the process) and
 * the PKCS#11 store (card key and session key derived inside the token as session objects, MACs by
 * C_Encrypt there, objects destroyed). Runs against a fresh SoftHSM2 token in a temporary folder, or
 * the token ONECARD_PKCS11_MODULE / _TOKEN / _PIN name. The database is left out (the row lookup
 * both stores make is the same): the stores get an EntityManager that answers the master key's row.
 * Prints a table, the ratio, then one JSON line.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Command } from 'commander';
import { loadMac1Message, loadMac2Message, loadSessionInput } from '../cardcrypto/epurse.js';
import { type KeyStore, masterKeyLabel, type MasterKeyRow, SoftwareKeyStore } from '../readers/key-store.js';
import { Pkcs11KeyStore } from '../readers/keys/pkcs11-key-store.js';
import { type Pkcs11Config, Pkcs11Token } from '../readers/keys/pkcs11-token.js';
import { seal } from '../secrets/kek.js';
import { positiveInt } from './harness.js';

const COMPANY = '00000000-0000-4000-8000-00000000bench';

/** A throwaway SoftHSM2 token, as the tests make one, unless the environment names a real one. */
function tokenConfig(): { config: Pkcs11Config; remove: () => void } {
  const { ONECARD_PKCS11_MODULE: module, ONECARD_PKCS11_TOKEN: tokenLabel, ONECARD_PKCS11_PIN: pin } = process.env;
  if (module && tokenLabel && pin) return { config: { module, tokenLabel, pin }, remove: () => {} };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onecard-bench-softhsm-'));
  mkdirSync(path.join(dir, 'tokens'));
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'onecard-bench', '--pin', '24681357', '--so-pin', '13572468'], { stdio: 'pipe' });
  return { config: { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'onecard-bench', pin: '24681357' }, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Only the query the stores make: the active master key's row. */
const answering = (row: MasterKeyRow) => ({ execute: async () => [row] }) as unknown as EntityManager;

async function perSecond(sessions: number, run: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(sessions, 200); i++) await run(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < sessions; i++) await run(i);
  return sessions / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function main(): Promise<void> {
  const opts = new Command().option('--sessions <n>', 'sessions (MAC1 + MAC2 each) per store', positiveInt, 5_000).parse().opts<{ sessions: number }>();
  const kek = randomBytes(32);
  const master = randomBytes(16);
  const label = masterKeyLabel(COMPANY, 'LOAD', 1);
  const { config, remove } = tokenConfig();
  const token = Pkcs11Token.open(config);
  try {
    const wrapped = publicEncrypt({ key: token.transportPublicKeyPem(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, master);
    // The bench's card company id is made up: its label collides with no real key's.
    const handle = token.unwrapDes2(wrapped, label);
    const stores: Record<string, KeyStore> = {
      software: new SoftwareKeyStore(answering({ sealed_key: seal(kek, label, master), algorithm: '3DES', stored_in: 'SOFTWARE' }), kek),
      pkcs11: new Pkcs11KeyStore(answering({ sealed_key: null, algorithm: '3DES', stored_in: 'PKCS11' }), kek, token),
    };
    const request = (i: number) => {
      const terminalId = Buffer.from('001122334455', 'hex');
      const asn = Buffer.alloc(10);
      asn.writeUInt32BE(i, 6);
      return { cardCompanyId: COMPANY, purpose: 'LOAD' as const, keyVersion: 1, asn, sessionInput: loadSessionInput({ random: randomBytes(4), onlineCounter: i & 0xffff }), messages: [loadMac1Message({ oldBalance: i, amount: 100, terminalId }), loadMac2Message({ amount: 100, terminalId, date: '20261207', time: '120000' })] };
    };
    // Both stores must agree before either is timed.
    const same = await Promise.all(Object.values(stores).map((s) => s.sessionMacs({ ...request(7), sessionInput: Buffer.from('1122334400078000', 'hex') })));
    if (JSON.stringify(same[0]) !== JSON.stringify(same[1])) throw new Error('the stores disagree: no figures');
    const objectsBefore = token.objectCount();
    const sessionsPerSecond: Record<string, number> = {};
    for (const [name, store] of Object.entries(stores)) sessionsPerSecond[name] = await perSecond(opts.sessions, (i) => store.sessionMacs(request(i)));
    if (token.objectCount() !== objectsBefore) throw new Error('derived objects were left in the token');
    token.destroy(handle);

    const macs = (name: string) => 2 * sessionsPerSecond[name]!;
    const ratio = macs('software') / macs('pkcs11');
    console.log(`card MACs: ${opts.sessions} sessions per store (MAC1 + MAC2 each), node ${process.version}, one thread, ${config.module}`);
    for (const name of Object.keys(stores)) console.log(`${name.padEnd(10)} ${Math.round(macs(name)).toString().padStart(8)} MACs/s  ${Math.round(sessionsPerSecond[name]!).toString().padStart(8)} sessions/s  ${(1e6 / sessionsPerSecond[name]!).toFixed(1).padStart(7)} µs/session`);
    console.log(`software is ${ratio.toFixed(1)}× the token`);
    console.log(JSON.stringify({ bench: 'card-macs', sessions: opts.sessions, macsPerSecond: { software: Math.round(macs('software')), pkcs11: Math.round(macs('pkcs11')) }, ratio: Math.round(ratio * 10) / 10 }));
  } finally {
    token.close();
    remove();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
