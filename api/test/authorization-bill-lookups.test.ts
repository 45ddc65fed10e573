/**
 * Bill look-ups by account number (issue 18, problem 7), over real HTTP with real OAuth tokens. Any
 * signed-in holder could walk GZW-0010001, -2, -3 … and read what each account owes. Now a holder's
 * look-ups of accounts not bound to it are throttled (distinct accounts per hour), each one is
 * audited (who, biller, account, when, found or not), and an unbound holder sees what a payer needs,
 * not the biller's reference or what was paid before. Where the biller allows it, a holder binds an
 * account with the reference printed on one of its bills, then sees its bills in full, unthrottled.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { FAILED_BINDS_PER_HOUR, LOOKUPS_PER_HOUR } from '../src/bills/account-lookups.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { cardholderAccessToken } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let waterId: string;
let water: OneCardClient;
let appClientId: string;
const redirectUri = 'http://127.0.0.1:8796/callback';

const WATER = () => toGlobalId('Biller', waterId);
const account = (n: number) => `GZW-${String(10_000 + n).padStart(7, '0')}`;

interface Holder {
  id: string;
  token: string;
}

async function holder(username: string): Promise<Holder> {
  const id = (await createCardholder(db.orm.em.fork(), { username, password: `${username} password 1`, displayName: username })).id;
  const token = await cardholderAccessToken(server.url, { clientId: appClientId, redirectUri, username, password: `${username} password 1`, scope: 'card:read card:manage' });
  return { id, token };
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' });
  waterId = (await createBiller(em, { cityId: gz.city.id, name: 'GZ Water', kind: BillerKind.WATER })).id;
  const made = await createClient(em, { kind: 'BILLER', tenantId: waterId, name: 'water', scopes: ['bills:read', 'bills:write'] });
  water = new OneCardClient({ baseUrl: server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: 'bills:read bills:write', allowInsecureHttp: true });
  appClientId = (await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: gz.cardCompany.id, name: 'Card App', scopes: ['card:read', 'card:manage'], redirectUris: [redirectUri] })).client.client_id;
  // Every odd account owes a bill; the bill's reference is what is printed on the paper bill.
  for (let n = 1; n <= 15; n += 2) {
    const published = await water.request<{ publishBill: { userErrors: unknown[] } }>(`mutation($input: BillInput!) { publishBill(input: $input) { userErrors { code message } } }`, {
      input: { accountNumber: account(n), period: '2026-10', amountDue: 4_000 + n, dueDate: '2099-11-30', billerReference: `REF-${n}-${randomUUID().slice(0, 8)}` },
    });
    expect(published.publishBill.userErrors).toEqual([]);
  }
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const LOOK_UP = `query($biller: ID!, $account: String!) { billsForAccount(biller: $biller, accountNumber: $account) { billerName accountNumber bills { id period amountDue { amount } dueDate remaining { amount } } userErrors { code message } } }`;
const lookUp = (who: Holder, n: number) => graphql(server.url, LOOK_UP, { biller: WATER(), account: account(n) }, { authorization: `Bearer ${who.token}` });
const BIND = `mutation($input: BindBillAccountInput!) { bindBillAccount(input: $input) { binding { biller accountNumber boundAt } userErrors { code field message } } }`;
const bind = (who: Holder, n: number, billerReference: string) => graphql(server.url, BIND, { input: { biller: WATER(), accountNumber: account(n), billerReference } }, { authorization: `Bearer ${who.token}` });

async function referenceOf(n: number): Promise<string> {
  const [row] = await db.orm.em.fork().execute<{ biller_reference: string }[]>(`select biller_reference from bill where account_number = ?`, [account(n)]);
  return row!.biller_reference;
}

async function auditOf(holderId: string) {
  return db.orm.em.fork().execute<{ client_id: string; biller_id: string; account_number: string; action: string; outcome: string; at: Date }[]>(
    `select client_id, biller_id, account_number, action, outcome, at from bill_lookup where holder_id = ? order by id`,
    [holderId],
  );
}

describe('walking account numbers (enumeration)', () => {
  it(`answers ${LOOKUPS_PER_HOUR} accounts an hour per holder, then THROTTLED with Retry-After and no amounts; the accounts already looked up still answer`, async () => {
    const walker = await holder('walker');
    const owed: number[] = [];
    for (let n = 1; n <= LOOKUPS_PER_HOUR; n++) {
      const { status, body } = await lookUp(walker, n);
      expect(status, account(n)).toBe(200);
      owed.push(...body.data.billsForAccount.bills.map((b: { amountDue: { amount: number } }) => b.amountDue.amount));
    }
    expect(owed).toEqual([4_001, 4_003, 4_005, 4_007, 4_009]);
    for (const n of [LOOKUPS_PER_HOUR + 1, LOOKUPS_PER_HOUR + 3]) {
      const refused = await lookUp(walker, n);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.body.errors[0].extensions).toMatchObject({ code: 'THROTTLED', retryAfter: expect.any(Number) });
      expect(refused.body.data?.billsForAccount ?? null).toBeNull();
      expect(JSON.stringify(refused.body)).not.toContain(String(4_000 + n));
    }
    // Looking again at an account already looked up this hour is not another account.
    expect((await lookUp(walker, 3)).body.data.billsForAccount.bills).toHaveLength(1);
    // The throttle is the holder's: another holder of the same app is not held back.
    expect((await lookUp(await holder('neighbour'), 13)).status).toBe(200);
  });

  it('look-ups sent all at once share the one budget: no request slips under the limit', async () => {
    const rusher = await holder('rusher');
    const answers = await Promise.all(Array.from({ length: LOOKUPS_PER_HOUR + 5 }, (_, i) => lookUp(rusher, 100 + i)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(LOOKUPS_PER_HOUR);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(5);
  });

  it('audits every look-up: who, which biller, which account, when, found or not (and throttled ones)', async () => {
    const auditee = await holder('auditee');
    await lookUp(auditee, 1);
    await lookUp(auditee, 2);
    const rows = await auditOf(auditee.id);
    expect(rows.map((r) => [r.client_id, r.biller_id, r.account_number, r.action, r.outcome])).toEqual([
      [appClientId, waterId, account(1), 'LOOK_UP', 'FOUND'],
      [appClientId, waterId, account(2), 'LOOK_UP', 'NOT_FOUND'],
    ]);
    expect(rows.every((r) => Math.abs(new Date(r.at).getTime() - Date.now()) < 3_600_000)).toBe(true);
    const walkerRows = await db.orm.em.fork().execute<{ outcome: string }[]>(`select l.outcome from bill_lookup l join cardholder c on c.id = l.holder_id where c.username = 'walker' order by l.id`);
    expect(walkerRows.filter((r) => r.outcome === 'THROTTLED')).toHaveLength(2);
  });
});

describe('what an unbound holder sees of a bill', () => {
  it('what a payer needs: amount, due date, biller; the biller’s reference and what was paid before are FORBIDDEN', async () => {
    const payer = await holder('payer');
    const found = await lookUp(payer, 5);
    expect(found.body.data.billsForAccount).toMatchObject({ billerName: 'GZ Water', bills: [{ amountDue: { amount: 4_005 }, dueDate: '2099-11-30', remaining: { amount: 4_005 } }] });
    const id = found.body.data.billsForAccount.bills[0].id;
    const reference = await referenceOf(5);
    for (const selection of ['billerReference', 'amountPaid { amount }']) {
      for (const query of [
        `query($id: ID!) { bill(id: $id) { id ${selection} } }`,
        `query($id: ID!) { node(id: $id) { ... on Bill { id ${selection} } } }`,
        `query($biller: ID!, $account: String!) { billsForAccount(biller: $biller, accountNumber: $account) { bills { id ${selection} } } }`,
      ]) {
        const { body } = await graphql(server.url, query, { id, biller: WATER(), account: account(5) }, { authorization: `Bearer ${payer.token}` });
        expect(body.errors?.[0]?.extensions?.code, `${selection} in ${query}`).toBe('FORBIDDEN');
        expect(JSON.stringify(body)).not.toContain(reference);
      }
    }
  });
});

describe('binding an account to a holder', () => {
  it('is refused unless the biller allows it; then the reference printed on a bill binds it, a wrong one does not', async () => {
    const owner = await holder('owner');
    const reference = await referenceOf(7);
    expect((await bind(owner, 7, reference)).body.data.bindBillAccount.userErrors).toEqual([{ code: 'FORBIDDEN_OPERATION', field: ['input', 'biller'], message: expect.stringMatching(/does not allow/) }]);

    const allowed = await water.request<{ setBillerAccountBinding: { allowed: boolean; userErrors: unknown[] } }>(`mutation($input: SetBillerAccountBindingInput!) { setBillerAccountBinding(input: $input) { allowed userErrors { code message } } }`, { input: { allowed: true } });
    expect(allowed.setBillerAccountBinding).toEqual({ allowed: true, userErrors: [] });

    expect((await bind(owner, 7, 'REF-7-guessed')).body.data.bindBillAccount).toEqual({ binding: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'billerReference'], message: expect.any(String) }] });
    const bound = await bind(owner, 7, reference);
    expect(bound.body.data.bindBillAccount).toMatchObject({ binding: { biller: WATER(), accountNumber: account(7) }, userErrors: [] });
    expect((await auditOf(owner.id)).map((r) => [r.action, r.outcome])).toEqual([
      ['BIND', 'NOT_ALLOWED'],
      ['BIND', 'REFUSED'],
      ['BIND', 'BOUND'],
    ]);

    // Bound: its bills in full, by look-up and by id.
    const full = await graphql(server.url, `query($biller: ID!, $account: String!) { billsForAccount(biller: $biller, accountNumber: $account) { bills { id billerReference amountPaid { amount } } } }`, { biller: WATER(), account: account(7) }, { authorization: `Bearer ${owner.token}` });
    expect(full.body.errors).toBeUndefined();
    expect(full.body.data.billsForAccount.bills).toEqual([{ id: expect.any(String), billerReference: reference, amountPaid: { amount: 0 } }]);
    const byId = await graphql(server.url, `query($id: ID!) { bill(id: $id) { billerReference } }`, { id: full.body.data.billsForAccount.bills[0].id }, { authorization: `Bearer ${owner.token}` });
    expect(byId.body.data.bill).toEqual({ billerReference: reference });
  });

  it('guessing references is throttled like looking accounts up, and a bound account is never throttled', async () => {
    const guesser = await holder('guesser');
    const reference = await referenceOf(9);
    await bind(guesser, 9, reference);
    // Wrong proofs have a budget of their own, whatever the accounts …
    for (let n = 20; n < 20 + FAILED_BINDS_PER_HOUR; n++) expect((await bind(guesser, n, `REF-${n}`)).body.data.bindBillAccount.userErrors[0].code).toBe('NOT_FOUND');
    for (const attempt of [await bind(guesser, 30, 'REF-30'), await bind(guesser, 11, await referenceOf(11))]) {
      expect(attempt.status).toBe(429);
      expect(attempt.body.errors[0].extensions.code).toBe('THROTTLED');
    }
    // … and each attempt was a look-up of its account: 6 accounts so far, 4 more, then THROTTLED.
    for (const n of [1, 2, 3, 4]) expect((await lookUp(guesser, n)).status).toBe(200);
    expect((await lookUp(guesser, 5)).status).toBe(429);
    // The account it bound (before the budget ran out) still answers, as often as it likes.
    for (let i = 0; i < 3; i++) expect((await lookUp(guesser, 9)).body.data.billsForAccount.bills).toHaveLength(1);
  });
  it('wrong references on one account are not free after the first: 50 guesses are THROTTLED from the 6th, each one audited', async () => {
    const prober = await holder('prober');
    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await bind(prober, 13, `WB-2026-10-${String(i).padStart(7, '0')}`));
    expect(answers.slice(0, FAILED_BINDS_PER_HOUR).map((a) => a.body.data.bindBillAccount.userErrors[0].code)).toEqual(Array(FAILED_BINDS_PER_HOUR).fill('NOT_FOUND'));
    for (const a of answers.slice(FAILED_BINDS_PER_HOUR)) {
      expect(a.status).toBe(429);
      expect(a.body.errors[0].extensions.code).toBe('THROTTLED');
    }
    // Even the right reference now waits out the hour: otherwise the guessing just goes on.
    expect((await bind(prober, 13, await referenceOf(13))).status).toBe(429);
    const audit = await auditOf(prober.id);
    expect(audit).toHaveLength(51);
    expect(audit.every((r) => r.action === 'BIND' && r.account_number === account(13))).toBe(true);
    expect(audit.map((r) => r.outcome)).toEqual([...Array(FAILED_BINDS_PER_HOUR).fill('REFUSED'), ...Array(51 - FAILED_BINDS_PER_HOUR).fill('THROTTLED')]);
  });
});
