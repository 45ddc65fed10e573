/**
 * Offline uploads booked set-based (issue 23): a batch's records are decided together and posted
 * in bulk, and must come out exactly as taking them one by one did — the same outcome per record,
 * the same ledger lines with the same running balances, the same clearing items — and two batches
 * bringing the same purchase at once must still book it once.
 */
import { createSign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCardTransport, type VirtualCpuCard } from '../../sdk-js/src/index.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { cardPurseAccount, merchantPayableAccount } from '../src/ledger/accounts.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import * as apdu from '../src/readers/session/apdu.js';
import { offlineBatchSignedBytes } from '../src/settlement/offline-batch-signature.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, issueCard, newReader, purseBalance, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { offlineRide } from './support/settlement.js';

const world = useCardSessionWorld();
let gate: TestReader;
let issuer: OneCardClient;

const UPLOAD = `mutation($input: UploadOfflineBatchInput!) {
  uploadOfflineBatch(input: $input) {
    batch { records { index outcome accepted reason journalEntry } }
    userErrors { code message }
  }
}`;
type UploadReply = { uploadOfflineBatch: { batch: { records: { index: number; outcome: string; accepted: boolean; reason: string; journalEntry: string | null }[] } | null; userErrors: { code: string; message: string }[] } };

beforeAll(async () => {
  gate = await newReader(world, 'GZ-METRO-GATE-SB', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
});

/** The card's value went through the ledger (as a load would have put it there). */
async function fundShadow(asn: string, amount: number) {
  const em = world.db.orm.em.fork();
  const source = await openAccount(em, { code: 'test.offline.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const purse = await openAccount(em, { code: `card.${asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency: 'CNY', nonNegative: true });
  await post(em, { key: `test-fund:${asn}:${amount}:${Math.random()}`, description: 'test funding', lines: [debit(source.id, BigInt(amount)), credit(purse.id, BigInt(amount))] });
}

async function asnOf(card: VirtualCpuCard): Promise<string> {
  const t = new VirtualCardTransport(card);
  await t.transmit(apdu.selectApplication());
  const data = Buffer.from(await t.transmit(apdu.readPublicData()));
  return apdu.parsePublicData(data.subarray(0, data.length - 2)).asn.toString('hex').toUpperCase();
}

function signed(terminal: TestReader, batchId: string, records: unknown[]) {
  const body = JSON.stringify({ records });
  const signature = createSign('sha256').update(offlineBatchSignedBytes(terminal.id, batchId, body)).sign(terminal.deviceKeyPem).toString('base64');
  return { terminal: terminal.id, batchId, body, signature, certificate: terminal.cityPem };
}

const upload = (input: ReturnType<typeof signed>) => issuer.request<UploadReply>(UPLOAD, { input });
const sql = <T>(query: string, params: unknown[] = []) => world.db.orm.em.fork().execute<T[]>(query, params);

describe('offline uploads booked set-based', () => {
  it('five batches bringing the same purchase at once book it once: one accepts it, the others answer DUPLICATE', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1000 });
    const asn = await asnOf(card);
    await fundShadow(asn, 1000);
    const ride = await offlineRide(card, gate, 300, world.gzMasterKeys.purchase, '2026-11-25');

    const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => upload(signed(gate, `race-${n}`, [ride]))));
    for (const reply of replies) expect(reply.uploadOfflineBatch.userErrors).toEqual([]);
    expect(replies.map((r) => r.uploadOfflineBatch.batch!.records[0]!.outcome).sort()).toEqual(['ACCEPTED', 'DUPLICATE', 'DUPLICATE', 'DUPLICATE', 'DUPLICATE']);
    expect(await purseBalance(world, asn)).toBe(700n);
    const [entries] = await sql<{ n: string }>(`select count(*) as n from journal_entry where entry_key = ?`, [`offline-purchase:${asn}:0`]);
    expect(entries!.n).toBe('1');
    const [items] = await sql<{ n: string }>(`select count(*) as n from clearing_item where entry_key = ?`, [`offline-purchase:${asn}:0`]);
    expect(items!.n).toBe('1');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a card’s rides in one batch move its purse ride by ride: each line’s balance after is the one before it less the fare, and the ride the purse no longer covers is refused', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1000 });
    const asn = await asnOf(card);
    await fundShadow(asn, 500);
    const rides = [await offlineRide(card, gate, 200, world.gzMasterKeys.purchase, '2026-11-25', '070000'), await offlineRide(card, gate, 200, world.gzMasterKeys.purchase, '2026-11-25', '080000'), await offlineRide(card, gate, 200, world.gzMasterKeys.purchase, '2026-11-25', '090000'), await offlineRide(card, gate, 50, world.gzMasterKeys.purchase, '2026-11-25', '100000')];
    const revenue = `card-company.${world.gz.cardCompanyId}.transit-revenue.CNY`;
    const [before] = await sql<{ balance: string }>(`select balance from ledger_account where code = ?`, [revenue]);
    const revenueBefore = BigInt(before?.balance ?? 0);

    // Listed out of counter order: the card's rides are still taken in counter order.
    const reply = await upload(signed(gate, 'one-card-four-rides', [rides[3], rides[1], rides[0], rides[2]]));
    // Counter 2 was refused, so counter 3 follows a counter never accepted: a GAP, as one by one answered.
    expect(reply.uploadOfflineBatch.batch!.records.map((r) => r.outcome)).toEqual(['GAP', 'ACCEPTED', 'ACCEPTED', 'REFUSED_INSUFFICIENT_SHADOW']);
    expect(await purseBalance(world, asn)).toBe(50n);

    const lines = await sql<{ entry_key: string; code: string; amount: string; balance_after: string }>(
      `select e.entry_key, a.code, p.amount::text, p.balance_after::text from journal_entry e join posting p on p.entry_id = e.id join ledger_account a on a.id = p.account_id
        where e.entry_key like ? order by e.entry_key, p.line_no`,
      [`offline-purchase:${asn}:%`],
    );
    const r = revenueBefore;
    expect(lines.map((l) => [l.entry_key.split(':')[2], l.code === revenue ? 'revenue' : 'purse', l.amount, l.balance_after])).toEqual([
      ['0', 'purse', '200', '300'],
      ['0', 'revenue', '-200', String(r + 200n)],
      ['1', 'purse', '200', '100'],
      ['1', 'revenue', '-200', String(r + 400n)],
      ['3', 'purse', '50', '50'],
      ['3', 'revenue', '-50', String(r + 450n)],
    ]);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a visiting card’s ride is cleared as interchange with its own card company, on the business day of the card’s local time', async () => {
    const card = issueCard({ city: world.sz, keys: world.szMasterKeys, balance: 500 });
    const asn = await asnOf(card);
    await fundShadow(asn, 500);
    const ride = await offlineRide(card, gate, 120, world.szMasterKeys.purchase, '2026-11-25', '233000');
    const reply = await upload(signed(gate, 'visiting-card', [ride]));
    expect(reply.uploadOfflineBatch.batch!.records.map((r) => r.outcome)).toEqual(['ACCEPTED']);
    const [item] = await sql<{ card_company_id: string; participant_id: string; business_day: string; amount: string; occurred_at: Date }>(
      `select card_company_id, participant_id, business_day::text, amount::text, occurred_at from clearing_item where entry_key = ?`,
      [`offline-purchase:${asn}:0`],
    );
    expect(item).toMatchObject({ card_company_id: world.sz.cardCompanyId, participant_id: world.gz.cardCompanyId, business_day: '2026-11-25', amount: '120' });
    // 23:30 in Guangzhou (UTC+8) is 15:30 UTC.
    expect(new Date(item!.occurred_at).toISOString()).toBe('2026-11-25T15:30:00.000Z');
  });

  it('a batch at a merchant whose payable does not exist yet does not deadlock with a payment by the same card that is opening that payable: both book', async () => {
    const merchant = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'GZ Ferry' });
    const ferry = await newReader(world, 'GZ-FERRY-SB', world.gz, { kind: 'MERCHANT', id: merchant.id });
    const operator = await apiClient(world, 'MERCHANT', merchant.id, ['payments:write']);
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1000 });
    const asn = await asnOf(card);
    await fundShadow(asn, 1000);
    const ride = await offlineRide(card, ferry, 300, world.gzMasterKeys.purchase, '2026-11-25');

    // The payment's transaction opens the merchant's payable (uncommitted), then, once the upload
    // waits on it, debits the card's purse to it: the upload must not hold that purse meanwhile.
    let paymentPid!: (pid: number) => void;
    const paymentStarted = new Promise<number>((resolve) => (paymentPid = resolve));
    let uploadWaits!: () => void;
    const uploadWaiting = new Promise<void>((resolve) => (uploadWaits = resolve));
    const payment = world.db.orm.em.fork().transactional(async (tx) => {
      const payable = await merchantPayableAccount(tx, merchant.id, 'CNY');
      const [me] = await tx.execute<{ pid: number }[]>(`select pg_backend_pid() as pid`);
      paymentPid(me!.pid);
      await uploadWaiting;
      const purse = await cardPurseAccount(tx, asn, 'CNY');
      await post(tx, { key: `test-online-payment:${asn}`, description: 'an online payment at the ferry', lines: [debit(purse.id, 200n), credit(payable.id, 200n)] });
    });
    const pid = await paymentStarted;
    const uploading = operator.request<UploadReply>(UPLOAD, { input: signed(ferry, 'ferry-first', [ride]) });
    // Wait (no deadline) until the upload is blocked by the payment's transaction.
    for (;;) {
      const [row] = await sql<{ n: string }>(`select count(*)::text as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))`, [pid]);
      if (row!.n !== '0') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    uploadWaits();

    const [, reply] = await Promise.all([payment, uploading]);
    expect(reply.uploadOfflineBatch.userErrors).toEqual([]);
    expect(reply.uploadOfflineBatch.batch!.records.map((r) => r.outcome)).toEqual(['ACCEPTED']);
    expect(await purseBalance(world, asn)).toBe(500n);
    const [payable] = await sql<{ balance: string }>(`select balance::text from ledger_account where code = ?`, [`merchant.${merchant.id}.payable.CNY`]);
    expect(payable!.balance).toBe('500');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
