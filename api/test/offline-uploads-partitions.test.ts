/**
 * A booking never fails because clearing_item has no partition for its month (issue 23, item 3): a
 * terminal uploads a ride dated in a month nobody made a partition for (its clock years ahead); the
 * ride is accepted over HTTP, its clearing item waits in the default partition, and the partitions
 * job's next round moves it into a partition made for its month.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createPartitionsAhead } from '../src/settlement/clearing-partitions.js';
import { apiClient, issueCard, newReader, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { offlineRide, uploadRides } from './support/settlement.js';

const world = useCardSessionWorld();
let gate: TestReader;
let issuer: OneCardClient;

beforeAll(async () => {
  gate = await newReader(world, 'GZ-METRO-GATE-PT', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
});

const partitionOf = async (entryKey: string) =>
  (await world.db.orm.em.fork().execute<{ part: string; amount: string }[]>(`select tableoid::regclass::text as part, amount::text from clearing_item where entry_key = ?`, [entryKey]));

describe('offline uploads and the monthly partitions of clearing_item', () => {
  it('a ride dated in a month with no partition is accepted; its item waits in the default partition until the job makes its month', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1_000 });
    const em = world.db.orm.em.fork();
    const source = await openAccount(em, { code: 'test.offline.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const purse = await openAccount(em, { code: `card.${card.asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: card.asn, currency: 'CNY', nonNegative: true });
    await post(em, { key: `test-fund:${card.asn}`, description: 'test funding', lines: [debit(source.id, 1_000n), credit(purse.id, 1_000n)] });
    const ride = await offlineRide(card, gate, 300, world.gzMasterKeys.purchase, '2034-05-20', '081500');

    expect(await uploadRides(issuer, gate, 'far-future-clock', [ride])).toEqual(['ACCEPTED']);
    const key = `offline-purchase:${card.asn}:${ride.offlineCounter}`;
    expect(await partitionOf(key)).toEqual([{ part: 'clearing_item_default', amount: '300' }]);

    expect(await createPartitionsAhead(world.db.orm.em.fork())).toContain('2034-05');
    expect(await partitionOf(key)).toEqual([{ part: 'clearing_item_y2034m05', amount: '300' }]);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
