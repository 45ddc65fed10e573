import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { scopeByKind } from '../auth/scopes.js';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Idempotent } from '../graphql/idempotency.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { UserErrorCode } from '../graphql/user-error.js';
import type { TopUpError } from '../topups/topups.errors.js';
import { createWalletTopUp, findTopUpFor, listTopUpsOfWallet, refundTopUp, topUpHistory, type TopUpRow } from '../topups/topups.service.js';
import { TopUpStatusChange, TopUpStatusEnum } from '../topups/topups.types.js';
import { findWalletFor, holderWallet, openWallet, setWalletDebtLimit, walletBalances, walletHistory, type WalletRow } from './wallets.service.js';
import {
  CreateWalletTopUpInput,
  OpenTransitWalletInput,
  RefundWalletTopUpInput,
  SetWalletDebtLimitInput,
  TransitWalletPayload,
  TransitWalletType,
  WalletEntryConnection,
  WalletEntryType,
  WalletTopUpConnection,
  WalletTopUpPayload,
  WalletTopUpType,
} from './wallets.types.js';

function walletView(row: WalletRow): TransitWalletType {
  return Object.assign(new TransitWalletType(), {
    id: toGlobalId('TransitWallet', row.id),
    uuid: row.id,
    currencyCode: row.currency,
    cardCompany: toGlobalId('CardCompany', row.card_company_id),
    debtLimit: Money.of(BigInt(row.debt_limit), row.currency),
    createdAt: row.created_at,
  });
}

function walletTopUpView(row: TopUpRow, gatewayUrl: string | undefined): WalletTopUpType {
  return Object.assign(new WalletTopUpType(), {
    id: toGlobalId('WalletTopUp', row.id),
    uuid: row.id,
    wallet: toGlobalId('TransitWallet', row.wallet_id!),
    amount: Money.of(BigInt(row.amount), row.currency.trim()),
    status: row.status as TopUpStatusEnum,
    paymentUrl: row.status === 'AWAITING_PAYMENT' && row.gateway_intent_id && gatewayUrl ? `${gatewayUrl}/checkout/${row.gateway_intent_id}` : null,
    failureCode: row.failure_code,
    createdAt: row.created_at,
    paidAt: row.paid_at,
    refundedAt: row.refunded_at,
  });
}

nodeLoaders.set('TransitWallet', async (ctx, id) => {
  const row = ctx.principal && (await findWalletFor(ctx.em, ctx.principal, id));
  return row ? walletView(row) : null;
});

nodeLoaders.set('WalletTopUp', async (ctx, id) => {
  const row = ctx.principal && (await findTopUpFor(ctx.em, ctx.principal, id, 'WALLET'));
  return row ? walletTopUpView(row, ctx.config.gateway?.url) : null;
});

/** A create (or refund) the gateway did not answer is not an outcome yet: not stored, a retry with the key asks again (as for card top-ups). */
const isFinal = (p: WalletTopUpPayload) => !((p.topUp?.status === TopUpStatusEnum.CREATED || p.topUp?.status === TopUpStatusEnum.REFUNDING) && p.userErrors.some((e) => e.code === UserErrorCode.GATEWAY_UNAVAILABLE));

function topUpPayload(ctx: GraphQLContext, work: () => Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }>): Promise<WalletTopUpPayload> {
  return withUserErrors<WalletTopUpPayload>(async () => {
    const { topUp, gatewayError } = await work();
    return { topUp: walletTopUpView(topUp, ctx.config.gateway?.url), userErrors: gatewayError ? [gatewayError.toUserError()] : [] };
  }, { topUp: null });
}

@Resolver(() => TransitWalletType)
export class TransitWalletResolver {
  @Authorized('CARDHOLDER_APP', 'card:read')
  @Query(() => TransitWalletType, { nullable: true, description: 'Your holder’s transit wallet with a card company (cardholder app, scope card:read); null until openTransitWallet.' })
  async transitWallet(@Arg('cardCompany', () => ID, { description: 'Global id of the CardCompany.' }) cardCompany: string, @Ctx() ctx: GraphQLContext): Promise<TransitWalletType | null> {
    const row = await holderWallet(ctx.em, ctx.principal!, fromGlobalId(cardCompany, 'CardCompany').id);
    return row ? walletView(row) : null;
  }

  @FieldResolver(() => Money, { description: 'What the wallet holds.' })
  async balance(@Root() wallet: TransitWalletType, @Ctx() ctx: GraphQLContext): Promise<Money> {
    return Money.of((await walletBalances(ctx.em, { id: wallet.uuid, currency: wallet.currencyCode })).balance, wallet.currencyCode);
  }

  @FieldResolver(() => Money, { description: 'What the holder owes for rides the wallet did not cover; the next top-up clears it first.' })
  async debt(@Root() wallet: TransitWalletType, @Ctx() ctx: GraphQLContext): Promise<Money> {
    return Money.of((await walletBalances(ctx.em, { id: wallet.uuid, currency: wallet.currencyCode })).debt, wallet.currencyCode);
  }

  @FieldResolver(() => WalletTopUpConnection, { description: 'The wallet’s top-ups, newest first.' })
  async topUps(@Root() wallet: TransitWalletType, @Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listTopUpsOfWallet(ctx.em, wallet.uuid, { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch });
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), (r) => walletTopUpView(r, ctx.config.gateway?.url));
  }

  @FieldResolver(() => WalletEntryConnection, { description: 'The wallet’s movements (top-ups, rides, refunds), newest first, from the ledger.' })
  async history(@Root() wallet: TransitWalletType, @Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await walletHistory(ctx.em, { id: wallet.uuid, currency: wallet.currencyCode }, { after: page.after ? { postedAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch });
    return toConnection(
      rows,
      page,
      (r) => ({ sortKey: r.posted_key, id: r.entry_id }),
      (r) =>
        Object.assign(new WalletEntryType(), {
          journalEntry: toGlobalId('JournalEntry', r.entry_id),
          postedAt: r.posted_at,
          kind: r.kind,
          description: r.description,
          balanceChange: Money.of(BigInt(r.balance_change), wallet.currencyCode),
          debtChange: Money.of(BigInt(r.debt_change), wallet.currencyCode),
        }),
    );
  }

  @Authorized('ISSUER', 'topups:write')
  @Mutation(() => TransitWalletPayload, { description: 'Sets how far QR rides may run one of your card company’s transit wallets into debt (scope topups:write): 0 to 100.00; 20.00 for a new wallet. Rides past it are refused DEBT_LIMIT_EXCEEDED (docs/qr-rides.md, “Debt”).' })
  async setWalletDebtLimit(@Arg('input', () => SetWalletDebtLimitInput, { description: 'The wallet and its new debt limit.' }) input: SetWalletDebtLimitInput, @Ctx() ctx: GraphQLContext): Promise<TransitWalletPayload> {
    return withUserErrors<TransitWalletPayload>(async () => ({ wallet: walletView(await setWalletDebtLimit(ctx.em, ctx.principal!, { walletId: fromGlobalId(input.wallet, 'TransitWallet').id, debtLimit: input.debtLimit })), userErrors: [] }), { wallet: null });
  }

  @Authorized('CARDHOLDER_APP', 'card:topup')
  @Mutation(() => TransitWalletPayload, { description: 'Opens your holder’s transit wallet with a card company (cardholder app, scope card:topup); the one already open is returned as it is.' })
  async openTransitWallet(@Arg('input', () => OpenTransitWalletInput, { description: 'The card company.' }) input: OpenTransitWalletInput, @Ctx() ctx: GraphQLContext): Promise<TransitWalletPayload> {
    return withUserErrors<TransitWalletPayload>(async () => ({ wallet: walletView(await openWallet(ctx.em, ctx.principal!, fromGlobalId(input.cardCompany, 'CardCompany').id)), userErrors: [] }), { wallet: null });
  }

  @Authorized('CARDHOLDER_APP', 'card:topup')
  @Mutation(() => WalletTopUpPayload, {
    description:
      'Tops up your holder’s transit wallet through the payment gateway (cardholder app, scope card:topup), within the top-up limits. Once PAID the value is in the wallet, less any ride debt it clears first. Idempotent by idempotencyKey (docs/api-conventions.md#idempotency).',
  })
  @Idempotent<WalletTopUpPayload>({ isFinal, effect: 'resumable' })
  createWalletTopUp(@Arg('input', () => CreateWalletTopUpInput, { description: 'The wallet, the amount and your idempotency key.' }) input: CreateWalletTopUpInput, @Ctx() ctx: GraphQLContext): Promise<WalletTopUpPayload> {
    return topUpPayload(ctx, () =>
      createWalletTopUp(ctx.em, { gateway: ctx.gateway ?? null, limits: ctx.config.topUpLimits, clientSecrets: ctx.clientSecrets ?? null }, ctx.principal!, { walletId: fromGlobalId(input.wallet, 'TransitWallet').id, amount: input.amount, idempotencyKey: input.idempotencyKey, paymentMethod: input.paymentMethod }),
    );
  }

  @Authorized(...scopeByKind({ CARDHOLDER_APP: 'card:topup', ISSUER: 'topups:write', OPERATOR: 'tenants:manage' }))
  @Mutation(() => WalletTopUpPayload, {
    description:
      'Refunds a PAID wallet top-up through the gateway: your holder’s (cardholder app, card:topup), your card company’s wallets’ (topups:write). Refused NOT_REFUNDABLE when rides spent part of it. Idempotent by idempotencyKey.',
  })
  @Idempotent<WalletTopUpPayload>({ isFinal, effect: 'resumable' })
  refundWalletTopUp(@Arg('input', () => RefundWalletTopUpInput, { description: 'The wallet top-up to refund and your idempotency key.' }) input: RefundWalletTopUpInput, @Ctx() ctx: GraphQLContext): Promise<WalletTopUpPayload> {
    return topUpPayload(ctx, () => refundTopUp(ctx.em, ctx.gateway ?? null, ctx.principal!, fromGlobalId(input.topUp, 'WalletTopUp').id, input.idempotencyKey, 'WALLET'));
  }
}

@Resolver(() => WalletTopUpType)
export class WalletTopUpResolver {
  @FieldResolver(() => [TopUpStatusChange], { description: 'Every status change, oldest first.' })
  async history(@Root() topUp: WalletTopUpType, @Ctx() ctx: GraphQLContext): Promise<TopUpStatusChange[]> {
    const rows = await topUpHistory(ctx.em, topUp.uuid);
    return rows.map((r) => Object.assign(new TopUpStatusChange(), { from: r.from_status, to: r.to_status, cause: r.cause, at: r.at }));
  }
}
