/**
 * Payouts (money leaving to merchants) against a scripted gateway client: what each gateway answer
 * does to the payout, its line, the batch, the ledger and the participant's webhooks. The real
 * gateway over HTTP is in api/test/settlement.test.ts; here each answer is chosen exactly.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { toGlobalId } from '../graphql/global-id.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { balance, credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { type GatewayClient, GatewayError, type Payout } from '../topups/gateway/gateway-client.js';
import { gatewayClearingAccount, payableAccount, settlementInTransitAccount } from '../ledger/accounts.js';
import { recordClearingItem } from './clearing-items.js';
import { clearWindow } from './clearing.js';
import { applyPayout, pollSentPayouts, sendDuePayouts } from './payouts.js';
import { closeWindow } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

const at = (local: string) => new Date(`${local}+08:00`);

/** A city whose merchants sold on 2026-03-02 (one sale each), the window closed and cleared: one PENDING payout per merchant. */
async function clearedDay(code: string, sales: Record<string, bigint>) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  const funding = await openAccount(em, { code: 'test.card-purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const merchants: Record<string, string> = {};
  for (const [name, amount] of Object.entries(sales)) {
    const m = await createMerchant(em, { cityId: city.id, name });
    merchants[name] = m.id;
    const key = `payout-test-sale:${++n}`;
    const payable = await payableAccount(em, 'MERCHANT', m.id, 'CNY');
    await em.transactional(async (tx) => {
      await post(tx, { key, description: 'sale', lines: [debit(funding.id, amount), credit(payable.id, amount)] });
      await recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: m.id }, cardCompanyId: cardCompany.id, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at('2026-03-02T10:00:00') });
    });
  }
  const window = await closeWindow(em, { cityId: city.id, businessDay: '2026-03-02', closedBy: 'test', cutoff: '02:00', now: at('2026-03-03T09:00:00') });
  const batch = await clearWindow(em, window.id);
  const payouts = await em.execute<{ id: string; line_id: string; participant_id: string }[]>(`select p.id, p.line_id, l.participant_id from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ?`, [batch.id]);
  const payoutOf = (name: string) => payouts.find((p) => p.participant_id === merchants[name])!;
  return { merchants, window, batch, payoutOf };
}

/** A gateway client that answers createPayout / retrievePayout as the test says, and records what it was asked. */
function scriptedGateway(answer: { create?: (p: { amount: bigint; metadata?: Record<string, string> }, key: string) => Payout; retrieve?: (id: string) => Payout }) {
  const asked: { amount: bigint; currency: string; metadata?: Record<string, string>; key: string }[] = [];
  const client = {
    createPayout: async (p: { amount: bigint; currency: string; metadata?: Record<string, string> }, key: string) => {
      asked.push({ ...p, key });
      return answer.create!(p, key);
    },
    retrievePayout: async (id: string) => answer.retrieve!(id),
  } as unknown as GatewayClient;
  return { client, asked };
}

const payout = (over: Partial<Payout> & { id: string; amount: number }): Payout => ({ object: 'payout', currency: 'cny', status: 'pending', metadata: {}, created: 0, arrival_date: 0, failure_code: null, ...over });
const payoutRow = async (id: string) =>
  (await em.execute<{ status: string; failure_code: string | null; attempts: number; gateway_payout_id: string | null; wait: number }[]>(
    `select status, failure_code, attempts, gateway_payout_id, extract(epoch from next_attempt_at - ?::timestamptz)::int as wait from settlement_payout where id = ?`,
    [NOW, id],
  ))[0]!;
const lineStatus = async (lineId: string) => (await em.execute<{ status: string }[]>(`select status from settlement_line where id = ?`, [lineId]))[0]!.status;
const statuses = async (windowId: string, batchId: string) => ({
  window: (await em.execute<{ status: string }[]>(`select status from settlement_window where id = ?`, [windowId]))[0]!.status,
  batch: (await em.execute<{ status: string }[]>(`select status from settlement_batch where id = ?`, [batchId]))[0]!.status,
});
const postings = async (key: string) => {
  const rows = await em.execute<{ account_id: string; amount: string }[]>(`select po.account_id, po.amount::text as amount from posting po join journal_entry e on e.id = po.entry_id where e.entry_key = ? order by po.amount`, [key]);
  return rows.map((r) => [r.account_id, BigInt(r.amount)]);
};
const heard = async (merchantId: string) =>
  (await em.execute<{ type: string; payload: { amount: number; status: string; failureCode: string | null } }[]>(`select type, payload from event_outbox where owner_id = ? and type <> 'settlement.ready' order by id`, [merchantId])).map((e) => [
    e.type,
    e.payload.amount,
    e.payload.status,
    e.payload.failureCode,
  ]);
/** The moment the jobs run in these tests (payouts are due from their clearing on). */
const NOW = new Date(Date.now() + 60_000);

describe('sending payouts', () => {
  it('sends each due payout once with its amount and key; a refusal fails it with the gateway’s code: back to the payable, the line PAYOUT_FAILED, the participant told', async () => {
    const d = await clearedDay('POA', { Tea: 1_250n, Noodles: 700n, Bakery: 90n });
    const tea = d.payoutOf('Tea');
    const noodles = d.payoutOf('Noodles');
    const bakery = d.payoutOf('Bakery');
    const gw = scriptedGateway({
      create: (p) => {
        if (p.metadata!.participant === `MERCHANT:${d.merchants.Noodles}`) throw new GatewayError('INVALID_REQUEST', 'balance too low', { status: 400, code: 'balance_insufficient' });
        if (p.metadata!.participant === `MERCHANT:${d.merchants.Bakery}`) throw new GatewayError('INVALID_REQUEST', 'refused', { status: 400 });
        return payout({ id: `po_${p.metadata!.settlementPayout}`, amount: Number(p.amount), status: 'pending', metadata: p.metadata! });
      },
    });
    expect(await sendDuePayouts(em, gw.client, NOW)).toBe(3);
    expect(gw.asked.map((a) => [a.key, a.amount, a.currency, a.metadata]).sort()).toEqual(
      [
        [`settlement-payout:${tea.id}`, 1_250n, 'CNY', { settlementPayout: tea.id, participant: `MERCHANT:${d.merchants.Tea}` }],
        [`settlement-payout:${noodles.id}`, 700n, 'CNY', { settlementPayout: noodles.id, participant: `MERCHANT:${d.merchants.Noodles}` }],
        [`settlement-payout:${bakery.id}`, 90n, 'CNY', { settlementPayout: bakery.id, participant: `MERCHANT:${d.merchants.Bakery}` }],
      ].sort(),
    );
    // Nothing is due any more: asking again sends nothing.
    expect(await sendDuePayouts(em, gw.client, NOW)).toBe(0);
    expect(gw.asked).toHaveLength(3);

    expect(await payoutRow(tea.id)).toMatchObject({ status: 'SENT', failure_code: null, attempts: 1, gateway_payout_id: `po_${tea.id}` });
    expect(await payoutRow(noodles.id)).toMatchObject({ status: 'FAILED', failure_code: 'balance_insufficient', attempts: 1, gateway_payout_id: null });
    expect(await payoutRow(bakery.id)).toMatchObject({ status: 'FAILED', failure_code: 'invalid_request' });
    expect([await lineStatus(tea.line_id), await lineStatus(noodles.line_id), await lineStatus(bakery.line_id)]).toEqual(['PAYING', 'PAYOUT_FAILED', 'PAYOUT_FAILED']);
    // The sent one is still paying: the batch is not settled yet.
    expect(await statuses(d.window.id, d.batch.id)).toEqual({ window: 'CLEARED', batch: 'PAYING' });

    const inTransit = (await settlementInTransitAccount(em, 'CNY')).id;
    const noodlesPayable = (await payableAccount(em, 'MERCHANT', d.merchants.Noodles!, 'CNY')).id;
    expect(await postings(`settlement-payout:${noodles.id}:failed`)).toEqual([[noodlesPayable, -700n], [inTransit, 700n]]);
    expect(await balance(em, noodlesPayable)).toBe(700n);
    expect(await postings(`settlement-payout:${tea.id}:paid`)).toEqual([]);
    expect(await heard(d.merchants.Noodles!)).toEqual([['settlement.payout_failed', 700, 'FAILED', 'balance_insufficient']]);
    expect(await heard(d.merchants.Tea!)).toEqual([]);

    // The gateway pays the sent one (its webhook): the batch and window are settled.
    expect(await applyPayout(em, payout({ id: `po_${tea.id}`, amount: 1_250, status: 'paid', metadata: { settlementPayout: tea.id } }))).toBe('applied');
    expect(await lineStatus(tea.line_id)).toBe('PAID');
    expect(await statuses(d.window.id, d.batch.id)).toEqual({ window: 'SETTLED', batch: 'SETTLED' });
    expect(await postings(`settlement-payout:${tea.id}:paid`)).toEqual([[(await gatewayClearingAccount(em, 'CNY')).id, -1_250n], [inTransit, 1_250n]]);
    expect(await heard(d.merchants.Tea!)).toEqual([['settlement.paid', 1_250, 'PAID', null]]);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a gateway that does not answer leaves the payout PENDING with nothing booked, asked again after 30 s, 2, 10, 30 and 60 minutes, then hourly; its answer then sends it', async () => {
    const d = await clearedDay('POB', { Ferry: 400n });
    const ferry = d.payoutOf('Ferry');
    let down = true;
    const gw = scriptedGateway({
      create: (p) => {
        if (down) throw new GatewayError('UNAVAILABLE', 'no answer');
        return payout({ id: 'po_ferry', amount: Number(p.amount), status: 'in_transit', metadata: p.metadata! });
      },
    });
    let now = NOW;
    for (const [attempt, delay] of [[1, 30], [2, 120], [3, 600], [4, 1_800], [5, 3_600], [6, 3_600]] as const) {
      expect(await sendDuePayouts(em, gw.client, now), `attempt ${attempt}`).toBe(1);
      const row = await payoutRow(ferry.id);
      expect(row).toMatchObject({ status: 'PENDING', failure_code: 'gateway_unavailable', attempts: attempt, gateway_payout_id: null });
      expect(row.wait - (now.getTime() - NOW.getTime()) / 1000, `wait after attempt ${attempt}`).toBe(delay);
      // Not before its time.
      expect(await sendDuePayouts(em, gw.client, new Date(now.getTime() + (delay - 1) * 1000))).toBe(0);
      now = new Date(now.getTime() + delay * 1000);
    }
    expect(gw.asked.map((a) => a.key)).toEqual(Array(6).fill(`settlement-payout:${ferry.id}`));
    expect(await postings(`settlement-payout:${ferry.id}:failed`)).toEqual([]);
    expect(await lineStatus(ferry.line_id)).toBe('PAYING');

    down = false;
    expect(await sendDuePayouts(em, gw.client, now)).toBe(1);
    // Sent: the earlier failure is forgotten.
    expect(await payoutRow(ferry.id)).toMatchObject({ status: 'SENT', failure_code: null, attempts: 7, gateway_payout_id: 'po_ferry' });
    expect(await heard(d.merchants.Ferry!)).toEqual([]);
  });

  it('an error that is not the gateway’s stops the job and leaves the payout to be tried again', async () => {
    const d = await clearedDay('POC', { Kiosk: 300n });
    const gw = scriptedGateway({
      create: () => {
        throw new TypeError('bug');
      },
    });
    await expect(sendDuePayouts(em, gw.client, NOW)).rejects.toThrow('bug');
    expect(await payoutRow(d.payoutOf('Kiosk').id)).toMatchObject({ status: 'PENDING', failure_code: null });
  });
});

describe('asking the gateway about sent payouts', () => {
  it('asks only about payouts idle that long, books what it answers, and shrugs off a gateway that does not answer', async () => {
    const d = await clearedDay('POD', { Books: 800n, Shoes: 600n });
    const books = d.payoutOf('Books');
    const shoes = d.payoutOf('Shoes');
    const sent = scriptedGateway({ create: (p) => payout({ id: `po_${p.metadata!.settlementPayout}`, amount: Number(p.amount), status: 'pending', metadata: p.metadata! }) });
    expect(await sendDuePayouts(em, sent.client, NOW)).toBe(2);

    const asked: string[] = [];
    const answers = scriptedGateway({
      retrieve: (id) => {
        asked.push(id);
        if (id !== `po_${books.id}`) throw new GatewayError('UNAVAILABLE', 'no answer');
        return payout({ id, amount: 800, status: 'paid', metadata: { settlementPayout: books.id } });
      },
    });
    // Sent moments ago: not asked yet.
    expect(await pollSentPayouts(em, answers.client, { idleSeconds: 3_600, now: new Date() })).toBe(0);
    expect(asked).toEqual([]);
    const later = new Date(Date.now() + 2 * 3_600_000);
    // Every payout sent (this file's earlier tests left one SENT too), each asked about once.
    const sentBefore = await em.execute<{ gateway_payout_id: string }[]>(`select gateway_payout_id from settlement_payout where status = 'SENT'`);
    expect(sentBefore.map((r) => r.gateway_payout_id)).toEqual(expect.arrayContaining([`po_${books.id}`, `po_${shoes.id}`]));
    expect(await pollSentPayouts(em, answers.client, { idleSeconds: 3_600, now: later })).toBe(sentBefore.length);
    expect(asked.sort()).toEqual(sentBefore.map((r) => r.gateway_payout_id).sort());
    expect(await payoutRow(books.id)).toMatchObject({ status: 'PAID' });
    expect(await payoutRow(shoes.id)).toMatchObject({ status: 'SENT' });
    expect(await postings(`settlement-payout:${books.id}:paid`)).toHaveLength(2);
    // Asked about just now: not again until it has been idle that long once more.
    expect(await pollSentPayouts(em, answers.client, { idleSeconds: 3_600, now: new Date(later.getTime() + 60_000) })).toBe(0);

    const broken = scriptedGateway({
      retrieve: () => {
        throw new TypeError('bug');
      },
    });
    await expect(pollSentPayouts(em, broken.client, { idleSeconds: 3_600, now: new Date(later.getTime() + 2 * 3_600_000) })).rejects.toThrow('bug');
  });
});

describe('what the gateway says of a payout', () => {
  it('a payout that is not ours is unknown; another currency, or an amount no integer holds, is a mismatch; a payout still on its way changes nothing; canceled fails it', async () => {
    const d = await clearedDay('POE', { Pharmacy: 1_000n });
    const p = d.payoutOf('Pharmacy');
    const answer = (over: Partial<Payout>) => payout({ id: 'po_pharmacy', amount: 1_000, metadata: { settlementPayout: p.id }, ...over });
    expect(await applyPayout(em, payout({ id: 'po_stranger', amount: 1_000, status: 'paid', metadata: { settlementPayout: '00000000-0000-4000-8000-000000000000' } }))).toBe('unknown');
    expect(await applyPayout(em, payout({ id: 'po_stranger', amount: 1_000, status: 'paid', metadata: {} }))).toBe('unknown');
    expect(await applyPayout(em, answer({ status: 'paid', currency: 'usd' }))).toBe('mismatch');
    expect(await applyPayout(em, answer({ status: 'paid', amount: 1_000.5 }))).toBe('mismatch');
    expect(await applyPayout(em, answer({ status: 'paid', amount: 2 ** 53 }))).toBe('mismatch');
    for (const status of ['pending', 'in_transit'] as const) expect(await applyPayout(em, answer({ status }))).toBe('stale');
    expect(await payoutRow(p.id)).toMatchObject({ status: 'PENDING', failure_code: null });
    expect(await postings(`settlement-payout:${p.id}:paid`)).toEqual([]);

    expect(await applyPayout(em, answer({ status: 'canceled', failure_code: null }))).toBe('applied');
    expect(await payoutRow(p.id)).toMatchObject({ status: 'FAILED', failure_code: 'canceled' });
    expect(await heard(d.merchants.Pharmacy!)).toEqual([['settlement.payout_failed', 1_000, 'FAILED', 'canceled']]);
    // Once failed, a late paid answer is stale: the money is back in the payable already.
    expect(await applyPayout(em, answer({ status: 'paid' }))).toBe('stale');
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', d.merchants.Pharmacy!, 'CNY')).id)).toBe(1_000n);
    expect(await statuses(d.window.id, d.batch.id)).toEqual({ window: 'SETTLED', batch: 'SETTLED' });
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a paid payout the bank returns is booked back with the bank’s reason, or the status when it gives none', async () => {
    const d = await clearedDay('POF', { Florist: 450n });
    const p = d.payoutOf('Florist');
    const answer = (over: Partial<Payout>) => payout({ id: 'po_florist', amount: 450, metadata: { settlementPayout: p.id }, ...over });
    expect(await applyPayout(em, answer({ status: 'paid' }))).toBe('applied');
    expect(await applyPayout(em, answer({ status: 'canceled', failure_code: null }))).toBe('applied');
    expect(await payoutRow(p.id)).toMatchObject({ status: 'FAILED', failure_code: 'canceled', gateway_payout_id: 'po_florist' });
    const inTransit = (await settlementInTransitAccount(em, 'CNY')).id;
    expect(await postings(`settlement-payout:${p.id}:returned`)).toEqual([[inTransit, -450n], [(await gatewayClearingAccount(em, 'CNY')).id, 450n]]);
    const [entry] = await em.execute<{ description: string; metadata: Record<string, string> }[]>(`select description, metadata from journal_entry where entry_key = ?`, [`settlement-payout:${p.id}:returned`]);
    expect(entry).toEqual({
      description: `payout to merchant ${d.merchants.Florist} returned by the bank (canceled)`,
      metadata: { kind: 'PAYOUT_RETURNED', payout: p.id, gatewayPayout: 'po_florist', line: p.line_id },
    });
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', d.merchants.Florist!, 'CNY')).id)).toBe(450n);
    expect(await heard(d.merchants.Florist!)).toEqual([
      ['settlement.paid', 450, 'PAID', null],
      ['settlement.payout_failed', 450, 'FAILED', 'canceled'],
    ]);
    expect(await checkLedger(em)).toEqual([]);
  });
});

describe('a gateway that answers at once', () => {
  it('paid or failed in its first answer is booked then; the entries, status trail and webhooks say why, and the last payout settles the batch and window', async () => {
    const d = await clearedDay('POG', { Cafe: 300n, Bar: 200n, Deli: 100n });
    const [cafe, bar, deli] = [d.payoutOf('Cafe'), d.payoutOf('Bar'), d.payoutOf('Deli')];
    const first: Record<string, Partial<Payout>> = { [cafe.id]: { status: 'paid' }, [bar.id]: { status: 'failed', failure_code: 'account_closed' }, [deli.id]: { status: 'pending' } };
    const gw = scriptedGateway({ create: (p) => payout({ id: `po_${p.metadata!.settlementPayout}`, amount: Number(p.amount), metadata: p.metadata!, ...first[p.metadata!.settlementPayout!] }) });
    expect(await sendDuePayouts(em, gw.client, NOW)).toBe(3);
    expect(await payoutRow(cafe.id)).toMatchObject({ status: 'PAID', failure_code: null });
    expect(await payoutRow(bar.id)).toMatchObject({ status: 'FAILED', failure_code: 'account_closed' });
    expect(await payoutRow(deli.id)).toMatchObject({ status: 'SENT' });

    const entry = async (key: string) => (await em.execute<{ description: string; metadata: Record<string, string> }[]>(`select description, metadata from journal_entry where entry_key = ?`, [key]))[0];
    expect(await entry(`settlement-payout:${cafe.id}:paid`)).toEqual({
      description: `payout to merchant ${d.merchants.Cafe} confirmed by the gateway`,
      metadata: { kind: 'PAYOUT', payout: cafe.id, gatewayPayout: `po_${cafe.id}`, line: cafe.line_id },
    });
    expect(await entry(`settlement-payout:${bar.id}:failed`)).toEqual({
      description: `payout to merchant ${d.merchants.Bar} failed (account_closed): back to its payable`,
      metadata: { kind: 'PAYOUT_FAILED', payout: bar.id, line: bar.line_id, failureCode: 'account_closed' },
    });

    expect(await applyPayout(em, payout({ id: `po_${deli.id}`, amount: 100, status: 'paid', metadata: { settlementPayout: deli.id } }))).toBe('applied');
    const trail = async (machine: string, id: string) =>
      (await em.execute<{ to_status: string; cause: string }[]>(`select to_status, cause from status_history where machine = ? and row_id = ? order by id`, [machine, id])).map((m) => `${m.to_status}: ${m.cause}`);
    expect(await trail('settlement_payout', cafe.id)).toEqual(['SENT: sent to the gateway', `PAID: gateway payout po_${cafe.id}`]);
    expect(await trail('settlement_payout', bar.id)).toEqual(['SENT: sent to the gateway', 'FAILED: account_closed']);
    expect((await trail('settlement_line', cafe.line_id)).at(-1)).toBe(`PAID: payout ${cafe.id}`);
    expect((await trail('settlement_line', bar.line_id)).at(-1)).toBe(`PAYOUT_FAILED: payout ${bar.id}`);
    expect((await trail('settlement_batch', d.batch.id)).at(-1)).toBe('SETTLED: no line paying');
    expect((await trail('settlement_window', d.window.id)).at(-1)).toBe('SETTLED: its batch settled');
    const [settledAt] = await em.execute<{ batch: Date | null; window: Date | null }[]>(
      `select b.settled_at as batch, w.settled_at as window from settlement_batch b join settlement_window w on w.id = b.window_id where b.id = ?`,
      [d.batch.id],
    );
    expect(settledAt).toEqual({ batch: expect.anything(), window: expect.anything() });

    const events = await em.execute<{ type: string; subject_id: string; payload: { statement: string } }[]>(`select type, subject_id, payload from event_outbox where owner_id = ? and type <> 'settlement.ready'`, [d.merchants.Bar]);
    expect(events.map((e) => [e.type, e.subject_id, e.payload.statement])).toEqual([['settlement.payout_failed', toGlobalId('SettlementLine', bar.line_id), toGlobalId('SettlementLine', bar.line_id)]]);
    expect(await checkLedger(em)).toEqual([]);
  });
});
