/**
 * `onecard card-keys`, the key ceremony at the command line: the transport key printed, a master key
 * wrapped with it imported with its check value, activated, retired, listed; a wrong check value
 * refused with exit code 1. Nothing printed, on either stream, shows the key.
 */
import { constants, publicEncrypt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { onecard as runCli } from './support/cli.js';
import { keyCheckValue } from '../src/readers/keys/master-keys.service.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';

let db: TestDatabase;
let dataDir: string;
let company: string;
const saved = { url: process.env.DATABASE_URL, kek: process.env.ONECARD_KEY_ENCRYPTION_KEY };
const KEY = Buffer.from('C1D2E3F405162738495A6B7C8D9EAFB0', 'hex');

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-cli-keys-'));
  process.env.ONECARD_DATA_DIR = dataDir;
  process.env.DATABASE_URL = db.url;
  process.env.ONECARD_KEY_ENCRYPTION_KEY = TEST_KEK;
  company = (await createCity(db.orm.em.fork(), { code: 'NB', name: 'Ningbo', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Ningbo Tong' })).cardCompany.id;
});
afterAll(async () => {
  for (const [name, value] of [['DATABASE_URL', saved.url], ['ONECARD_KEY_ENCRYPTION_KEY', saved.kek]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  delete process.env.ONECARD_DATA_DIR;
  await fs.rm(dataDir, { recursive: true, force: true });
  await db.close();
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

const printed: string[] = [];
async function onecard(...args: string[]): Promise<{ out: string; err: string; exitCode: number }> {
  const ran = await runCli(...args);
  printed.push(...ran.printed);
  return ran;
}

it('imports a wrapped key with its check value, activates and retires it, and never prints it', async () => {
  const pem = (await onecard('card-keys', 'transport-key')).out;
  expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  const wrapped = path.join(dataDir, 'load-v1.bin');
  await fs.writeFile(wrapped, publicEncrypt({ key: pem.split('\n# ')[0]!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, KEY).toString('base64'));
  const kcv = keyCheckValue('3DES', KEY);

  const common = ['--card-company', company, '--purpose', 'LOAD', '--version', '1'];
  const refused = await onecard('card-keys', 'import', ...common, '--algorithm', '3DES', '--wrapped', wrapped, '--kcv', 'ABCDEF');
  expect(refused).toMatchObject({ exitCode: 1, out: '' });
  expect(refused.err).toMatch(/^KEY_CHECK_VALUE_MISMATCH: the key unwrapped has check value [0-9A-F]{6}, not ABCDEF/);
  process.exitCode = undefined;

  expect((await onecard('card-keys', 'import', ...common, '--algorithm', '3DES', '--wrapped', wrapped, '--kcv', kcv)).out).toMatch(new RegExp(`^LOAD +v1 +3DES KCV ${kcv} +SOFTWARE +PENDING$`));
  expect((await onecard('card-keys', 'activate', ...common)).out).toMatch(/ACTIVE$/);
  const again = await onecard('card-keys', 'activate', ...common);
  expect(again).toMatchObject({ exitCode: 1 });
  expect(again.err).toMatch(/^INVALID_KEY_TRANSITION/);
  process.exitCode = undefined;
  expect((await onecard('card-keys', 'retire', ...common)).out).toMatch(/RETIRED$/);
  expect((await onecard('card-keys', 'list', '--card-company', company)).out).toMatch(new RegExp(`^LOAD +v1 +3DES KCV ${kcv} +SOFTWARE +RETIRED$`));

  const all = printed.join('\n');
  for (const form of [KEY.toString('hex'), KEY.toString('hex').toUpperCase(), KEY.toString('base64')]) expect(all).not.toContain(form);
});
