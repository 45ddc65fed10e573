import type { ApolloServer } from '@apollo/server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApolloServer } from '../src/apollo.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { Metrics } from '../src/http/metrics.js';
import { seedDemoData } from '../src/demo/seed.js';
import { tenancyDemo } from '../src/tenancy/tenancy.seed.js';
import { TenancyErrorCode } from '../src/tenancy/tenancy.errors.js';
import { createCity, createMerchant, feeFor, findMerchantFor, listMerchantsFor } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { testConfig } from './support/server.js';

// In-process, with the principal the token verifier builds (see graphql-conventions.test.ts).
const MANAGE = ['tenants:manage'];
const principal = (kind: PrincipalKind, tenantId: string | null = null, scopes: string[] = []): Principal => ({ kind, clientId: `${kind.toLowerCase()}-test`, tenantId, holderId: null, scopes });
const operator = principal('OPERATOR', null, MANAGE);
const NOBODY = '00000000-0000-4000-8000-000000000000';

let db: TestDatabase;
let apollo: ApolloServer<GraphQLContext>;

beforeAll(async () => {
  db = await freshDatabase();
  apollo = await createApolloServer({ config: testConfig(), log: pino({ level: 'silent' }), metrics: new Metrics() });
});
afterAll(async () => {
  await apollo.stop();
  await db.close();
});

async function run(query: string, variables: Record<string, unknown> = {}, as: Principal | null = operator) {
  const res = await apollo.executeOperation(
    { query, variables },
    { contextValue: { em: db.orm.em.fork(), principal: as, requestId: 'test', log: pino({ level: 'silent' }), config: testConfig() } },
  );
  if (res.body.kind !== 'single') throw new Error('expected a single result');
  return JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[] };
}

/** Runs a mutation that must succeed and returns its payload's object. */
async function ok(query: string, input: Record<string, unknown>) {
  const { data, errors } = await run(query, { input });
  expect(errors).toBeUndefined();
  const payload = Object.values(data)[0] as Record<string, any>;
  expect(payload.userErrors).toEqual([]);
  return Object.values(payload).find((v) => v && typeof v === 'object' && !Array.isArray(v));
}

const CREATE_CITY = `mutation($input: CreateCityInput!) { createCity(input: $input) { city { id code name timeZone currency cardCompany { id name city { code } } } userErrors { code field message } } }`;
const UPDATE_CITY = `mutation($input: UpdateCityInput!) { updateCity(input: $input) { city { id name timeZone cardCompany { name } } userErrors { code field } } }`;
const CREATE_FEE_PLAN = `mutation($input: CreateFeePlanInput!) { createFeePlan(input: $input) { feePlan { id name basisPoints fixedFee { amount currency } minimumFee { amount currency } fee(amount: 10000) { amount } } userErrors { code field message } } }`;
const UPDATE_FEE_PLAN = `mutation($input: UpdateFeePlanInput!) { updateFeePlan(input: $input) { feePlan { id basisPoints minimumFee { amount } } userErrors { code field } } }`;
const CREATE_MERCHANT = `mutation($input: CreateMerchantInput!) { createMerchant(input: $input) { merchant { id name status currency city { code } feePlan { id } } userErrors { code field message } } }`;
const UPDATE_MERCHANT = `mutation($input: UpdateMerchantInput!) { updateMerchant(input: $input) { merchant { id name status feePlan { id } } userErrors { code field message } } }`;
const CREATE_BILLER = `mutation($input: CreateBillerInput!) { createBiller(input: $input) { biller { id name kind status city { code } feePlan { id } } userErrors { code field message } } }`;
const UPDATE_BILLER = `mutation($input: UpdateBillerInput!) { updateBiller(input: $input) { biller { id status } userErrors { code field } } }`;

/** A mutation and its input, built when the test runs (after the fixtures exist). */
const refusal = (query: string, input: Record<string, unknown>) => [query, input] as const;
const city = (code: string, extra: Record<string, unknown> = {}) => ({ code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co`, ...extra });

describe('operator onboarding', () => {
  it('creates a city with its card company, a fee plan, a merchant and a biller', async () => {
    const gz = await ok(CREATE_CITY, city('CANT', { name: '广州 Guangzhou', cardCompanyName: '广州羊城通' }));
    expect(gz).toMatchObject({ code: 'CANT', name: '广州 Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompany: { name: '广州羊城通', city: { code: 'CANT' } } });
    expect(fromGlobalId(gz.id).type).toBe('City');
    expect(fromGlobalId(gz.cardCompany.id).type).toBe('CardCompany');

    const plan = await ok(CREATE_FEE_PLAN, { name: 'Onboarding 0.55%', basisPoints: 55, fixedFee: 2, minimumFee: 10, currency: 'CNY' });
    expect(plan).toMatchObject({ basisPoints: 55, fixedFee: { amount: 2, currency: 'CNY' }, minimumFee: { amount: 10, currency: 'CNY' }, fee: { amount: 57 } });

    const shop = await ok(CREATE_MERCHANT, { city: gz.id, name: 'Tea House', feePlan: plan.id });
    expect(shop).toEqual({ id: expect.any(String), name: 'Tea House', status: 'ACTIVE', currency: 'CNY', city: { code: 'CANT' }, feePlan: { id: plan.id } });

    const water = await ok(CREATE_BILLER, { city: gz.id, name: 'Canton Water', kind: 'WATER' });
    expect(water).toEqual({ id: expect.any(String), name: 'Canton Water', kind: 'WATER', status: 'ACTIVE', city: { code: 'CANT' }, feePlan: null });
  });

  it('updates a city, a fee plan, a merchant and a biller; absent fields stay, a null fee plan takes it off', async () => {
    const c = await ok(CREATE_CITY, city('UPD'));
    expect(await ok(UPDATE_CITY, { city: c.id, timeZone: 'Asia/Urumqi', cardCompanyName: 'Renamed Card Co' })).toEqual({
      id: c.id,
      name: 'City UPD',
      timeZone: 'Asia/Urumqi',
      cardCompany: { name: 'Renamed Card Co' },
    });
    const plan = await ok(CREATE_FEE_PLAN, { name: 'To update', basisPoints: 10, currency: 'CNY' });
    expect(await ok(UPDATE_FEE_PLAN, { feePlan: plan.id, basisPoints: 25 })).toEqual({ id: plan.id, basisPoints: 25, minimumFee: { amount: 0 } });

    const m = await ok(CREATE_MERCHANT, { city: c.id, name: 'Shop to update', feePlan: plan.id });
    expect(await ok(UPDATE_MERCHANT, { merchant: m.id, status: 'SUSPENDED' })).toEqual({ id: m.id, name: 'Shop to update', status: 'SUSPENDED', feePlan: { id: plan.id } });
    expect(await ok(UPDATE_MERCHANT, { merchant: m.id, name: 'Renamed shop', feePlan: null })).toEqual({ id: m.id, name: 'Renamed shop', status: 'SUSPENDED', feePlan: null });

    const b = await ok(CREATE_BILLER, { city: c.id, name: 'Biller to update', kind: 'GAS' });
    expect(await ok(UPDATE_BILLER, { biller: b.id, status: 'SUSPENDED' })).toEqual({ id: b.id, status: 'SUSPENDED' });
  });
});

describe('business refusals are userErrors with a code and a field', () => {
  let hkd: string;
  let cny: string;
  let cityId: string;
  let other: string;
  beforeAll(async () => {
    cityId = (await ok(CREATE_CITY, city('REF'))).id;
    hkd = (await ok(CREATE_FEE_PLAN, { name: 'HKD plan', basisPoints: 50, currency: 'HKD' })).id;
    cny = (await ok(CREATE_FEE_PLAN, { name: 'CNY plan', basisPoints: 50, currency: 'CNY' })).id;
    await ok(CREATE_MERCHANT, { city: cityId, name: 'Taken name' });
    other = (await ok(CREATE_MERCHANT, { city: cityId, name: 'Other name' })).id;
  });

  it.each([
    ['a duplicate city code', () => refusal(CREATE_CITY, city('REF')), 'DUPLICATE_CODE', ['input', 'code']],
    ['a city code in lower case', () => refusal(CREATE_CITY, city('gz')), 'INVALID_INPUT', ['input', 'code']],
    ['an unknown time zone', () => refusal(CREATE_CITY, city('TZ', { timeZone: 'Mars/Olympus_Mons' })), 'INVALID_TIME_ZONE', ['input', 'timeZone']],
    ['a blank card company name', () => refusal(CREATE_CITY, city('BLANK', { cardCompanyName: '  ' })), 'INVALID_INPUT', ['input', 'cardCompanyName']],
    ['basis points above 10000', () => refusal(CREATE_FEE_PLAN, { name: 'Greedy', basisPoints: 10_001, currency: 'CNY' }), 'INVALID_INPUT', ['input', 'basisPoints']],
    ['negative basis points', () => refusal(CREATE_FEE_PLAN, { name: 'Generous', basisPoints: -1, currency: 'CNY' }), 'INVALID_INPUT', ['input', 'basisPoints']],
    ['a negative minimum fee', () => refusal(CREATE_FEE_PLAN, { name: 'Negative', basisPoints: 1, minimumFee: -1, currency: 'CNY' }), 'INVALID_INPUT', ['input', 'minimumFee']],
    ['a duplicate fee plan name', () => refusal(CREATE_FEE_PLAN, { name: 'CNY plan', basisPoints: 1, currency: 'CNY' }), 'DUPLICATE_NAME', ['input', 'name']],
    ['a fee plan in another currency than the city', () => refusal(CREATE_MERCHANT, { city: cityId, name: 'HKD shop', feePlan: hkd }), 'CURRENCY_MISMATCH', ['input', 'feePlan']],
    ['a biller on a fee plan in another currency', () => refusal(CREATE_BILLER, { city: cityId, name: 'HKD water', kind: 'WATER', feePlan: hkd }), 'CURRENCY_MISMATCH', ['input', 'feePlan']],
    ['a merchant name taken in the city', () => refusal(CREATE_MERCHANT, { city: cityId, name: 'Taken name', feePlan: cny }), 'DUPLICATE_NAME', ['input', 'name']],
    ['a merchant renamed to a name taken in the city', () => refusal(UPDATE_MERCHANT, { merchant: other, name: 'Taken name' }), 'DUPLICATE_NAME', ['input', 'name']],
    ['a merchant in an unknown city', () => refusal(CREATE_MERCHANT, { city: toGlobalId('City', NOBODY), name: 'Nowhere' }), 'NOT_FOUND', ['input', 'city']],
    ['an update of an unknown merchant', () => refusal(UPDATE_MERCHANT, { merchant: toGlobalId('Merchant', NOBODY), name: 'x' }), 'NOT_FOUND', ['input', 'merchant']],
    ['an unknown time zone on update', () => refusal(UPDATE_CITY, { city: cityId, timeZone: 'Asia/Atlantis' }), 'INVALID_TIME_ZONE', ['input', 'timeZone']],
  ] as const)('refuses %s', async (_name, make, code, field) => {
    const [query, input] = make();
    const { data, errors } = await run(query, { input });
    expect(errors).toBeUndefined();
    const payload = Object.values(data)[0] as Record<string, any>;
    expect(payload.userErrors).toEqual([expect.objectContaining({ code, field: [...field] })]);
    expect(Object.values(payload).filter((v) => !Array.isArray(v))).toEqual([null]);
  });

  it('moving a merchant onto a plan in another currency is refused and changes nothing', async () => {
    const m = await ok(CREATE_MERCHANT, { city: cityId, name: 'Steady shop', feePlan: cny });
    const { data } = await run(UPDATE_MERCHANT, { input: { merchant: m.id, name: 'Renamed', feePlan: hkd } });
    expect(data.updateMerchant.userErrors).toEqual([expect.objectContaining({ code: 'CURRENCY_MISMATCH', field: ['input', 'feePlan'] })]);
    expect((await run(`query($id: ID!) { merchant(id: $id) { name feePlan { id } } }`, { id: m.id })).data.merchant).toEqual({ name: 'Steady shop', feePlan: { id: cny } });
  });

  it('the database itself refuses a merchant whose fee plan is in another currency', async () => {
    const em = db.orm.em.fork();
    const [{ id: merchantId }] = await em.execute<{ id: string }[]>(`select id from merchant where name = 'Taken name'`);
    await expect(em.execute(`update merchant set fee_plan_id = ? where id = ?`, [fromGlobalId(hkd).id, merchantId])).rejects.toThrow(/merchant_fee_plan_fk/);
  });

  it('a refusal inside a caller’s transaction undoes only the refused write', async () => {
    const em = db.orm.em.fork();
    await em.transactional(async (tx) => {
      await createCity(tx, city('SAVEPT'));
      await expect(createCity(tx, city('SAVEPT'))).rejects.toMatchObject({ code: TenancyErrorCode.DUPLICATE_CODE });
      await createCity(tx, city('AFTER'));
    });
    const rows = await em.execute<{ code: string }[]>(`select code from city where code in ('SAVEPT', 'AFTER') order by code`);
    expect(rows.map((r) => r.code)).toEqual(['AFTER', 'SAVEPT']);
  });
});

describe('authorization', () => {
  it.each([
    ['a merchant', principal('MERCHANT', NOBODY, MANAGE)],
    ['an issuer', principal('ISSUER', NOBODY, MANAGE)],
    ['a cardholder app', principal('CARDHOLDER_APP', NOBODY, MANAGE)],
  ])('%s calling an onboarding mutation is FORBIDDEN', async (_name, who) => {
    const { data, errors } = await run(CREATE_CITY, { input: city('NOPE') }, who);
    expect(errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect(data).toBeNull();
  });

  it('an operator client without tenants:manage is FORBIDDEN', async () => {
    for (const [query, input] of [
      [CREATE_CITY, city('NOSCOPE')],
      [CREATE_FEE_PLAN, { name: 'No scope', basisPoints: 1, currency: 'CNY' }],
      [UPDATE_MERCHANT, { merchant: toGlobalId('Merchant', NOBODY), name: 'x' }],
    ] as const) {
      const { errors } = await run(query, { input }, principal('OPERATOR', null, ['payments:read']));
      expect(errors?.[0].extensions.code).toBe('FORBIDDEN');
      expect(errors?.[0].message).toMatch(/tenants:manage/);
    }
    expect((await run(`{ cities { edges { cursor } } }`, {}, principal('OPERATOR'))).errors).toBeUndefined();
  });

  it('nobody signed in reads the public city directory, and gets UNAUTHENTICATED for the rest', async () => {
    const anonymous = await run(`{ cities { edges { node { code } } } }`, {}, null);
    expect(anonymous.errors).toBeUndefined();
    expect(anonymous.data.cities.edges.length).toBeGreaterThan(0);
    expect((await run(`{ merchants { edges { cursor } } }`, {}, null)).errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('fee plans are the operator’s to list', async () => {
    expect((await run(`{ feePlans { edges { cursor } } }`, {}, principal('MERCHANT', NOBODY))).errors?.[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('ownership: a tenant sees only its own', () => {
  // Two cities, each with its card company, two merchants and two billers.
  const ids: Record<string, string> = {};
  const MERCHANTS = `query($city: ID) { merchants(first: 100, city: $city) { edges { node { id name } } } }`;
  const BILLERS = `query($city: ID, $kind: BillerKind) { billers(first: 100, city: $city, kind: $kind) { edges { node { id name status } } } }`;
  const names = (data: any, field: string) => data[field].edges.map((e: any) => e.node.name).sort();
  const tenant = (gid: string) => fromGlobalId(gid).id;

  beforeAll(async () => {
    for (const code of ['OWNA', 'OWNB']) {
      const c = await ok(CREATE_CITY, city(code));
      ids[code] = c.id;
      ids[`${code}.issuer`] = c.cardCompany.id;
      ids[`${code}.plan`] = (await ok(CREATE_FEE_PLAN, { name: `${code} plan`, basisPoints: 30, currency: 'CNY' })).id;
      for (const n of [1, 2]) {
        ids[`${code}.m${n}`] = (await ok(CREATE_MERCHANT, { city: c.id, name: `${code} shop ${n}`, feePlan: ids[`${code}.plan`] })).id;
        ids[`${code}.b${n}`] = (await ok(CREATE_BILLER, { city: c.id, name: `${code} utility ${n}`, kind: n === 1 ? 'WATER' : 'GAS', feePlan: ids[`${code}.plan`] })).id;
      }
    }
    await ok(UPDATE_BILLER, { biller: ids['OWNB.b2'], status: 'SUSPENDED' });
  });

  it('a merchant sees its own merchant, and null for another merchant’s id exactly as for an id that does not exist', async () => {
    const me = principal('MERCHANT', tenant(ids['OWNA.m1']!));
    const ONE = `query($id: ID!) { merchant(id: $id) { id name feePlan { id basisPoints } city { code } } }`;
    expect((await run(ONE, { id: ids['OWNA.m1'] }, me)).data.merchant).toEqual({ id: ids['OWNA.m1'], name: 'OWNA shop 1', feePlan: { id: ids['OWNA.plan'], basisPoints: 30 }, city: { code: 'OWNA' } });
    const other = await run(ONE, { id: ids['OWNA.m2'] }, me);
    const missing = await run(ONE, { id: toGlobalId('Merchant', NOBODY) }, me);
    expect(other).toEqual(missing);
    expect(other.data).toEqual({ merchant: null });
    expect(other.errors).toBeUndefined();
    // node() too, and not a plan it is not on.
    expect((await run(`query($id: ID!) { node(id: $id) { id } }`, { id: ids['OWNB.m1'] }, me)).data.node).toBeNull();
    expect((await run(`query($id: ID!) { node(id: $id) { id } }`, { id: ids['OWNA.m1'] }, me)).data.node).toEqual({ id: ids['OWNA.m1'] });
    expect((await run(`query($id: ID!) { node(id: $id) { id } }`, { id: ids['OWNB.plan'] }, me)).data.node).toBeNull();
  });

  it('a merchant lists only itself, and no billers', async () => {
    const me = principal('MERCHANT', tenant(ids['OWNA.m2']!));
    expect(names((await run(MERCHANTS, {}, me)).data, 'merchants')).toEqual(['OWNA shop 2']);
    expect(names((await run(MERCHANTS, { city: ids.OWNB }, me)).data, 'merchants')).toEqual([]);
    expect(names((await run(BILLERS, {}, me)).data, 'billers')).toEqual([]);
  });

  it('a biller sees itself only', async () => {
    const me = principal('BILLER', tenant(ids['OWNB.b1']!));
    expect(names((await run(BILLERS, {}, me)).data, 'billers')).toEqual(['OWNB utility 1']);
    expect((await run(`query($id: ID!) { biller(id: $id) { name feePlan { id } } }`, { id: ids['OWNB.b1'] }, me)).data.biller).toEqual({ name: 'OWNB utility 1', feePlan: { id: ids['OWNB.plan'] } });
    expect((await run(`query($id: ID!) { biller(id: $id) { name } }`, { id: ids['OWNB.b2'] }, me)).data.biller).toBeNull();
    expect(names((await run(MERCHANTS, {}, me)).data, 'merchants')).toEqual([]);
  });

  it('an issuer sees its card company, and the merchants and billers of its city only', async () => {
    const me = principal('ISSUER', tenant(ids['OWNA.issuer']!));
    expect(names((await run(MERCHANTS, {}, me)).data, 'merchants')).toEqual(['OWNA shop 1', 'OWNA shop 2']);
    expect(names((await run(BILLERS, {}, me)).data, 'billers')).toEqual(['OWNA utility 1', 'OWNA utility 2']);
    expect(names((await run(BILLERS, { kind: 'GAS' }, me)).data, 'billers')).toEqual(['OWNA utility 2']);
    expect(names((await run(MERCHANTS, { city: ids.OWNB }, me)).data, 'merchants')).toEqual([]);
    expect((await run(`query($id: ID!) { merchant(id: $id) { id } }`, { id: ids['OWNB.m1'] }, me)).data.merchant).toBeNull();
    expect((await run(`query($id: ID!) { merchant(id: $id) { name feePlan { id } } }`, { id: ids['OWNA.m1'] }, me)).data.merchant).toEqual({ name: 'OWNA shop 1', feePlan: null });
    const CC = `query($id: ID!) { cardCompany(id: $id) { name city { code } } }`;
    expect((await run(CC, { id: ids['OWNA.issuer'] }, me)).data.cardCompany).toEqual({ name: 'OWNA Card Co', city: { code: 'OWNA' } });
    expect((await run(CC, { id: ids['OWNB.issuer'] }, me)).data.cardCompany).toBeNull();
    const CITY = `query($id: ID!) { city(id: $id) { code cardCompany { name } } }`;
    expect((await run(CITY, { id: ids.OWNA }, me)).data.city).toEqual({ code: 'OWNA', cardCompany: { name: 'OWNA Card Co' } });
    expect((await run(CITY, { id: ids.OWNB }, me)).data.city).toEqual({ code: 'OWNB', cardCompany: null });
  });

  it('a cardholder app sees the cities and the active billers, but no merchants and no fee plans', async () => {
    const app = principal('CARDHOLDER_APP', tenant(ids['OWNA.issuer']!));
    const billers = (await run(BILLERS, { city: ids.OWNB }, app)).data.billers.edges.map((e: any) => e.node);
    expect(billers).toEqual([{ id: ids['OWNB.b1'], name: 'OWNB utility 1', status: 'ACTIVE' }]);
    expect((await run(`query($id: ID!) { biller(id: $id) { name kind city { code } feePlan { id } } }`, { id: ids['OWNA.b1'] }, app)).data.biller).toEqual({
      name: 'OWNA utility 1',
      kind: 'WATER',
      city: { code: 'OWNA' },
      feePlan: null,
    });
    expect(names((await run(MERCHANTS, {}, app)).data, 'merchants')).toEqual([]);
    expect((await run(`query($id: ID!) { merchant(id: $id) { id } }`, { id: ids['OWNA.m1'] }, app)).data.merchant).toBeNull();
    const codes = (await run(`{ cities(first: 100) { edges { node { code } } } }`, {}, app)).data.cities.edges.map((e: any) => e.node.code);
    expect(codes).toEqual(expect.arrayContaining(['OWNA', 'OWNB']));
  });

  it('a tenant id that is not one of ours owns nothing', async () => {
    expect(names((await run(MERCHANTS, {}, principal('MERCHANT', 'm1'))).data, 'merchants')).toEqual([]);
    expect(names((await run(MERCHANTS, {}, principal('ISSUER', NOBODY))).data, 'merchants')).toEqual([]);
  });

  it('the service filters in the query: the same rules hold for direct callers', async () => {
    const em = db.orm.em.fork();
    const me = principal('MERCHANT', tenant(ids['OWNA.m1']!));
    expect(await findMerchantFor(em, me, tenant(ids['OWNA.m2']!))).toBeNull();
    expect((await listMerchantsFor(em, me, { limit: 100 })).map((m) => m.name)).toEqual(['OWNA shop 1']);
    // A limit of one still finds its own row: nothing is filtered after the page is cut.
    expect((await listMerchantsFor(em, principal('ISSUER', tenant(ids['OWNB.issuer']!)), { limit: 1 })).map((m) => m.name)).toEqual(['OWNB shop 1']);
  });
});

describe('lists page with opaque cursors', () => {
  it('pages through merchants of a city in name order, each once', async () => {
    const c = await ok(CREATE_CITY, city('PAGE'));
    for (const n of [5, 3, 1, 4, 2]) await createMerchant(db.orm.em.fork(), { cityId: fromGlobalId(c.id).id, name: `Page shop ${n}` });
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const { data }: any = await run(`query($city: ID, $after: String) { merchants(first: 2, city: $city, after: $after) { edges { node { name } } pageInfo { hasNextPage endCursor } } }`, { city: c.id, after });
      seen.push(...data.merchants.edges.map((e: any) => e.node.name));
      after = data.merchants.pageInfo.hasNextPage ? data.merchants.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(['Page shop 1', 'Page shop 2', 'Page shop 3', 'Page shop 4', 'Page shop 5']);
  });

  it('refuses a forged cursor with BAD_USER_INPUT', async () => {
    const forged = Buffer.from(JSON.stringify(['x', 'not-a-uuid'])).toString('base64url');
    expect((await run(`query($after: String) { merchants(after: $after) { edges { cursor } } }`, { after: forged })).errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('feeFor()', () => {
  const plan = (basisPoints: number, fixedFee = 0n, minimumFee = 0n) => ({ basisPoints, fixedFee, minimumFee });
  it.each([
    ['0.60 % of 100.00', plan(60), 10_000n, 60n],
    ['rounds half up: 0.60 % of 0.75 is 0.45 fen → 0', plan(60), 75n, 0n],
    ['rounds half up: 0.60 % of 2.50 is 1.5 fen → 2', plan(60), 250n, 2n],
    ['rounds half up: 0.60 % of 2.49 is 1.494 fen → 1', plan(60), 249n, 1n],
    ['rounds half up: 0.20 % of 3.75 is 0.75 fen → 1', plan(20), 375n, 1n],
    ['the minimum applies to small amounts', plan(20, 0n, 10n), 1_000n, 10n],
    ['the minimum stops mattering above it', plan(20, 0n, 10n), 100_000n, 200n],
    ['the fixed part adds to the percentage', plan(55, 2n, 10n), 10_000n, 57n],
    ['the minimum is compared with fixed + percentage', plan(10, 5n, 6n), 100n, 6n],
    ['a zero amount pays the minimum', plan(60, 0n, 1n), 0n, 1n],
    ['a free plan charges nothing', plan(0), 123_456n, 0n],
    ['10000 bp is the whole amount', plan(10_000), 4_321n, 4_321n],
    ['beyond JavaScript numbers, still exact', plan(1), 9_007_199_254_740_993n * 10_000n, 9_007_199_254_740_993n],
  ] as const)('%s', (_name, terms, amount, fee) => {
    expect(feeFor(terms, amount)).toBe(fee);
  });

  it('refuses a negative amount', () => {
    expect(() => feeFor(plan(60), -1n)).toThrow(RangeError);
  });
});

describe('the demo seed', () => {
  it('creates two cities, their card companies, two fee plans, a merchant and two billers, with their global ids', async () => {
    const fresh = await freshDatabase();
    try {
      const demo = (await seedDemoData(fresh.orm.em.fork(), pino({ level: 'silent' }), { config: testConfig(), kek: Buffer.alloc(32) }, [tenancyDemo])) as any;
      expect(Object.keys(demo.tenants)).toEqual(['cities', 'cardCompanies', 'merchant', 'billers', 'feePlans']);
      const em = fresh.orm.em.fork();
      const [gz] = await em.execute<any[]>(`select c.name, c.time_zone, c.currency, cc.name as company from city c join card_company cc on cc.city_id = c.id where c.id = ?`, [
        fromGlobalId(demo.tenants.cities.GZ, 'City').id,
      ]);
      expect(gz).toEqual({ name: '广州 Guangzhou', time_zone: 'Asia/Shanghai', currency: 'CNY', company: '广州羊城通 Guangzhou Yangchengtong' });
      const [gas] = await em.execute<any[]>(`select b.name, b.kind, c.code from biller b join city c on c.id = b.city_id where b.id = ?`, [fromGlobalId(demo.tenants.billers.gas, 'Biller').id]);
      expect(gas).toEqual({ name: 'Shenzhen Gas', kind: 'GAS', code: 'SZ' });
      expect(fromGlobalId(demo.tenants.merchant).type).toBe('Merchant');
      expect(fromGlobalId(demo.tenants.cardCompanies.SZ).type).toBe('CardCompany');
      // Runs once.
      expect(await seedDemoData(fresh.orm.em.fork(), pino({ level: 'silent' }), { config: testConfig(), kek: Buffer.alloc(32) }, [tenancyDemo])).toEqual(demo);
    } finally {
      await fresh.close();
    }
  });
});
