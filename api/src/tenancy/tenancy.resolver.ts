import { GraphQLError } from 'graphql';
import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, type PageRequest, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { MinorUnitsScalar } from '../graphql/scalars.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { type Biller, BillerKind } from './biller.entity.js';
import type { CardCompany, City } from './city.entity.js';
import type { FeePlan } from './fee-plan.entity.js';
import type { Merchant } from './merchant.entity.js';
import {
  createBiller,
  createCity,
  createFeePlan,
  createMerchant,
  feeFor,
  findBillerFor,
  findCardCompanyFor,
  findCardCompanyOfCityFor,
  findCityFor,
  findFeePlanFor,
  findMerchantFor,
  m1LoadLimitOf,
  listBillersFor,
  listCitiesFor,
  listFeePlansFor,
  listMerchantsFor,
  updateBiller,
  updateCity,
  updateFeePlan,
  updateMerchant,
} from './tenancy.service.js';
import {
  BillerConnection,
  BillerPayload,
  BillerType,
  CardCompanyType,
  CityConnection,
  CityPayload,
  CityType,
  CreateBillerInput,
  CreateCityInput,
  CreateFeePlanInput,
  CreateMerchantInput,
  FeePlanConnection,
  FeePlanPayload,
  FeePlanType,
  MerchantConnection,
  MerchantPayload,
  MerchantType,
  UpdateBillerInput,
  UpdateCityInput,
  UpdateFeePlanInput,
  UpdateMerchantInput,
} from './tenancy.types.js';

// Onboarding is the operator's (DESIGN.md §1); reads are scoped per principal in the service.
const OPERATOR = 'OPERATOR';
const MANAGE = 'tenants:manage';

export function cityView(city: City): CityType {
  return Object.assign(new CityType(), {
    id: toGlobalId('City', city.id),
    uuid: city.id,
    code: city.code,
    name: city.name,
    timeZone: city.timeZone,
    currency: city.currency,
    createdAt: city.createdAt,
  });
}

export function cardCompanyView(company: CardCompany): CardCompanyType {
  return Object.assign(new CardCompanyType(), {
    id: toGlobalId('CardCompany', company.id),
    uuid: company.id,
    cityUuid: company.city.id,
    name: company.name,
    createdAt: company.createdAt,
  });
}

export function feePlanView(plan: FeePlan): FeePlanType {
  return Object.assign(new FeePlanType(), {
    id: toGlobalId('FeePlan', plan.id),
    uuid: plan.id,
    name: plan.name,
    basisPoints: plan.basisPoints,
    fixedFee: Money.of(plan.fixedFee, plan.currency),
    minimumFee: Money.of(plan.minimumFee, plan.currency),
    currency: plan.currency,
    createdAt: plan.createdAt,
  });
}

export function merchantView(merchant: Merchant): MerchantType {
  return Object.assign(new MerchantType(), {
    id: toGlobalId('Merchant', merchant.id),
    uuid: merchant.id,
    cityUuid: merchant.city.id,
    feePlanUuid: merchant.feePlan?.id ?? null,
    name: merchant.name,
    status: merchant.status,
    currency: merchant.currency,
    createdAt: merchant.createdAt,
  });
}

export function billerView(biller: Biller): BillerType {
  return Object.assign(new BillerType(), {
    id: toGlobalId('Biller', biller.id),
    uuid: biller.id,
    cityUuid: biller.city.id,
    feePlanUuid: biller.feePlan?.id ?? null,
    name: biller.name,
    kind: biller.kind,
    status: biller.status,
    currency: biller.currency,
    createdAt: biller.createdAt,
  });
}

/** `undefined` when absent or null: the field stays as it is. */
const given = <T>(value: T | null | undefined): T | undefined => value ?? undefined;

/** A fee plan id from an update: absent stays, an explicit null takes the plan off. */
function feePlanChange(value: string | null | undefined): string | null | undefined {
  return value === undefined ? undefined : value === null ? null : fromGlobalId(value, 'FeePlan').id;
}

/** pageRequest(), plus a check that the cursor's id is one of ours before it reaches SQL. */
function page(args: ConnectionArgs): PageRequest {
  const request = pageRequest(args);
  if (request.after && !/^[0-9a-f-]{36}$/i.test(request.after.id)) throw new GraphQLError('`after` is not a cursor this connection gave out', { extensions: { code: 'BAD_USER_INPUT' } });
  return request;
}

nodeLoaders.set('City', async (ctx, id) => {
  const city = await findCityFor(ctx.em, ctx.principal, id);
  return city && cityView(city);
});
nodeLoaders.set('CardCompany', async (ctx, id) => {
  const company = await findCardCompanyFor(ctx.em, ctx.principal, id);
  return company && cardCompanyView(company);
});
nodeLoaders.set('FeePlan', async (ctx, id) => {
  const plan = await findFeePlanFor(ctx.em, ctx.principal, id);
  return plan && feePlanView(plan);
});
nodeLoaders.set('Merchant', async (ctx, id) => {
  const merchant = await findMerchantFor(ctx.em, ctx.principal, id);
  return merchant && merchantView(merchant);
});
nodeLoaders.set('Biller', async (ctx, id) => {
  const biller = await findBillerFor(ctx.em, ctx.principal, id);
  return biller && billerView(biller);
});

/** Every principal may see every city, so a city field of a visible object is never null. */
async function visibleCity(ctx: GraphQLContext, cityUuid: string): Promise<CityType> {
  const city = await findCityFor(ctx.em, ctx.principal, cityUuid);
  if (!city) throw new Error(`city ${cityUuid} of a visible object is not visible`);
  return cityView(city);
}

@Resolver(() => CityType)
export class CityResolver {
  @Query(() => CityConnection, { description: 'Cities in code order. Public: needs no token.' })
  async cities(@Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const request = page(args);
    const rows = await listCitiesFor(ctx.em, ctx.principal, { after: request.after, limit: request.fetch });
    return toConnection(rows, request, (c) => ({ sortKey: c.code, id: c.id }), cityView);
  }

  @Query(() => CityType, { nullable: true, description: 'One city by global id; null when there is none. Public: needs no token.' })
  async city(@Arg('id', () => ID, { description: 'Global id of the City.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<CityType | null> {
    const city = await findCityFor(ctx.em, ctx.principal, fromGlobalId(id, 'City').id);
    return city && cityView(city);
  }

  @FieldResolver(() => CardCompanyType, { nullable: true, description: 'The city’s card company; null unless you are the operator, that card company, or an app it runs.' })
  async cardCompany(@Root() city: CityType, @Ctx() ctx: GraphQLContext): Promise<CardCompanyType | null> {
    const company = await findCardCompanyOfCityFor(ctx.em, ctx.principal, city.uuid);
    return company && cardCompanyView(company);
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => CityPayload, { description: 'Onboards a city and its card company, in one transaction. Operator only (tenants:manage).' })
  async createCity(@Arg('input', () => CreateCityInput, { description: 'The city and its card company.' }) input: CreateCityInput, @Ctx() ctx: GraphQLContext): Promise<CityPayload> {
    return withUserErrors<CityPayload>(async () => ({ city: cityView((await createCity(ctx.em, input)).city), userErrors: [] }), { city: null });
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => CityPayload, { description: 'Renames a city or its card company, or changes its time zone. Operator only (tenants:manage).' })
  async updateCity(@Arg('input', () => UpdateCityInput, { description: 'The city and what changes.' }) input: UpdateCityInput, @Ctx() ctx: GraphQLContext): Promise<CityPayload> {
    const { id } = fromGlobalId(input.city, 'City');
    return withUserErrors<CityPayload>(async () => ({ city: cityView((await updateCity(ctx.em, id, { name: given(input.name), timeZone: given(input.timeZone), cardCompanyName: given(input.cardCompanyName), m1LoadLimit: given(input.m1LoadLimit) })).city), userErrors: [] }), { city: null });
  }
}

@Resolver(() => CardCompanyType)
export class CardCompanyResolver {
  @Authorized()
  @Query(() => CardCompanyType, { nullable: true, description: 'One card company by global id; null when there is none or it is not yours. Any authenticated client.' })
  async cardCompany(@Arg('id', () => ID, { description: 'Global id of the CardCompany.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<CardCompanyType | null> {
    const company = await findCardCompanyFor(ctx.em, ctx.principal, fromGlobalId(id, 'CardCompany').id);
    return company && cardCompanyView(company);
  }

  @FieldResolver(() => CityType, { description: 'The city whose cards it issues.' })
  city(@Root() company: CardCompanyType, @Ctx() ctx: GraphQLContext): Promise<CityType> {
    return visibleCity(ctx, company.cityUuid);
  }

  @FieldResolver(() => Money, { description: 'Its limit per M1 load: no top-up, refund or transfer larger than this is written onto one of its M1 cards in one write, since an M1 card proves a lost write only by its value (docs/cards.md, “What an M1 card proves”). Set by the operator (updateCity).' })
  async m1LoadLimit(@Root() company: CardCompanyType, @Ctx() ctx: GraphQLContext): Promise<Money> {
    const city = await visibleCity(ctx, company.cityUuid);
    return Money.of(await m1LoadLimitOf(ctx.em, company.uuid), city.currency);
  }
}

@Resolver(() => FeePlanType)
export class FeePlanResolver {
  @Authorized(OPERATOR)
  @Query(() => FeePlanConnection, { description: 'Fee plans in name order. Operator only.' })
  async feePlans(@Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const request = page(args);
    const rows = await listFeePlansFor(ctx.em, ctx.principal, { after: request.after, limit: request.fetch });
    return toConnection(rows, request, (p) => ({ sortKey: p.name, id: p.id }), feePlanView);
  }

  @Authorized(OPERATOR)
  @Query(() => FeePlanType, { nullable: true, description: 'One fee plan by global id; null when there is none. Operator only.' })
  async feePlan(@Arg('id', () => ID, { description: 'Global id of the FeePlan.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<FeePlanType | null> {
    const plan = await findFeePlanFor(ctx.em, ctx.principal, fromGlobalId(id, 'FeePlan').id);
    return plan && feePlanView(plan);
  }

  @FieldResolver(() => Money, { description: 'The fee this plan charges on one transaction of `amount` minor units (a quote).' })
  fee(@Root() plan: FeePlanType, @Arg('amount', () => MinorUnitsScalar, { description: 'Transaction amount in minor units, zero or more.' }) amount: bigint): Money {
    if (amount < 0n) throw new GraphQLError('`amount` is zero or more', { extensions: { code: 'BAD_USER_INPUT' } });
    return Money.of(feeFor({ basisPoints: plan.basisPoints, fixedFee: plan.fixedFee.amount, minimumFee: plan.minimumFee.amount }, amount), plan.currency);
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => FeePlanPayload, { description: 'Creates a fee plan. Operator only (tenants:manage).' })
  async createFeePlan(@Arg('input', () => CreateFeePlanInput, { description: 'The fee plan to create.' }) input: CreateFeePlanInput, @Ctx() ctx: GraphQLContext): Promise<FeePlanPayload> {
    return withUserErrors<FeePlanPayload>(
      async () => ({
        feePlan: feePlanView(await createFeePlan(ctx.em, { name: input.name, basisPoints: input.basisPoints, fixedFee: given(input.fixedFee), minimumFee: given(input.minimumFee), currency: input.currency })),
        userErrors: [],
      }),
      { feePlan: null },
    );
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => FeePlanPayload, { description: 'Changes a fee plan’s terms for every merchant and biller on it, from now on. Operator only (tenants:manage).' })
  async updateFeePlan(@Arg('input', () => UpdateFeePlanInput, { description: 'The fee plan and what changes.' }) input: UpdateFeePlanInput, @Ctx() ctx: GraphQLContext): Promise<FeePlanPayload> {
    const { id } = fromGlobalId(input.feePlan, 'FeePlan');
    return withUserErrors<FeePlanPayload>(
      async () => ({ feePlan: feePlanView(await updateFeePlan(ctx.em, id, { name: given(input.name), basisPoints: given(input.basisPoints), fixedFee: given(input.fixedFee), minimumFee: given(input.minimumFee) })), userErrors: [] }),
      { feePlan: null },
    );
  }
}

@Resolver(() => MerchantType)
export class MerchantResolver {
  @Authorized()
  @Query(() => MerchantConnection, { description: 'Merchants in name order, of one city when `city` is given: all for the operator, your own for a merchant, your city’s for a card company.' })
  async merchants(@Args() args: ConnectionArgs, @Arg('city', () => ID, { nullable: true, description: 'Global id of a City.' }) city: string | null, @Ctx() ctx: GraphQLContext) {
    const request = page(args);
    const cityId = city ? fromGlobalId(city, 'City').id : null;
    const rows = await listMerchantsFor(ctx.em, ctx.principal, { cityId, after: request.after, limit: request.fetch });
    return toConnection(rows, request, (m) => ({ sortKey: m.name, id: m.id }), merchantView);
  }

  @Authorized()
  @Query(() => MerchantType, { nullable: true, description: 'One merchant by global id; null when there is none or it is not yours (the operator sees all, a card company its city’s). Any authenticated client.' })
  async merchant(@Arg('id', () => ID, { description: 'Global id of the Merchant.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<MerchantType | null> {
    const merchant = await findMerchantFor(ctx.em, ctx.principal, fromGlobalId(id, 'Merchant').id);
    return merchant && merchantView(merchant);
  }

  @FieldResolver(() => CityType, { description: 'The city it trades in.' })
  city(@Root() merchant: MerchantType, @Ctx() ctx: GraphQLContext): Promise<CityType> {
    return visibleCity(ctx, merchant.cityUuid);
  }

  @FieldResolver(() => FeePlanType, { nullable: true, description: 'The fee terms it is charged; null when it has none, or for anyone but the operator and the merchant itself.' })
  async feePlan(@Root() merchant: MerchantType, @Ctx() ctx: GraphQLContext): Promise<FeePlanType | null> {
    const plan = merchant.feePlanUuid ? await findFeePlanFor(ctx.em, ctx.principal, merchant.feePlanUuid) : null;
    return plan && feePlanView(plan);
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => MerchantPayload, { description: 'Onboards a merchant in a city, ACTIVE. Operator only (tenants:manage).' })
  async createMerchant(@Arg('input', () => CreateMerchantInput, { description: 'The merchant to onboard.' }) input: CreateMerchantInput, @Ctx() ctx: GraphQLContext): Promise<MerchantPayload> {
    const cityId = fromGlobalId(input.city, 'City').id;
    const feePlanId = input.feePlan ? fromGlobalId(input.feePlan, 'FeePlan').id : null;
    return withUserErrors<MerchantPayload>(async () => ({ merchant: merchantView(await createMerchant(ctx.em, { cityId, name: input.name, feePlanId })), userErrors: [] }), { merchant: null });
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => MerchantPayload, { description: 'Renames a merchant, moves it to another fee plan, or suspends or resumes it. Operator only (tenants:manage).' })
  async updateMerchant(@Arg('input', () => UpdateMerchantInput, { description: 'The merchant and what changes.' }) input: UpdateMerchantInput, @Ctx() ctx: GraphQLContext): Promise<MerchantPayload> {
    const { id } = fromGlobalId(input.merchant, 'Merchant');
    const feePlanId = feePlanChange(input.feePlan);
    return withUserErrors<MerchantPayload>(async () => ({ merchant: merchantView(await updateMerchant(ctx.em, id, { name: given(input.name), feePlanId, status: given(input.status) })), userErrors: [] }), { merchant: null });
  }
}

@Resolver(() => BillerType)
export class BillerResolver {
  @Authorized()
  @Query(() => BillerConnection, {
    description: 'Billers in name order, of one city and kind when given: all for the operator, your own for a biller, your city’s for a card company, the ACTIVE ones for a cardholder app.',
  })
  async billers(
    @Args() args: ConnectionArgs,
    @Arg('city', () => ID, { nullable: true, description: 'Global id of a City.' }) city: string | null,
    @Arg('kind', () => BillerKind, { nullable: true, description: 'Only billers of this kind.' }) kind: BillerKind | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const request = page(args);
    const cityId = city ? fromGlobalId(city, 'City').id : null;
    const rows = await listBillersFor(ctx.em, ctx.principal, { cityId, kind, after: request.after, limit: request.fetch });
    return toConnection(rows, request, (b) => ({ sortKey: b.name, id: b.id }), billerView);
  }

  @Authorized()
  @Query(() => BillerType, { nullable: true, description: 'One biller by global id; null when there is none or it is not visible to you. Any authenticated client (cardholder apps see only ACTIVE billers).' })
  async biller(@Arg('id', () => ID, { description: 'Global id of the Biller.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<BillerType | null> {
    const biller = await findBillerFor(ctx.em, ctx.principal, fromGlobalId(id, 'Biller').id);
    return biller && billerView(biller);
  }

  @FieldResolver(() => CityType, { description: 'The city it serves.' })
  city(@Root() biller: BillerType, @Ctx() ctx: GraphQLContext): Promise<CityType> {
    return visibleCity(ctx, biller.cityUuid);
  }

  @FieldResolver(() => FeePlanType, { nullable: true, description: 'The fee terms it is charged; null when it has none, or for anyone but the operator and the biller itself.' })
  async feePlan(@Root() biller: BillerType, @Ctx() ctx: GraphQLContext): Promise<FeePlanType | null> {
    const plan = biller.feePlanUuid ? await findFeePlanFor(ctx.em, ctx.principal, biller.feePlanUuid) : null;
    return plan && feePlanView(plan);
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => BillerPayload, { description: 'Onboards a biller in a city, ACTIVE. Operator only (tenants:manage).' })
  async createBiller(@Arg('input', () => CreateBillerInput, { description: 'The biller to onboard.' }) input: CreateBillerInput, @Ctx() ctx: GraphQLContext): Promise<BillerPayload> {
    const cityId = fromGlobalId(input.city, 'City').id;
    const feePlanId = input.feePlan ? fromGlobalId(input.feePlan, 'FeePlan').id : null;
    return withUserErrors<BillerPayload>(async () => ({ biller: billerView(await createBiller(ctx.em, { cityId, name: input.name, kind: input.kind, feePlanId })), userErrors: [] }), { biller: null });
  }

  @Authorized(OPERATOR, MANAGE)
  @Mutation(() => BillerPayload, { description: 'Renames a biller, moves it to another fee plan, or suspends or resumes it. Operator only (tenants:manage).' })
  async updateBiller(@Arg('input', () => UpdateBillerInput, { description: 'The biller and what changes.' }) input: UpdateBillerInput, @Ctx() ctx: GraphQLContext): Promise<BillerPayload> {
    const { id } = fromGlobalId(input.biller, 'Biller');
    const feePlanId = feePlanChange(input.feePlan);
    return withUserErrors<BillerPayload>(async () => ({ biller: billerView(await updateBiller(ctx.em, id, { name: given(input.name), feePlanId, status: given(input.status) })), userErrors: [] }), { biller: null });
  }
}
