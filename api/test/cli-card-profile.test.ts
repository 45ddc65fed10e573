/**
 * `onecard card-profile`: a card company's profiles shown as JSON, set from a file (a product's
 * too), shown again as set; a malformed AID, an unknown algorithm id and a file that is not JSON
 * refused with exit code 1 and nothing written.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { onecard } from './support/cli.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';

let db: TestDatabase;
let dataDir: string;
let company: string;
const saved = { url: process.env.DATABASE_URL, kek: process.env.ONECARD_KEY_ENCRYPTION_KEY };

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-cli-profiles-'));
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

async function file(name: string, content: string) {
  const at = path.join(dataDir, name);
  await fs.writeFile(at, content);
  return at;
}

const T_UNION = { product: 'T-UNION', selection: [{ kind: 'AID', value: 'A000000632010105' }], loadKeyIndex: 2, purchaseKeyIndex: 2, algorithmIds: [1], toleratedStatusWords: ['6282'] };

it('shows the default, sets a product profile from a file, and shows both', async () => {
  const before = await onecard('card-profile', 'show', '--card-company', company);
  expect(before.exitCode).toBe(0);
  expect(JSON.parse(before.out)).toEqual([
    { product: null, selection: [{ kind: 'AID', value: 'A00000000386980701' }], loadKeyIndex: 1, purchaseKeyIndex: 1, algorithmIds: [0, 4], publicDataSfi: 21, transactionLogSfi: 24, m1: { purseSector: 1, valueBlock: 4, backupBlock: 5, keyType: 'B', keyDerivation: 'UID_SECTOR_3DES' }, toleratedStatusWords: [] },
  ]);

  const set = await onecard('card-profile', 'set', '--card-company', company, '--file', await file('t-union.json', JSON.stringify(T_UNION)));
  expect(set.exitCode).toBe(0);
  expect(JSON.parse(set.out)).toMatchObject(T_UNION);

  const after = JSON.parse((await onecard('card-profile', 'show', '--card-company', company)).out) as { product: string | null }[];
  expect(after.map((p) => p.product)).toEqual([null, 'T-UNION']);
  expect(after[1]).toMatchObject({ ...T_UNION, publicDataSfi: 21, transactionLogSfi: 24 });
});

it('refuses a malformed AID, an unknown algorithm id, a file that is not JSON and an unknown company, writing nothing', async () => {
  const before = (await onecard('card-profile', 'show', '--card-company', company)).out;
  const bad = await onecard('card-profile', 'set', '--card-company', company, '--file', await file('bad.json', JSON.stringify({ ...T_UNION, selection: [{ kind: 'AID', value: 'A0000006' }], algorithmIds: [9] })));
  expect(bad.exitCode).toBe(1);
  expect(bad.err).toMatch(/^MALFORMED_AID selection\.0\.value: /m);
  expect(bad.err).toMatch(/^UNKNOWN_ALGORITHM_ID algorithmIds\.0: /m);

  const notJson = await onecard('card-profile', 'set', '--card-company', company, '--file', await file('not.json', '{ product: '));
  expect(notJson).toMatchObject({ exitCode: 1, out: '' });
  expect(notJson.err).toMatch(/^INVALID_INPUT: /);

  const wrongKind = await onecard('card-profile', 'set', '--card-company', company, '--file', await file('kind.json', JSON.stringify({ ...T_UNION, selection: [{ kind: 'FILE', value: '1001' }] })));
  expect(wrongKind.exitCode).toBe(1);
  expect(wrongKind.err).toMatch(/^INVALID_INPUT selection\.0\.kind: /);

  const nobody = await onecard('card-profile', 'show', '--card-company', '00000000-0000-4000-8000-000000000000');
  expect(nobody).toMatchObject({ exitCode: 1, err: 'NOT_FOUND: no such card company' });

  expect((await onecard('card-profile', 'show', '--card-company', company)).out).toBe(before);
});
