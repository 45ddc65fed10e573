import { randomUUID } from 'node:crypto';
import { type FilterQuery, ForeignKeyConstraintViolationException, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { Biller, BillerKind } from './biller.entity.js';
import { CardCompany, City } from './city.entity.js';
import { FeePlan } from './fee-plan.entity.js';
import { Merchant, TenantStatus } from './merchant.entity.js';
import { TenancyError, TenancyErrorCode as Code } from './tenancy.errors.js';
import { billersVisibleTo, cardCompaniesVisibleTo, citiesVisibleTo, feePlansVisibleTo, merchantsVisibleTo } from './visibility.js';

export { feeFor, type FeeTerms } from './fee.js';

export interface CreateCityInput {
  code: string;
  name: string;
  timeZone: string;
  currency: string;
  /** The city's card company (通卡公司), created with it. */
  cardCompanyName: string;
}

/** Absent fields stay as they are. A city's code and currency never change. */
export interface UpdateCityInput {
  name?: string;
  timeZone?: string;
  cardCompanyName?: string;
  /** The card company's limit per M1 load (docs/cards.md, "What an M1 card proves"). */
  m1LoadLimit?: bigint;
}

/** What one M1 value block holds: no single load can be larger. */
const M1_VALUE_MAX = 0x7fff_ffffn;

function checkedM1LoadLimit(value: bigint): bigint {
  if (typeof value !== 'bigint' || value < 1n || value > M1_VALUE_MAX) throw new TenancyError(Code.INVALID_INPUT, `a limit per M1 load is 1 to ${M1_VALUE_MAX} minor units (what an M1 value block holds)`, 'm1LoadLimit');
  return value;
}

/** The card company's limit per M1 load, in minor units of its city's currency. */
export async function m1LoadLimitOf(em: EntityManager, cardCompanyId: string): Promise<bigint> {
  const [row] = await em.execute<{ m1_load_max: string }[]>(`select m1_load_max::text from card_company where id = ?`, [cardCompanyId]);
  return BigInt(row!.m1_load_max);
}

export interface CreateFeePlanInput {
  name: string;
  basisPoints: number;
  /** Minor units; 0 when absent. */
  fixedFee?: bigint;
  /** Minor units; 0 when absent. */
  minimumFee?: bigint;
  currency: string;
}

/** Absent fields stay as they are. A plan's currency never changes. */
export interface UpdateFeePlanInput {
  name?: string;
  basisPoints?: number;
  fixedFee?: bigint;
  minimumFee?: bigint;
}

export interface CreateMerchantInput {
  cityId: string;
  name: string;
  feePlanId?: string | null;
}

/** Absent (undefined) fields stay as they are; `feePlanId: null` takes the merchant off its plan. */
export interface UpdateMerchantInput {
  name?: string;
  feePlanId?: string | null;
  status?: TenantStatus;
}

export interface CreateBillerInput {
  cityId: string;
  name: string;
  kind: BillerKind;
  feePlanId?: string | null;
}

/** Absent (undefined) fields stay as they are; `feePlanId: null` takes the biller off its plan. */
export interface UpdateBillerInput {
  name?: string;
  feePlanId?: string | null;
  status?: TenantStatus;
}

/** A keyset position: the sort value of the last row seen and its id. */
export interface KeysetPosition {
  sortKey: string;
  id: string;
}

export interface ListOptions {
  after?: KeysetPosition | null;
  limit: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_NAME_LENGTH = 200;
// Far beyond any real fee, and far inside BIGINT and JSON's safe integers.
const MAX_FEE = 10n ** 12n;
const TIME_ZONES = new Set(Intl.supportedValuesOf('timeZone'));
const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

/** Unique constraints a write can hit, and the refusal each means (a concurrent duplicate lands here). */
const DUPLICATES: Record<string, { code: Code; field: string; message: string }> = {
  city_code_key: { code: Code.DUPLICATE_CODE, field: 'code', message: 'a city with this code exists' },
  fee_plan_name_key: { code: Code.DUPLICATE_NAME, field: 'name', message: 'a fee plan with this name exists' },
  merchant_city_name_key: { code: Code.DUPLICATE_NAME, field: 'name', message: 'the city has a merchant with this name' },
  biller_city_name_key: { code: Code.DUPLICATE_NAME, field: 'name', message: 'the city has a biller with this name' },
};

// ---- validation ---------------------------------------------------------------------------------

function checkedName(value: string, field = 'name'): string {
  const name = typeof value === 'string' ? value.trim() : '';
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) throw new TenancyError(Code.INVALID_INPUT, `a name is 1 to ${MAX_NAME_LENGTH} characters`, field);
  return name;
}

function checkedCityCode(value: string): string {
  if (typeof value !== 'string' || !/^[A-Z]{2,8}$/.test(value)) throw new TenancyError(Code.INVALID_INPUT, 'a city code is 2 to 8 upper-case letters, e.g. GZ', 'code');
  return value;
}

function checkedTimeZone(value: string): string {
  if (!TIME_ZONES.has(value)) throw new TenancyError(Code.INVALID_TIME_ZONE, `"${value}" is not an IANA time zone this server knows, e.g. Asia/Shanghai`, 'timeZone');
  return value;
}

function checkedCurrency(value: string): string {
  if (typeof value !== 'string' || !/^[A-Z]{3}$/.test(value) || !CURRENCIES.has(value)) throw new TenancyError(Code.INVALID_INPUT, `"${value}" is not an ISO 4217 currency code`, 'currency');
  return value;
}

function checkedBasisPoints(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 10_000) throw new TenancyError(Code.INVALID_INPUT, 'basis points are a whole number from 0 to 10000 (1 bp = 0.01 %)', 'basisPoints');
  return value;
}

function checkedFee(value: bigint, field: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_FEE) throw new TenancyError(Code.INVALID_INPUT, `a fee is 0 to ${MAX_FEE} minor units`, field);
  return value;
}

function checkedStatus(value: TenantStatus): TenantStatus {
  if (!Object.values(TenantStatus).includes(value)) throw new TenancyError(Code.INVALID_INPUT, `a status is one of ${Object.values(TenantStatus).join(', ')}`, 'status');
  return value;
}

function checkedKind(value: BillerKind): BillerKind {
  if (!Object.values(BillerKind).includes(value)) throw new TenancyError(Code.INVALID_INPUT, `a biller kind is one of ${Object.values(BillerKind).join(', ')}`, 'kind');
  return value;
}

/** Validates only the fields given; `undefined` stays undefined (unchanged). */
function ifGiven<T, R>(value: T | undefined, check: (v: T) => R): R | undefined {
  return value === undefined ? undefined : check(value);
}

// ---- writing ------------------------------------------------------------------------------------

/**
 * Runs a write in its own transaction, or in a savepoint of the caller's, so that a refusal undoes
 * only this write. A unique or foreign-key violation becomes the refusal it stands for.
 */
async function write<T>(em: EntityManager, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  try {
    return await em.transactional(work, { propagation: 'nested' });
  } catch (err) {
    const constraint = (err as { constraint?: string }).constraint ?? '';
    const duplicate = err instanceof UniqueConstraintViolationException ? DUPLICATES[constraint] : undefined;
    if (duplicate) throw new TenancyError(duplicate.code, duplicate.message, duplicate.field);
    // The backstop behind the check in feePlanIn(): the (fee plan, currency) foreign key.
    if (err instanceof ForeignKeyConstraintViolationException && constraint.endsWith('_fee_plan_fk')) {
      throw new TenancyError(Code.CURRENCY_MISMATCH, 'the fee plan is in another currency than the city', 'feePlan');
    }
    throw err;
  }
}

/** Sets the given columns of one row; false when there is no such row. Columns are ours, never input. */
async function updateRow(tx: EntityManager, table: string, id: string, changes: Record<string, string | number | bigint | null | undefined>): Promise<boolean> {
  const set = Object.entries(changes).filter(([, value]) => value !== undefined);
  const values = set.map(([, value]) => (typeof value === 'bigint' ? value.toString() : value));
  const rows = set.length
    ? await tx.execute(`update ${table} set ${set.map(([column]) => `${column} = ?`).join(', ')} where id = ? returning id`, [...values, id])
    : await tx.execute(`select id from ${table} where id = ?`, [id]);
  return rows.length > 0;
}

function unknown(code: Code, what: string, id: string, field: string): TenancyError {
  return new TenancyError(code, `no ${what} ${id}`, field);
}

async function cityOrRefuse(tx: EntityManager, cityId: string): Promise<City> {
  const city = UUID.test(cityId) ? await tx.findOne(City, cityId) : null;
  if (!city) throw unknown(Code.UNKNOWN_CITY, 'city', cityId, 'city');
  return city;
}

/** The plan's id when it exists and is in `currency` (the city's): a plan is priced in one currency. */
async function feePlanIn(tx: EntityManager, feePlanId: string, currency: string): Promise<string> {
  const plan = UUID.test(feePlanId) ? await tx.findOne(FeePlan, feePlanId) : null;
  if (!plan) throw unknown(Code.UNKNOWN_FEE_PLAN, 'fee plan', feePlanId, 'feePlan');
  if (plan.currency !== currency) {
    throw new TenancyError(Code.CURRENCY_MISMATCH, `fee plan "${plan.name}" is in ${plan.currency}; the city uses ${currency}`, 'feePlan');
  }
  return plan.id;
}

/** Creates a city and its card company, in one transaction. */
export async function createCity(em: EntityManager, input: CreateCityInput): Promise<{ city: City; cardCompany: CardCompany }> {
  const code = checkedCityCode(input.code);
  const name = checkedName(input.name);
  const timeZone = checkedTimeZone(input.timeZone);
  const currency = checkedCurrency(input.currency);
  const cardCompanyName = checkedName(input.cardCompanyName, 'cardCompanyName');
  return write(em, async (tx) => {
    const cityId = randomUUID();
    const cardCompanyId = randomUUID();
    await tx.execute(`insert into city (id, code, name, time_zone, currency) values (?, ?, ?, ?, ?)`, [cityId, code, name, timeZone, currency]);
    await tx.execute(`insert into card_company (id, city_id, name) values (?, ?, ?)`, [cardCompanyId, cityId, cardCompanyName]);
    return {
      city: await tx.findOneOrFail(City, cityId, { refresh: true }),
      cardCompany: await tx.findOneOrFail(CardCompany, cardCompanyId, { refresh: true }),
    };
  });
}

/** Renames a city or its card company, or moves its time zone. */
export async function updateCity(em: EntityManager, cityId: string, input: UpdateCityInput): Promise<{ city: City; cardCompany: CardCompany }> {
  const name = ifGiven(input.name, (v) => checkedName(v));
  const timeZone = ifGiven(input.timeZone, checkedTimeZone);
  const cardCompanyName = ifGiven(input.cardCompanyName, (v) => checkedName(v, 'cardCompanyName'));
  const m1LoadLimit = ifGiven(input.m1LoadLimit, checkedM1LoadLimit);
  if (!UUID.test(cityId)) throw unknown(Code.UNKNOWN_CITY, 'city', cityId, 'city');
  return write(em, async (tx) => {
    if (!(await updateRow(tx, 'city', cityId, { name, time_zone: timeZone }))) throw unknown(Code.UNKNOWN_CITY, 'city', cityId, 'city');
    if (cardCompanyName !== undefined) await tx.execute(`update card_company set name = ? where city_id = ?`, [cardCompanyName, cityId]);
    if (m1LoadLimit !== undefined) await tx.execute(`update card_company set m1_load_max = ? where city_id = ?`, [m1LoadLimit.toString(), cityId]);
    return {
      city: await tx.findOneOrFail(City, cityId, { refresh: true }),
      cardCompany: await tx.findOneOrFail(CardCompany, { city: cityId }, { refresh: true }),
    };
  });
}

export async function createFeePlan(em: EntityManager, input: CreateFeePlanInput): Promise<FeePlan> {
  const name = checkedName(input.name);
  const basisPoints = checkedBasisPoints(input.basisPoints);
  const fixedFee = checkedFee(input.fixedFee ?? 0n, 'fixedFee');
  const minimumFee = checkedFee(input.minimumFee ?? 0n, 'minimumFee');
  const currency = checkedCurrency(input.currency);
  return write(em, async (tx) => {
    const id = randomUUID();
    await tx.execute(`insert into fee_plan (id, name, basis_points, fixed_fee, minimum_fee, currency) values (?, ?, ?, ?, ?, ?)`, [
      id,
      name,
      basisPoints,
      fixedFee.toString(),
      minimumFee.toString(),
      currency,
    ]);
    return tx.findOneOrFail(FeePlan, id, { refresh: true });
  });
}

/** Changes a plan's terms; they apply to every merchant and biller on the plan from then on. */
export async function updateFeePlan(em: EntityManager, feePlanId: string, input: UpdateFeePlanInput): Promise<FeePlan> {
  const changes = {
    name: ifGiven(input.name, (v) => checkedName(v)),
    basis_points: ifGiven(input.basisPoints, checkedBasisPoints),
    fixed_fee: ifGiven(input.fixedFee, (v) => checkedFee(v, 'fixedFee')),
    minimum_fee: ifGiven(input.minimumFee, (v) => checkedFee(v, 'minimumFee')),
  };
  if (!UUID.test(feePlanId)) throw unknown(Code.UNKNOWN_FEE_PLAN, 'fee plan', feePlanId, 'feePlan');
  return write(em, async (tx) => {
    if (!(await updateRow(tx, 'fee_plan', feePlanId, changes))) throw unknown(Code.UNKNOWN_FEE_PLAN, 'fee plan', feePlanId, 'feePlan');
    return tx.findOneOrFail(FeePlan, feePlanId, { refresh: true });
  });
}

/** Onboards a merchant in a city, ACTIVE; its fee plan, when given, must be in the city's currency. */
export async function createMerchant(em: EntityManager, input: CreateMerchantInput): Promise<Merchant> {
  const name = checkedName(input.name);
  return write(em, async (tx) => {
    const city = await cityOrRefuse(tx, input.cityId);
    const feePlanId = input.feePlanId == null ? null : await feePlanIn(tx, input.feePlanId, city.currency);
    const id = randomUUID();
    await tx.execute(`insert into merchant (id, city_id, currency, name, fee_plan_id, status) values (?, ?, ?, ?, ?, ?)`, [
      id,
      city.id,
      city.currency,
      name,
      feePlanId,
      TenantStatus.ACTIVE,
    ]);
    return tx.findOneOrFail(Merchant, id, { refresh: true });
  });
}

export async function updateMerchant(em: EntityManager, merchantId: string, input: UpdateMerchantInput): Promise<Merchant> {
  const name = ifGiven(input.name, (v) => checkedName(v));
  const status = ifGiven(input.status, checkedStatus);
  if (!UUID.test(merchantId)) throw unknown(Code.UNKNOWN_MERCHANT, 'merchant', merchantId, 'merchant');
  return write(em, async (tx) => {
    const merchant = await tx.findOne(Merchant, merchantId, { refresh: true });
    if (!merchant) throw unknown(Code.UNKNOWN_MERCHANT, 'merchant', merchantId, 'merchant');
    const feePlanId = input.feePlanId == null ? input.feePlanId : await feePlanIn(tx, input.feePlanId, merchant.currency);
    await updateRow(tx, 'merchant', merchantId, { name, fee_plan_id: feePlanId, status });
    return tx.findOneOrFail(Merchant, merchantId, { refresh: true });
  });
}

/** Onboards a biller in a city, ACTIVE; its fee plan, when given, must be in the city's currency. */
export async function createBiller(em: EntityManager, input: CreateBillerInput): Promise<Biller> {
  const name = checkedName(input.name);
  const kind = checkedKind(input.kind);
  return write(em, async (tx) => {
    const city = await cityOrRefuse(tx, input.cityId);
    const feePlanId = input.feePlanId == null ? null : await feePlanIn(tx, input.feePlanId, city.currency);
    const id = randomUUID();
    await tx.execute(`insert into biller (id, city_id, currency, name, kind, fee_plan_id, status) values (?, ?, ?, ?, ?, ?, ?)`, [
      id,
      city.id,
      city.currency,
      name,
      kind,
      feePlanId,
      TenantStatus.ACTIVE,
    ]);
    return tx.findOneOrFail(Biller, id, { refresh: true });
  });
}

export async function updateBiller(em: EntityManager, billerId: string, input: UpdateBillerInput): Promise<Biller> {
  const name = ifGiven(input.name, (v) => checkedName(v));
  const status = ifGiven(input.status, checkedStatus);
  if (!UUID.test(billerId)) throw unknown(Code.UNKNOWN_BILLER, 'biller', billerId, 'biller');
  return write(em, async (tx) => {
    const biller = await tx.findOne(Biller, billerId, { refresh: true });
    if (!biller) throw unknown(Code.UNKNOWN_BILLER, 'biller', billerId, 'biller');
    const feePlanId = input.feePlanId == null ? input.feePlanId : await feePlanIn(tx, input.feePlanId, biller.currency);
    await updateRow(tx, 'biller', billerId, { name, fee_plan_id: feePlanId, status });
    return tx.findOneOrFail(Biller, billerId, { refresh: true });
  });
}

// ---- reading, trusted (for other contexts' services, which have checked the caller themselves) ----

export async function findCity(em: EntityManager, id: string): Promise<City | null> {
  return UUID.test(id) ? em.findOne(City, id) : null;
}

export async function findCityByCode(em: EntityManager, code: string): Promise<City | null> {
  return em.findOne(City, { code });
}

export async function findCardCompany(em: EntityManager, id: string): Promise<CardCompany | null> {
  return UUID.test(id) ? em.findOne(CardCompany, id) : null;
}

/** The city's issuer; every city has exactly one. */
export async function findCardCompanyOfCity(em: EntityManager, cityId: string): Promise<CardCompany | null> {
  return UUID.test(cityId) ? em.findOne(CardCompany, { city: cityId }) : null;
}

export async function findFeePlan(em: EntityManager, id: string): Promise<FeePlan | null> {
  return UUID.test(id) ? em.findOne(FeePlan, id) : null;
}

export async function findMerchant(em: EntityManager, id: string): Promise<Merchant | null> {
  return UUID.test(id) ? em.findOne(Merchant, id) : null;
}

export async function findBiller(em: EntityManager, id: string): Promise<Biller | null> {
  return UUID.test(id) ? em.findOne(Biller, id) : null;
}

// ---- reading on behalf of a principal: only what it may see (visibility.ts), in the query ----

/** One row by id within the principal's scope; another tenant's id finds nothing, like an unknown id. */
async function findOneFor<T extends object>(em: EntityManager, entity: new () => T, scope: FilterQuery<T> | null, id: string): Promise<T | null> {
  if (!scope || !UUID.test(id)) return null;
  return em.findOne(entity, { $and: [scope, { id } as FilterQuery<T>] } as FilterQuery<T>);
}

export function findCityFor(em: EntityManager, principal: Principal | null, id: string): Promise<City | null> {
  return findOneFor(em, City, citiesVisibleTo(principal), id);
}

export function findCardCompanyFor(em: EntityManager, principal: Principal | null, id: string): Promise<CardCompany | null> {
  return findOneFor(em, CardCompany, cardCompaniesVisibleTo(principal), id);
}

/** The card company of a city, if the principal may see it. */
export async function findCardCompanyOfCityFor(em: EntityManager, principal: Principal | null, cityId: string): Promise<CardCompany | null> {
  const scope = cardCompaniesVisibleTo(principal);
  if (!scope || !UUID.test(cityId)) return null;
  return em.findOne(CardCompany, { $and: [scope, { city: cityId }] });
}

export function findFeePlanFor(em: EntityManager, principal: Principal | null, id: string): Promise<FeePlan | null> {
  return findOneFor(em, FeePlan, feePlansVisibleTo(principal), id);
}

export function findMerchantFor(em: EntityManager, principal: Principal | null, id: string): Promise<Merchant | null> {
  return findOneFor(em, Merchant, merchantsVisibleTo(principal), id);
}

export function findBillerFor(em: EntityManager, principal: Principal | null, id: string): Promise<Biller | null> {
  return findOneFor(em, Biller, billersVisibleTo(principal), id);
}

/** Rows after `after` in (name, id) order: the keyset of the name-ordered lists. */
function afterName(after: KeysetPosition | null | undefined) {
  return after ? { $or: [{ name: { $gt: after.sortKey } }, { name: after.sortKey, id: { $gt: after.id } }] } : {};
}

/** A page of cities in code order. */
export async function listCitiesFor(em: EntityManager, principal: Principal | null, opts: ListOptions): Promise<City[]> {
  const scope = citiesVisibleTo(principal);
  if (!scope) return [];
  const after = opts.after ? { code: { $gt: opts.after.sortKey } } : {};
  return em.find(City, { $and: [scope, after] }, { orderBy: { code: 'asc' }, limit: opts.limit });
}

/** A page of fee plans in name order (names are unique). */
export async function listFeePlansFor(em: EntityManager, principal: Principal | null, opts: ListOptions): Promise<FeePlan[]> {
  const scope = feePlansVisibleTo(principal);
  if (!scope) return [];
  const after = opts.after ? { name: { $gt: opts.after.sortKey } } : {};
  return em.find(FeePlan, { $and: [scope, after] }, { orderBy: { name: 'asc' }, limit: opts.limit });
}

/** A page of merchants in (name, id) order, of one city when `cityId` is given. */
export async function listMerchantsFor(em: EntityManager, principal: Principal | null, opts: ListOptions & { cityId?: string | null }): Promise<Merchant[]> {
  const scope = merchantsVisibleTo(principal);
  if (!scope || (opts.cityId != null && !UUID.test(opts.cityId))) return [];
  const city = opts.cityId != null ? { city: opts.cityId } : {};
  return em.find(Merchant, { $and: [scope, city, afterName(opts.after)] }, { orderBy: { name: 'asc', id: 'asc' }, limit: opts.limit });
}

/** A page of billers in (name, id) order, of one city and one kind when given. */
export async function listBillersFor(em: EntityManager, principal: Principal | null, opts: ListOptions & { cityId?: string | null; kind?: BillerKind | null }): Promise<Biller[]> {
  const scope = billersVisibleTo(principal);
  if (!scope || (opts.cityId != null && !UUID.test(opts.cityId))) return [];
  const city = opts.cityId != null ? { city: opts.cityId } : {};
  const kind = opts.kind != null ? { kind: opts.kind } : {};
  return em.find(Biller, { $and: [scope, city, kind, afterName(opts.after)] }, { orderBy: { name: 'asc', id: 'asc' }, limit: opts.limit });
}
