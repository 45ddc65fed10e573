import { GraphQLError } from 'graphql';
import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { quoteInput } from '../graphql/errors.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { type BatchRow, clearWindow } from './clearing.js';
import {
  batchFor,
  batchOfWindowFor,
  findWindowFor,
  type InterchangeRow,
  interchangeFor,
  lineFor,
  type LineRow,
  linesOfBatch,
  cityOfArgument,
  listWindowsFor,
  netPositions,
  participantOf,
  participantVolumeByHour,
  statementsFor,
  volumeByHour,
  type VolumeRow,
} from './settlement.service.js';
import {
  BilateralNetType,
  CardCompanyRefType,
  ClearSettlementWindowInput,
  ClearSettlementWindowPayload,
  CloseSettlementWindowInput,
  CloseSettlementWindowPayload,
  InterchangeMatrixType,
  InterchangePositionType,
  MultilateralNetType,
  type ParticipantKindEnum,
  SettlementBatchType,
  type SettlementBatchStatusEnum,
  SettlementLineConnection,
  type SettlementLineStatusEnum,
  SettlementLineType,
  SettlementWindowConnection,
  SettlementWindowStatusEnum,
  SettlementVolumeType,
  SettlementWindowType,
  type ClearingKindEnum,
} from './settlement.types.js';
import { closeWindow, windowById, type WindowRow } from './windows.js';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY = /^\d{4}-\d{2}-\d{2}$/;


/** The internal id of a global id of `type`, or null when it is not one of ours (answers as missing). */
function uuidOf(globalId: string, type: string): string | null {
  const { id } = fromGlobalId(globalId, type);
  return UUID.test(id) ? id : null;
}

function day(value: string | null | undefined, name: string): string | null {
  if (value == null) return null;
  if (!DAY.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) throw new GraphQLError(`\`${name}\` is a date YYYY-MM-DD`, { extensions: { code: 'BAD_USER_INPUT' } });
  return value;
}

export function windowView(w: WindowRow): SettlementWindowType {
  return Object.assign(new SettlementWindowType(), {
    id: toGlobalId('SettlementWindow', w.id),
    uuid: w.id,
    city: toGlobalId('City', w.city_id),
    cityCode: w.city_code,
    businessDay: w.business_day,
    currency: w.currency,
    status: w.status as SettlementWindowStatusEnum,
    cutoffAt: w.cutoff_at,
    closedAt: w.closed_at,
    closedBy: w.closed_by,
    clearedAt: w.cleared_at,
    settledAt: w.settled_at,
  });
}

function batchView(b: BatchRow, window: WindowRow): SettlementBatchType {
  const money = (v: string) => Money.of(BigInt(v), b.currency);
  return Object.assign(new SettlementBatchType(), {
    id: toGlobalId('SettlementBatch', b.id),
    uuid: b.id,
    window: windowView(window),
    status: b.status as SettlementBatchStatusEnum,
    itemCount: Number(b.item_count),
    gross: money(b.gross),
    refunds: money(b.refunds),
    fees: money(b.fees),
    net: money(b.net),
    payoutTotal: money(b.payout_total),
    topUps: money(b.top_ups),
    topUpRefunds: money(b.top_up_refunds),
    journalEntry: b.journal_entry_id ? toGlobalId('JournalEntry', b.journal_entry_id) : null,
    createdAt: b.created_at,
    settledAt: b.settled_at,
  });
}

const PARTICIPANT_TYPE: Record<string, string> = { MERCHANT: 'Merchant', BILLER: 'Biller', CARD_COMPANY: 'CardCompany' };

export function lineView(l: LineRow): SettlementLineType {
  const money = (v: string) => Money.of(BigInt(v), l.currency);
  return Object.assign(new SettlementLineType(), {
    id: toGlobalId('SettlementLine', l.id),
    uuid: l.id,
    windowUuid: l.window_id,
    participantUuid: l.participant_id,
    currency: l.currency,
    batch: toGlobalId('SettlementBatch', l.batch_id),
    window: toGlobalId('SettlementWindow', l.window_id),
    cityCode: l.city_code,
    businessDay: l.business_day,
    participantKind: l.participant_kind as ParticipantKindEnum,
    participant: toGlobalId(PARTICIPANT_TYPE[l.participant_kind]!, l.participant_id),
    participantName: l.participant_name,
    feePlan: l.fee_plan_id ? toGlobalId('FeePlan', l.fee_plan_id) : null,
    salesCount: Number(l.sales_count),
    refundCount: Number(l.refund_count),
    gross: money(l.gross),
    refunds: money(l.refunds),
    fees: money(l.fees),
    net: money(l.net),
    carriedIn: money(l.carried_in),
    due: money(l.due),
    payout: money(l.payout_amount),
    status: l.status as SettlementLineStatusEnum,
    carriedInto: l.carried_into ? toGlobalId('SettlementLine', l.carried_into) : null,
    gatewayPayoutId: l.gateway_payout_id,
    payoutFailureCode: l.payout_failure_code,
    topUpCount: Number(l.top_up_count),
    topUps: money(l.top_ups),
    topUpRefunds: money(l.top_up_refunds),
  });
}

const ref = (id: string, name: string, cityCode: string) => Object.assign(new CardCompanyRefType(), { id: toGlobalId('CardCompany', id), name, cityCode });

function positionView(r: InterchangeRow): InterchangePositionType {
  return Object.assign(new InterchangePositionType(), {
    issuer: ref(r.issuer_id, r.issuer_name, r.issuer_city_code),
    acquirer: ref(r.acquirer_id, r.acquirer_name, r.acquirer_city_code),
    count: Number(r.count),
    gross: Money.of(BigInt(r.gross), r.currency),
    refunds: Money.of(BigInt(r.refunds), r.currency),
    net: Money.of(BigInt(r.net), r.currency),
  });
}

async function loadBatch(ctx: GraphQLContext, id: string): Promise<SettlementBatchType | null> {
  const found = UUID.test(id) ? await batchFor(ctx.em, ctx.principal!, id) : null;
  return found ? batchView(found, found.window) : null;
}

nodeLoaders.set('SettlementWindow', async (ctx, id) => {
  const w = UUID.test(id) ? await findWindowFor(ctx.em, ctx.principal!, id) : null;
  return w ? windowView(w) : null;
});
nodeLoaders.set('SettlementBatch', loadBatch);
nodeLoaders.set('SettlementLine', async (ctx, id) => {
  const l = UUID.test(id) ? await lineFor(ctx.em, ctx.principal!, id) : null;
  return l ? lineView(l) : null;
});

@ArgsType()
class SettlementWindowsArgs extends ConnectionArgs {
  @Field(() => String, {
    nullable: true,
    description: 'Only this city’s: the City’s global id, as every `city` argument takes it. A city code (`GZ`) is still accepted until 2027-06-07 (deprecated since 2026-12-07); anything else is BAD_USER_INPUT.',
  })
  city?: string | null;

  @Field(() => SettlementWindowStatusEnum, { nullable: true, description: 'Only windows in this status.' })
  status?: SettlementWindowStatusEnum | null;

  @Field(() => String, { nullable: true, description: 'From this business day (YYYY-MM-DD), inclusive.' })
  from?: string | null;

  @Field(() => String, { nullable: true, description: 'To this business day (YYYY-MM-DD), inclusive.' })
  to?: string | null;
}

@ArgsType()
class StatementsArgs extends ConnectionArgs {
  @Field(() => String, { nullable: true, description: 'From this business day (YYYY-MM-DD), inclusive.' })
  from?: string | null;

  @Field(() => String, { nullable: true, description: 'To this business day (YYYY-MM-DD), inclusive.' })
  to?: string | null;
}

@Resolver(() => SettlementWindowType)
export class SettlementResolver {
  @Authorized('OPERATOR', 'ISSUER', 'settlements:read')
  @Query(() => SettlementWindowConnection, { description: 'Settlement windows, newest business day first: the operator sees every city’s, a card company its own city’s (scope settlements:read).' })
  async settlementWindows(@Args() args: SettlementWindowsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const cityId = args.city == null ? null : await cityOfArgument(ctx.em, args.city);
    if (cityId === null && args.city != null) throw new GraphQLError(`\`city\` takes a City’s global id (from \`cities\`); ${quoteInput(args.city)} is neither a City id nor a city code`, { extensions: { code: 'BAD_USER_INPUT' } });
    const rows = await listWindowsFor(ctx.em, ctx.principal!, { cityId, status: args.status, from: day(args.from, 'from'), to: day(args.to, 'to'), page });
    return toConnection(rows, page, (w) => ({ sortKey: w.business_day, id: w.id }), windowView);
  }

  @Authorized('OPERATOR', 'ISSUER', 'settlements:read')
  @Query(() => SettlementBatchType, { nullable: true, description: 'A settlement batch with its lines (operator; a card company for its city’s windows). Null when missing or not yours.' })
  async settlementBatch(@Arg('id', () => ID, { description: 'Global id of the SettlementBatch.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<SettlementBatchType | null> {
    const uuid = uuidOf(id, 'SettlementBatch');
    return uuid ? loadBatch(ctx, uuid) : null;
  }

  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'settlements:read')
  @Query(() => SettlementLineConnection, { description: 'Your own settlement statements (one line per cleared window you took part in), newest first.' })
  async settlementStatements(@Args() args: StatementsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await statementsFor(ctx.em, ctx.principal!, { from: day(args.from, 'from'), to: day(args.to, 'to'), page });
    return toConnection(rows, page, (l) => ({ sortKey: l.business_day, id: l.id }), lineView);
  }

  @Authorized('OPERATOR', 'ISSUER', 'settlements:read')
  @Query(() => InterchangeMatrixType, { description: 'Cross-city card use of a business day over every city’s cleared window: the operator sees all; a card company the positions it is a party to and its own net.' })
  async interchangeMatrix(@Arg('businessDay', { description: 'YYYY-MM-DD.' }) businessDay: string, @Ctx() ctx: GraphQLContext): Promise<InterchangeMatrixType> {
    const rows = await interchangeFor(ctx.em, ctx.principal!, day(businessDay, 'businessDay')!);
    const { bilateral, multilateral } = netPositions(rows);
    const me = participantOf(ctx.principal!);
    return Object.assign(new InterchangeMatrixType(), {
      businessDay,
      positions: rows.map(positionView),
      bilateral: bilateral.map((b) =>
        Object.assign(new BilateralNetType(), { debtor: ref(b.debtor.id, b.debtor.name, b.debtor.cityCode), creditor: ref(b.creditor.id, b.creditor.name, b.creditor.cityCode), amount: Money.of(b.amount, b.currency) }),
      ),
      multilateral: multilateral
        .filter((m) => !me || m.cardCompanyId === me.id)
        .map((m) =>
          Object.assign(new MultilateralNetType(), {
            cardCompany: ref(m.cardCompanyId, m.cardCompanyName, m.cityCode),
            receivable: Money.of(m.receivable, m.currency),
            payable: Money.of(m.payable, m.currency),
            net: Money.of(m.receivable - m.payable, m.currency),
          }),
        ),
    });
  }

  @FieldResolver(() => SettlementBatchType, { nullable: true, description: 'Its batch, once cleared.' })
  async batch(@Root() window: SettlementWindowType, @Ctx() ctx: GraphQLContext): Promise<SettlementBatchType | null> {
    const batch = await batchOfWindowFor(ctx.em, ctx.principal!, window.uuid);
    return batch ? loadBatch(ctx, batch.id) : null;
  }

  @Authorized('OPERATOR', 'settlements:manage')
  @Mutation(() => CloseSettlementWindowPayload, { description: 'Closes a city’s window for a business day now, before its cut-off (operator, settlements:manage). Earlier open windows close first; a closed window is answered as it is. Clearing follows in the background, or with clearSettlementWindow.' })
  async closeSettlementWindow(@Arg('input', () => CloseSettlementWindowInput, { description: 'The city and business day.' }) input: CloseSettlementWindowInput, @Ctx() ctx: GraphQLContext): Promise<CloseSettlementWindowPayload> {
    const cityId = uuidOf(input.city, 'City');
    if (!cityId) return { window: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no city ${input.city}`, ['input', 'city'])] };
    return withUserErrors<CloseSettlementWindowPayload>(async () => {
      const window = await closeWindow(ctx.em, { cityId, businessDay: input.businessDay, closedBy: ctx.principal!.clientId, cutoff: ctx.config.settlementCutoff });
      return { window: windowView(window), userErrors: [] };
    }, { window: null });
  }

  @Authorized('OPERATOR', 'settlements:manage')
  @Mutation(() => ClearSettlementWindowPayload, { description: 'Clears a closed window now (operator, settlements:manage); the cut-off job does it by itself. Running it again changes nothing and answers the same batch.' })
  async clearSettlementWindow(@Arg('input', () => ClearSettlementWindowInput, { description: 'The window.' }) input: ClearSettlementWindowInput, @Ctx() ctx: GraphQLContext): Promise<ClearSettlementWindowPayload> {
    const windowId = uuidOf(input.window, 'SettlementWindow');
    // The operator (settlements:manage) may clear any window, with or without settlements:read.
    const window = windowId ? await windowById(ctx.em, windowId) : null;
    if (!window) return { batch: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no settlement window ${input.window}`, ['input', 'window'])] };
    return withUserErrors<ClearSettlementWindowPayload>(async () => {
      const batch = await clearWindow(ctx.em, window.id);
      return { batch: batchView(batch, (await windowById(ctx.em, window.id))!), userErrors: [] };
    }, { batch: null });
  }
}

@Resolver(() => SettlementBatchType)
export class SettlementBatchResolver {
  @FieldResolver(() => SettlementLineConnection, { description: 'A line per participant, by name.' })
  async lines(@Root() batch: SettlementBatchType, @Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await linesOfBatch(ctx.em, batch.uuid, page);
    return toConnection(rows, page, (l) => ({ sortKey: l.participant_name, id: l.id }), lineView);
  }

  @FieldResolver(() => [SettlementVolumeType], { description: 'The window’s transactions by local hour and kind (channel), for charts.' })
  async volumeByHour(@Root() batch: SettlementBatchType, @Ctx() ctx: GraphQLContext): Promise<SettlementVolumeType[]> {
    return (await volumeByHour(ctx.em, batch.window.uuid)).map((r) => volumeView(r, batch.window.currency));
  }

  @FieldResolver(() => [InterchangePositionType], { description: 'Cards of other cities used in this window’s city.' })
  async interchange(@Root() batch: SettlementBatchType, @Ctx() ctx: GraphQLContext): Promise<InterchangePositionType[]> {
    const rows = await interchangeFor(ctx.em, ctx.principal!, batch.window.businessDay);
    return rows.filter((r) => r.batch_id === batch.uuid).map(positionView);
  }
}

function volumeView(r: VolumeRow, currency: string): SettlementVolumeType {
  return Object.assign(new SettlementVolumeType(), { hour: r.hour, kind: r.kind as ClearingKindEnum, count: Number(r.count), amount: Money.of(BigInt(r.amount), currency) });
}

@Resolver(() => SettlementLineType)
export class SettlementLineResolver {
  // Whoever may read the line may read what it sums: the participant's own items of the window.
  @FieldResolver(() => [SettlementVolumeType], { description: 'This participant’s transactions of the window by local hour and kind (channel), for its statement’s chart; they add up to the line’s sales, refunds and top-ups.' })
  async volumeByHour(@Root() line: SettlementLineType, @Ctx() ctx: GraphQLContext): Promise<SettlementVolumeType[]> {
    return (await participantVolumeByHour(ctx.em, line.windowUuid, line.participantKind, line.participantUuid)).map((r) => volumeView(r, line.currency));
  }
}
