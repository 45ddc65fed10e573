/**
 * An offline transit record is booked only when its TAC, computed by the card with its own key over
 * the amount, terminal, terminal serial, date and time, proves it. A terminal (or anyone between it
 * and us) that changes any of those in a genuinely signed batch gets BAD_TAC for that record, and
 * nothing is posted for it. offline-uploads.test.ts covers the other outcomes; this is every field
 * the TAC binds, one row each.
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
import { terminalIdOf } from '../src/readers/session/terminal.js';
import { offlineBatchSignedBytes } from '../src/settlement/offline-batch-signature.js';
import { apiClient, issueCard, newReader, purseBalance, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let gate: TestReader;
let issuer: OneCardClient;

const UPLOAD = `mutation($input: UploadOfflineBatchInput!) {
  uploadOfflineBatch(input: $input) {
    batch { records { index outcome accepted reason journalEntry } }
    userErrors { code message }
  }
}`;
type UploadReply = { uploadOfflineBatch: { batch: { records: { index: number; outcome: string; accepted: boolean; reason: string; journalEntry: string | null }[] } | null; userErrors: unknown[] } };

beforeAll(async () => {
  gate = await newReader(world, 'GZ-METRO-GATE-FORGED', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
});

/** A card whose value went through the ledger (as a load would have put it there). */
async function fundedCard(amount: number): Promise<{ card: VirtualCpuCard; asn: string }> {
  const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: amount });
  const t = new VirtualCardTransport(card);
  await t.transmit(apdu.selectApplication());
  const data = Buffer.from(await t.transmit(apdu.readPublicData()));
  const asn = apdu.parsePublicData(data.subarray(0, data.length - 2)).asn.toString('hex').toUpperCase();
  const em = world.db.orm.em.fork();
  const source = await openAccount(em, { code: 'test.forged.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const purse = await openAccount(em, { code: `card.${asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency: 'CNY', nonNegative: true });
  await post(em, { key: `test-forged-fund:${asn}`, description: 'test funding', lines: [debit(source.id, BigInt(amount)), credit(purse.id, BigInt(amount))] });
  return { card, asn };
}

let nextSerial = 500;
/** One offline purchase as the gate and its PSAM run it; the record the gate keeps. */
async function ride(card: VirtualCpuCard, amount: number) {
  const t = new VirtualCardTransport(card);
  const send = async (command: Buffer) => {
    const r = Buffer.from(await t.transmit(command));
    expect(r.subarray(-2).toString('hex')).toBe('9000');
    return r.subarray(0, -2);
  };
  await send(apdu.selectApplication());
  const publicData = apdu.parsePublicData(await send(apdu.readPublicData()));
  const terminalId = terminalIdOf({ terminal_number: gate.terminalNumber! });
  const init = apdu.parseInitializeForPurchase(await send(apdu.initializeForPurchase(1, amount, terminalId)));
  const terminalSerial = ++nextSerial;
  const [date, time] = ['20261125', '073000'];
  const dpk = diversifyKey(ALG_3DES, Buffer.from(world.gzMasterKeys.purchase, 'hex'), publicData.asn);
  const sessionKey = purchaseSessionKey({ algorithm: ALG_3DES, purchaseKey: dpk, random: init.random, offlineCounter: init.offlineCounter, terminalSerial });
  const mac1 = purchaseMac1({ algorithm: ALG_3DES, sessionKey, amount, terminalId, date, time });
  const { tac } = apdu.parseDebitForPurchase(await send(apdu.debitForPurchase(terminalSerial, date, time, mac1)));
  return { asn: publicData.asn.toString('hex').toUpperCase(), cardCity: publicData.cityCode, offlineCounter: init.offlineCounter, amount, terminalSerial, date, time, tac: tac.toString('hex').toUpperCase() };
}
type Ride = Awaited<ReturnType<typeof ride>>;

/** A batch signed by the gate itself: the batch is genuine, only the record lies. */
function signedBatch(batchId: string, records: unknown[]) {
  const body = JSON.stringify({ records });
  const signature = createSign('sha256').update(offlineBatchSignedBytes(gate.id, batchId, body)).sign(gate.deviceKeyPem).toString('base64');
  return { terminal: gate.id, batchId, body, signature, certificate: gate.cityPem };
}

async function entries(): Promise<number> {
  const [row] = await world.db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from journal_entry`);
  return row!.n;
}

const flipHex = (hex: string) => (hex.slice(0, -1) + (hex.at(-1) === '0' ? '1' : '0')).toUpperCase();

describe('a record changed after the card signed it', () => {
  const forgeries: [string, (r: Ride) => Ride][] = [
    ['a smaller amount', (r) => ({ ...r, amount: r.amount - 1 })],
    ['a larger amount', (r) => ({ ...r, amount: r.amount + 100 })],
    ['another terminal serial', (r) => ({ ...r, terminalSerial: r.terminalSerial + 1 })],
    ['another date', (r) => ({ ...r, date: '20261126' })],
    ['another time', (r) => ({ ...r, time: '073001' })],
    ['a TAC with one bit changed', (r) => ({ ...r, tac: flipHex(r.tac) })],
  ];

  it.each(forgeries)('%s: BAD_TAC, nothing posted; the true record is still accepted', async (name, forge) => {
    const { card, asn } = await fundedCard(1_000);
    const genuine = await ride(card, 300);
    const before = await entries();
    const reply = await issuer.request<UploadReply>(UPLOAD, { input: signedBatch(`forged-${name.replace(/[^A-Za-z0-9]+/g, '-')}`, [forge(genuine)]) });
    expect(reply.uploadOfflineBatch.userErrors).toEqual([]);
    expect(reply.uploadOfflineBatch.batch!.records).toEqual([{ index: 0, outcome: 'BAD_TAC', accepted: false, reason: expect.any(String), journalEntry: null }]);
    expect(await entries()).toBe(before);
    expect(await purseBalance(world, asn)).toBe(1_000n);

    // The record as the card made it books, once.
    const honest = await issuer.request<UploadReply>(UPLOAD, { input: signedBatch(`honest-${name.replace(/[^A-Za-z0-9]+/g, '-')}`, [genuine]) });
    expect(honest.uploadOfflineBatch.batch!.records[0]).toMatchObject({ outcome: 'ACCEPTED', accepted: true });
    expect(await purseBalance(world, asn)).toBe(700n);
  });

  it('leaves the ledger consistent', async () => {
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
