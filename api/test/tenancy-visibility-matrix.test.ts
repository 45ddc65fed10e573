/**
 * Who sees which tenancy rows (the table in api/src/tenancy/visibility.ts, DESIGN.md §5), for every
 * principal kind, through the service reads the resolvers use: the lists, and the look-ups by id
 * (another tenant's id finds nothing, like an unknown one). Two cities, so that "of its city" and
 * "its own" are told apart from "all". (Found by mutation testing, docs/testing.md.)
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { TenantStatus } from '../src/tenancy/merchant.entity.js';
import {
  createBiller,
  createCity,
  createFeePlan,
  createMerchant,
  findBillerFor,
  findCardCompanyFor,
  findCardCompanyOfCityFor,
  findCityFor,
  findFeePlanFor,
  findMerchantFor,
  listBillersFor,
  listCitiesFor,
  listFeePlansFor,
  listMerchantsFor,
  updateBiller,
} from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let em: EntityManager;

/** Names and ids of everything in the two cities. */
const ids: Record<string, string> = {};

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  for (const code of ['VA', 'VB']) {
    const { city, cardCompany } = await createCity(em, { code: `VIS${code}`, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `Cards ${code}` });
    ids[`city ${code}`] = city.id;
    ids[`cards ${code}`] = cardCompany.id;
    const plan = await createFeePlan(em, { name: `Plan ${code}`, basisPoints: 60, currency: 'CNY' });
    ids[`plan ${code}`] = plan.id;
    ids[`shop ${code}`] = (await createMerchant(em, { cityId: city.id, name: `Shop ${code}`, feePlanId: plan.id })).id;
    ids[`water ${code}`] = (await createBiller(em, { cityId: city.id, name: `Water ${code}`, kind: BillerKind.WATER, feePlanId: plan.id })).id;
    const gas = await createBiller(em, { cityId: city.id, name: `Gas ${code}`, kind: BillerKind.GAS });
    await updateBiller(em, gas.id, { status: TenantStatus.SUSPENDED });
    ids[`gas ${code}`] = gas.id;
  }
  // A plan nobody is on.
  ids['plan unused'] = (await createFeePlan(em, { name: 'Plan unused', basisPoints: 10, currency: 'CNY' })).id;
});
afterAll(() => db.close());

const as = (kind: PrincipalKind, tenant: string | null): Principal => ({ kind, clientId: `client-${kind}`, tenantId: tenant, holderId: null, scopes: [] });

/** The principals of the table, plus those that own nothing (built once the rows exist). */
const PRINCIPALS: Record<string, () => Principal | null> = {
  'the operator': () => as('OPERATOR', null),
  'the issuer of city A': () => as('ISSUER', ids['cards VA']!),
  'shop A': () => as('MERCHANT', ids['shop VA']!),
  'water A': () => as('BILLER', ids['water VA']!),
  'an app run by card company A': () => as('CARDHOLDER_APP', ids['cards VA']!),
  'a merchant whose tenant id is not a uuid': () => as('MERCHANT', `x${ids['shop VA']}`),
  'an issuer whose tenant id is not a uuid': () => as('ISSUER', `${ids['cards VA']}x`),
  'an issuer without a tenant': () => as('ISSUER', null),
  nobody: () => null,
};

/** Which of the named rows each principal sees (the table, row by row). */
const SEES: Record<string, { cities: string[]; cardCompanies: string[]; merchants: string[]; billers: string[]; plans: string[] }> = {
  'the operator': {
    cities: ['city VA', 'city VB'],
    cardCompanies: ['cards VA', 'cards VB'],
    merchants: ['shop VA', 'shop VB'],
    billers: ['gas VA', 'gas VB', 'water VA', 'water VB'],
    plans: ['plan VA', 'plan VB', 'plan unused'],
  },
  'the issuer of city A': { cities: ['city VA', 'city VB'], cardCompanies: ['cards VA'], merchants: ['shop VA'], billers: ['gas VA', 'water VA'], plans: [] },
  'shop A': { cities: ['city VA', 'city VB'], cardCompanies: [], merchants: ['shop VA'], billers: [], plans: ['plan VA'] },
  'water A': { cities: ['city VA', 'city VB'], cardCompanies: [], merchants: [], billers: ['water VA'], plans: ['plan VA'] },
  'an app run by card company A': { cities: ['city VA', 'city VB'], cardCompanies: ['cards VA'], merchants: [], billers: ['water VA', 'water VB'], plans: [] },
  'a merchant whose tenant id is not a uuid': { cities: ['city VA', 'city VB'], cardCompanies: [], merchants: [], billers: [], plans: [] },
  'an issuer whose tenant id is not a uuid': { cities: ['city VA', 'city VB'], cardCompanies: [], merchants: [], billers: [], plans: [] },
  'an issuer without a tenant': { cities: ['city VA', 'city VB'], cardCompanies: [], merchants: [], billers: [], plans: [] },
  // Cities are a public directory (issue 22: public fields answer without a token).
  nobody: { cities: ['city VA', 'city VB'], cardCompanies: [], merchants: [], billers: [], plans: [] },
};

const named = (names: string[]) => names.map((n) => ids[n]!).sort();
/** Only this file's rows: the template database holds none, but keep the comparison exact anyway. */
const ours = (rows: { id: string }[]) => rows.map((r) => r.id).filter((id) => Object.values(ids).includes(id)).sort();
const page = { limit: 100 };

describe.each(Object.keys(PRINCIPALS))('%s', (name) => {
  const sees = SEES[name]!;
  let principal: Principal | null;
  beforeAll(() => {
    principal = PRINCIPALS[name]!();
  });

  it('lists exactly the rows the table gives it', async () => {
    expect(ours(await listCitiesFor(em, principal, page))).toEqual(named(sees.cities));
    expect(ours(await listMerchantsFor(em, principal, page))).toEqual(named(sees.merchants));
    expect(ours(await listBillersFor(em, principal, page))).toEqual(named(sees.billers));
    expect(ours(await listFeePlansFor(em, principal, page))).toEqual(named(sees.plans));
  });

  it('finds by id exactly those rows, and nothing of the others', async () => {
    const found = async (find: (id: string) => Promise<{ id: string } | null>, names: string[]) => {
      const hits: string[] = [];
      for (const n of names) if (await find(ids[n]!)) hits.push(ids[n]!);
      return hits.sort();
    };
    const all = (prefix: string) => Object.keys(ids).filter((k) => k.startsWith(prefix));
    expect(await found((id) => findCityFor(em, principal, id), all('city '))).toEqual(named(sees.cities));
    expect(await found((id) => findCardCompanyFor(em, principal, id), all('cards '))).toEqual(named(sees.cardCompanies));
    expect(await found((id) => findMerchantFor(em, principal, id), all('shop '))).toEqual(named(sees.merchants));
    expect(await found((id) => findBillerFor(em, principal, id), [...all('water '), ...all('gas ')])).toEqual(named(sees.billers));
    expect(await found((id) => findFeePlanFor(em, principal, id), all('plan '))).toEqual(named(sees.plans));
    const companiesOfCities: string[] = [];
    for (const city of ['city VA', 'city VB']) {
      const company = await findCardCompanyOfCityFor(em, principal, ids[city]!);
      if (company) companiesOfCities.push(company.id);
    }
    expect(companiesOfCities.sort()).toEqual(named(sees.cardCompanies));
  });
});

describe('an issuer unknown to the database', () => {
  it('sees no merchant and no biller of any city', async () => {
    const stranger = as('ISSUER', randomUUID());
    expect(ours(await listMerchantsFor(em, stranger, page))).toEqual([]);
    expect(ours(await listBillersFor(em, stranger, page))).toEqual([]);
  });
});
