/**
 * A request's key store reads inside the request's transaction. The resolvers once gave the key
 * store a plain fork of the request's EntityManager: a card message holding one pool connection in
 * its transaction then waited for a second to read a master key, and a pool's worth of messages at
 * once (20 by default) waited on each other for ever (found by review). A pool of one connection
 * shows it with a single message.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { purchaseMac1Message } from '../../cardcrypto/index.js';
import { loadConfig } from '../../config/config.js';
import { createCity } from '../../tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from '../../../test/support/database.js';
import { storeMasterKeys } from '../key-store.js';
import { requestKeyStore } from './key-store-for.js';

const kek = Buffer.alloc(32, 7);
const config = loadConfig({ NODE_ENV: 'test' });
let db: TestDatabase;
let cardCompanyId: string;

beforeAll(async () => {
  db = await freshDatabase({ poolMax: 1 });
  const em = db.orm.em.fork();
  cardCompanyId = (await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' })).cardCompany.id;
  await storeMasterKeys(em, kek, { cardCompanyId, keyVersion: 1, algorithm: '3DES' });
});
afterAll(() => db?.close());

it('a key read inside the request’s open transaction runs on that transaction’s connection (a pool of one: no second connection is waited for)', async () => {
  const requestEm = db.orm.em.fork();
  const store = requestKeyStore(requestEm, kek, config);
  const asn = Buffer.from('0000000000000001', 'hex');
  const read = requestEm.transactional(async (tx) => {
    await tx.execute(`select 1`); // the transaction holds the pool's only connection from here
    return store.sessionMacs({ cardCompanyId, purpose: 'PURCHASE', keyVersion: 1, asn, sessionInput: Buffer.alloc(8, 1), messages: [purchaseMac1Message({ amount: 100, terminalId: Buffer.alloc(6, 2), date: '20261207', time: '120000' })] });
  });
  // On the branch the read waits for a second connection that never comes: no answer at all.
  let waited: NodeJS.Timeout | undefined;
  const stuck = new Promise<'stuck'>((resolve) => (waited = setTimeout(() => resolve('stuck'), 15_000)));
  const outcome = await Promise.race([read, stuck]);
  clearTimeout(waited);
  expect(outcome, 'the key read waited for a second pool connection').not.toBe('stuck');
  expect((outcome as { macs: Buffer[] }).macs[0]).toHaveLength(4);
}, 30_000);
