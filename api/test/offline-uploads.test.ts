/**
 * Offline transit uploads (issue 8, part 1): a certified terminal uploads a signed batch of
 * purchases its cards made offline. The purchases are real: a virtual CPU card runs INITIALIZE FOR
 * PURCHASE and DEBIT FOR PURCHASE with a MAC1 computed as the terminal's PSAM would, and answers
 * the TAC the batch carries.
 */
import { createSign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCardTransport, type VirtualCpuCard } from '../../sdk-js/src/index.js';
import { ALG_3DES } from '../src/cardcrypto/algorithm.js';
import { diversifyKey } from '../src/cardcrypto/diversify.js';
import { purchaseMac1, purchaseSessionKey } from '../src/cardcrypto/epurse.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import * as apdu from '../src/readers/session/apdu.js';
import { offlineBatchSignedBytes } from '../src/settlement/offline-batch-signature.js';
import { terminalIdOf } from '../src/readers/session/terminal.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, issueCard, newReader, purseBalance, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let gate: TestReader;
let bus: TestReader;
let szGate: TestReader;
let transitMerchantId: string;
let issuer: OneCardClient;
let busOperator: OneCardClient;

const UPLOAD = `mutation($input: UploadOfflineBatchInput!) {
  uploadOfflineBatch(input: $input) {
    batch { id batchId records { index asn offlineCounter amount outcome accepted reason journalEntry } }
    replayed
    userErrors { code field message }
  }
}`;

type RecordAnswer = { index: number; asn: string; offlineCounter: number; amount: number; outcome: string; accepted: boolean; reason: string; journalEntry: string | null };
type UploadReply = { uploadOfflineBatch: { batch: { id: string; batchId: string; records: RecordAnswer[] } | null; replayed: boolean; userErrors: { code: string; field: string[]; message: string }[] } };

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const transit = await createMerchant(em, { cityId: world.gz.cityId, name: 'GZ Bus Group' });
  transitMerchantId = transit.id;
  gate = await newReader(world, 'GZ-METRO-GATE-1', world.gz);
  bus = await newReader(world, 'GZ-BUS-101', world.gz, { kind: 'MERCHANT', id: transit.id });
  szGate = await newReader(world, 'SZ-METRO-GATE-1', world.sz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  busOperator = await apiClient(world, 'MERCHANT', transit.id, ['payments:write']);
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

let nextSerial = 100;

/** One offline purchase on the card at a terminal, as the terminal and its PSAM run it; returns the record the terminal keeps. */
async function purchase(card: VirtualCpuCard, terminal: TestReader, amount: number, masterPurchaseKey: string, time = '081500') {
  const t = new VirtualCardTransport(card);
  const send = async (command: Buffer) => {
    const r = Buffer.from(await t.transmit(command));
    expect(r.subarray(-2).toString('hex')).toBe('9000');
    return r.subarray(0, -2);
  };
  await send(apdu.selectApplication());
  const publicData = apdu.parsePublicData(await send(apdu.readPublicData()));
  const terminalId = terminalIdOf({ terminal_number: terminal.terminalNumber! });
  const init = apdu.parseInitializeForPurchase(await send(apdu.initializeForPurchase(1, amount, terminalId)));
  const terminalSerial = ++nextSerial;
  const date = '20261125';
  const dpk = diversifyKey(ALG_3DES, Buffer.from(masterPurchaseKey, 'hex'), publicData.asn);
  const sessionKey = purchaseSessionKey({ algorithm: ALG_3DES, purchaseKey: dpk, random: init.random, offlineCounter: init.offlineCounter, terminalSerial });
  const mac1 = purchaseMac1({ algorithm: ALG_3DES, sessionKey, amount, terminalId, date, time });
  const { tac } = apdu.parseDebitForPurchase(await send(apdu.debitForPurchase(terminalSerial, date, time, mac1)));
  return { asn: publicData.asn.toString('hex').toUpperCase(), cardCity: publicData.cityCode, offlineCounter: init.offlineCounter, amount, terminalSerial, date, time, tac: tac.toString('hex').toUpperCase() };
}

function signed(terminal: TestReader, batchId: string, records: unknown[], opts: { key?: string; certificate?: string } = {}) {
  const body = JSON.stringify({ records });
  const signature = createSign('sha256').update(offlineBatchSignedBytes(terminal.id, batchId, body)).sign(opts.key ?? terminal.deviceKeyPem).toString('base64');
  return { terminal: terminal.id, batchId, body, signature, certificate: opts.certificate ?? terminal.cityPem };
}

const upload = (client: OneCardClient, input: ReturnType<typeof signed>) => client.request<UploadReply>(UPLOAD, { input });

async function entryCount() {
  const [row] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from journal_entry`);
  return Number(row!.n);
}

async function balanceOf(code: string) {
  const [row] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [code]);
  return row ? BigInt(row.balance) : undefined;
}

describe('offline transit uploads', () => {
  it('answers each record: accepted, duplicate, gap, bad TAC, unknown issuer and an uncovered purse', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1000 });
    const asn = await asnOf(card);
    await fundShadow(asn, 1000);
    const first = await purchase(card, gate, 200, world.gzMasterKeys.purchase);
    const second = await purchase(card, gate, 200, world.gzMasterKeys.purchase);
    await purchase(card, gate, 100, world.gzMasterKeys.purchase); // counter 2: never uploaded
    const fourth = await purchase(card, gate, 150, world.gzMasterKeys.purchase);
    const poor = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });
    const poorAsn = await asnOf(poor);
    await fundShadow(poorAsn, 100);
    const uncovered = await purchase(poor, gate, 300, world.gzMasterKeys.purchase);
    const forged = { ...second, amount: 20 };

    const reply = await upload(issuer, signed(gate, 'gate-1-batch-1', [first, first, fourth, forged, second, { ...first, cardCity: '9999' }, uncovered]));
    const { batch, userErrors, replayed } = reply.uploadOfflineBatch;
    expect(userErrors).toEqual([]);
    expect(replayed).toBe(false);
    expect(batch!.records.map((r) => [r.index, r.outcome, r.accepted])).toEqual([
      [0, 'ACCEPTED', true],
      [1, 'DUPLICATE', false],
      [2, 'GAP', true],
      [3, 'BAD_TAC', false],
      [4, 'ACCEPTED', true],
      [5, 'UNKNOWN_CARD_ISSUER', false],
      [6, 'REFUSED_INSUFFICIENT_SHADOW', false],
    ]);
    expect(batch!.records[2]!.reason).toMatch(/counters 2–2/);
    expect(batch!.records.every((r) => r.reason.length > 0)).toBe(true);
    expect(batch!.records.filter((r) => r.journalEntry).length).toBe(3);
    // Card purse → the card company's transit revenue: 200 + 200 + 150.
    expect(await purseBalance(world, asn)).toBe(450n);
    expect(await balanceOf(`card-company.${world.gz.cardCompanyId}.transit-revenue.CNY`)).toBe(550n);
    expect(await purseBalance(world, poorAsn)).toBe(100n);
    const [entry] = await world.db.orm.em.fork().execute<{ metadata: { kind: string } }[]>(`select metadata from journal_entry where entry_key = ?`, [`offline-purchase:${asn}:0`]);
    expect(entry!.metadata.kind).toBe('TRANSIT');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);

    // The same purchase in a later batch is a duplicate; the missing counter, arriving late, is accepted.
    const later = await upload(issuer, signed(gate, 'gate-1-batch-2', [second]));
    expect(later.uploadOfflineBatch.batch!.records.map((r) => r.outcome)).toEqual(['DUPLICATE']);
  });

  it('a merchant’s terminal posts to the merchant’s payable', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 300 });
    const asn = await asnOf(card);
    await fundShadow(asn, 300);
    const ride = await purchase(card, bus, 120, world.gzMasterKeys.purchase);
    const reply = await upload(busOperator, signed(bus, 'bus-101-0001', [ride]));
    expect(reply.uploadOfflineBatch.batch!.records.map((r) => r.outcome)).toEqual(['ACCEPTED']);
    expect(await balanceOf(`merchant.${transitMerchantId}.payable.CNY`)).toBe(120n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('the same batch twice returns the stored answer and posts nothing again; concurrent uploads post once', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });
    const asn = await asnOf(card);
    await fundShadow(asn, 500);
    const records = [await purchase(card, gate, 100, world.gzMasterKeys.purchase), await purchase(card, gate, 50, world.gzMasterKeys.purchase)];
    const input = signed(gate, 'gate-1-twice', records);
    const before = await entryCount();
    const [a, b] = await Promise.all([upload(issuer, input), upload(issuer, input)]);
    expect([a.uploadOfflineBatch.replayed, b.uploadOfflineBatch.replayed].sort()).toEqual([false, true]);
    expect(a.uploadOfflineBatch.batch).toEqual(b.uploadOfflineBatch.batch);
    const again = await upload(issuer, input);
    expect(again.uploadOfflineBatch.replayed).toBe(true);
    expect(again.uploadOfflineBatch.batch).toEqual(a.uploadOfflineBatch.batch);
    expect(await entryCount()).toBe(before + 2);
    expect(await purseBalance(world, asn)).toBe(350n);
    // Another body under a used batch id is refused.
    const other = await upload(issuer, signed(gate, 'gate-1-twice', records.slice(0, 1)));
    expect(other.uploadOfflineBatch.userErrors[0]?.code).toBe('OFFLINE_BATCH_ID_REUSED');
  });

  type Ride = Awaited<ReturnType<typeof purchase>>;
  const refusals: [string, (ride: Ride) => ReturnType<typeof signed>, RegExp][] = [
    ['a signature by another key', (ride) => signed(gate, 'bad-sig', [ride], { key: bus.deviceKeyPem }), /^BAD_SIGNATURE/],
    ['a body changed after signing', (ride) => ({ ...signed(gate, 'changed', [ride]), body: JSON.stringify({ records: [{ ...ride, amount: 1 }] }) }), /^BAD_SIGNATURE/],
    ['a signature for another batch id', (ride) => ({ ...signed(gate, 'signed-as-other', [ride]), batchId: 'sent-as-this' }), /^BAD_SIGNATURE/],
    ['another terminal’s certificate', (ride) => signed(gate, 'other-cert', [ride], { certificate: bus.cityPem }), /^CERTIFICATE_NOT_THIS_TERMINAL/],
    ['a certificate of another city’s CA', (ride) => signed(gate, 'other-city', [ride], { certificate: szGate.cityPem }), /^UNKNOWN_CA/],
    ['the national certificate instead of the city one', (ride) => signed(gate, 'national', [ride], { certificate: gate.nationalPem }), /^UNKNOWN_CA/],
    ['no certificate at all', (ride) => signed(gate, 'garbage', [ride], { certificate: 'nonsense' }), /^UNKNOWN_CA/],
  ];
  it.each(refusals)('a batch with %s is refused whole', async (_name, make, message) => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 100 });
    await fundShadow(await asnOf(card), 100);
    const input = make(await purchase(card, gate, 10, world.gzMasterKeys.purchase));
    const before = await entryCount();
    const reply = await upload(issuer, input);
    expect(reply.uploadOfflineBatch.batch).toBeNull();
    expect(reply.uploadOfflineBatch.userErrors[0]?.code).toBe('OFFLINE_BATCH_REFUSED');
    expect(reply.uploadOfflineBatch.userErrors[0]?.message).toMatch(message);
    expect(await entryCount()).toBe(before);
    const [stored] = await world.db.orm.em.fork().execute(`select 1 from offline_batch where batch_id = ?`, [input.batchId]);
    expect(stored).toBeUndefined();
  });

  it('another tenant’s terminal answers as a missing one', async () => {
    const reply = await upload(busOperator, signed(gate, 'not-yours', []));
    expect(reply.uploadOfflineBatch.userErrors[0]?.code).toBe('NOT_FOUND');
  });

  it('the ledger invariants hold', async () => {
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
