import { Arg, Args, Authorized, Ctx, Field, FieldResolver, ID, Mutation, Query, Resolver, Root, ArgsType } from 'type-graphql';
import { scopeByKind } from '../auth/scopes.js';
import { CardType } from '../cards/cards.types.js';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Idempotent } from '../graphql/idempotency.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { autoTopUpOf, setAutoTopUp } from './auto-top-up.js';
import { resolvePendingLoad } from './pending-load.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { requestKeyStore } from '../readers/keys/key-store-for.js';
import type { TopUpError } from './topups.errors.js';
import type { ClientSecretSeal } from './client-secret.js';
import { clientSecretSealedOf, createTopUp, findTopUpFor, listTopUpsOfCard, pendingLoadOfCard, refundTopUp, topUpHistory, type TopUpRow, type TopUpStatus } from './topups.service.js';
import { AutoTopUpPayload, AutoTopUpType, CreateTopUpInput, RefundTopUpInput, ResolvePendingLoadInput, SetAutoTopUpInput, TopUpConnection, type TopUpOriginEnum, TopUpPayload, TopUpStatusChange, TopUpStatusEnum, TopUpType } from './topups.types.js';
import type { GatewayClient } from './gateway/gateway-client.js';

declare module '../graphql/context.js' {
  interface GraphQLContext {
    /** The payment gateway (top-ups, refunds, payouts); null when none is configured. The HTTP app puts it here. */
    gateway?: GatewayClient | null;
  }
}

/**
 * A create answered GATEWAY_UNAVAILABLE with the top-up still CREATED is not an outcome yet: it is
 * not stored, so a retry with the key asks the gateway again (safe: the top-up's own key row and
 * the gateway's key per top-up mean one top-up and one charge, however often it runs).
 */
const createIsFinal = (p: TopUpPayload) => !(p.topUp?.status === TopUpStatusEnum.CREATED && p.userErrors.some((e) => e.code === UserErrorCode.GATEWAY_UNAVAILABLE));

/**
 * A refund answered GATEWAY_UNAVAILABLE with the top-up still REFUNDING is not an outcome yet: the
 * job submits it again. Not stored, so a retry with the key finds the refund by its key and answers
 * how it ended (REFUNDED, or the gateway's refusal) instead of replaying GATEWAY_UNAVAILABLE for ever.
 */
const refundIsFinal = (p: TopUpPayload) => !(p.topUp?.status === TopUpStatusEnum.REFUNDING && p.userErrors.some((e) => e.code === UserErrorCode.GATEWAY_UNAVAILABLE));

declare module '../graphql/context.js' {
  interface GraphQLContext {
    /** Seals and opens the gateway's client secrets (topups/client-secret.ts); createHttpApp puts it here. Without it a new secret is not kept (the app pays at paymentUrl). */
    clientSecrets?: ClientSecretSeal;
  }
}

/** The seal createHttpApp put in the context; a context without one (a test executing the schema directly) cannot open a secret. */
function clientSecretsOf(ctx: GraphQLContext): ClientSecretSeal {
  if (!ctx.clientSecrets) throw new Error('no client-secret seal in the GraphQL context (createHttpApp makes one)');
  return ctx.clientSecrets;
}

/** A card's top-up (findTopUpFor and the card mutations answer no other; a wallet's is a WalletTopUp). */
export function topUpView(row: TopUpRow, gatewayUrl: string | undefined): TopUpType {
  return Object.assign(new TopUpType(), {
    id: toGlobalId('TopUp', row.id),
    uuid: row.id,
    cardUuid: row.card_id!,
    card: toGlobalId('Card', row.card_id!),
    amount: Money.of(BigInt(row.amount), row.currency.trim()),
    status: row.status as TopUpStatusEnum,
    origin: row.origin as TopUpOriginEnum,
    paymentUrl: row.status === 'AWAITING_PAYMENT' && row.gateway_intent_id && gatewayUrl ? `${gatewayUrl}/checkout/${row.gateway_intent_id}` : null,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    createdAt: row.created_at,
    paidAt: row.paid_at,
    loadedAt: row.loaded_at,
    refundedAt: row.refunded_at,
  });
}

/** A top-up mutation's payload; a gateway that did not answer is reported beside the top-up it left as it was. */
function payload(ctx: GraphQLContext, work: () => Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }>): Promise<TopUpPayload> {
  return withUserErrors<TopUpPayload>(async () => {
    const { topUp, gatewayError } = await work();
    return { topUp: topUpView(topUp, ctx.config.gateway?.url), userErrors: gatewayError ? [gatewayError.toUserError()] : [] };
  }, { topUp: null });
}

nodeLoaders.set('TopUp', async (ctx, id) => {
  const row = ctx.principal && (await findTopUpFor(ctx.em, ctx.principal, id));
  return row ? topUpView(row, ctx.config.gateway?.url) : null;
});

@ArgsType()
class CardTopUpsArgs extends ConnectionArgs {
  @Field(() => [TopUpStatusEnum], { nullable: true, description: 'Only top-ups in these statuses (e.g. [PAID] for what waits to be loaded).' })
  status?: TopUpStatusEnum[] | null;
}

@Resolver(() => TopUpType)
export class TopUpResolver {
  @Authorized()
  @Query(() => TopUpType, { nullable: true, description: 'A top-up you may see: any (operator, cards:read), your cards’ (card company, cards:read), your cardholder’s (app, card:read).' })
  async topUp(@Arg('id', () => ID, { description: 'Global id of the TopUp.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<TopUpType | null> {
    const row = await findTopUpFor(ctx.em, ctx.principal!, fromGlobalId(id, 'TopUp').id);
    return row ? topUpView(row, ctx.config.gateway?.url) : null;
  }

  /**
   * Read from the row each time, never from the top-up object: a createTopUp answer is stored (in
   * clear, 48 h) for replays, and the secret must not be in it; a replay after the payment then
   * no longer hands it out either.
   */
  @FieldResolver(() => String, { nullable: true, description: 'The gateway’s client secret of the payment, for a gateway SDK in the holder’s app; only while the top-up awaits payment.' })
  async clientSecret(@Root() topUp: TopUpType, @Ctx() ctx: GraphQLContext): Promise<string | null> {
    const row = await clientSecretSealedOf(ctx.em, topUp.uuid);
    if (row?.status !== 'AWAITING_PAYMENT') return null;
    try {
      return clientSecretsOf(ctx).open(topUp.uuid, row.client_secret_sealed);
    } catch (err) {
      // A secret that cannot be opened (another key) costs the app its gateway SDK path, not the top-up.
      ctx.log.error({ err, topUp: topUp.uuid }, 'could not open a top-up’s gateway client secret');
      return null;
    }
  }

  @FieldResolver(() => [TopUpStatusChange], { description: 'Every status change, oldest first.' })
  async history(@Root() topUp: TopUpType, @Ctx() ctx: GraphQLContext): Promise<TopUpStatusChange[]> {
    const rows = await topUpHistory(ctx.em, topUp.uuid);
    return rows.map((r) => Object.assign(new TopUpStatusChange(), { from: r.from_status, to: r.to_status, cause: r.cause, at: r.at }));
  }

  @Authorized(...scopeByKind({ CARDHOLDER_APP: 'card:topup', ISSUER: 'topups:write' }))
  @Mutation(() => TopUpPayload, {
    description:
      'Tops up a card through the payment gateway: a cardholder app for its holder’s registered card (scope card:topup), or a card company at its counter (scope topups:write). Idempotent by idempotencyKey (docs/api-conventions.md#idempotency); a GATEWAY_UNAVAILABLE answer with the top-up still CREATED is not stored, and a retry with the key asks the gateway again. Once PAID, the value is written onto the card at a certified reader (openCardSession with operation LOAD and this topUp).',
  })
  // The gateway call is outside the database: createTopUp finds its top-up by the key on a retry.
  @Idempotent<TopUpPayload>({ isFinal: createIsFinal, effect: 'resumable' })
  createTopUp(@Arg('input', () => CreateTopUpInput, { description: 'The card, the amount and your idempotency key.' }) input: CreateTopUpInput, @Ctx() ctx: GraphQLContext): Promise<TopUpPayload> {
    return payload(ctx, () =>
      createTopUp(ctx.em, { gateway: ctx.gateway ?? null, limits: ctx.config.topUpLimits, clientSecrets: ctx.clientSecrets ?? null }, ctx.principal!, { cardId: fromGlobalId(input.card, 'Card').id, amount: input.amount, idempotencyKey: input.idempotencyKey, paymentMethod: input.paymentMethod }),
    );
  }

  @Authorized(...scopeByKind({ CARDHOLDER_APP: 'card:topup', ISSUER: 'topups:write', OPERATOR: 'tenants:manage' }))
  @Mutation(() => TopUpPayload, {
    description:
      'Refunds a PAID top-up that is not on the card, through the gateway: the card company (topups:write) any of its cards’; a cardholder app (card:topup) its holder’s once the card can no longer be used (lost, blocked, replaced, expired). Idempotent by idempotencyKey (docs/api-conventions.md#idempotency).',
  })
  // The gateway call is outside the database: refundTopUp finds the refund it started by the key on a retry.
  @Idempotent<TopUpPayload>({ isFinal: refundIsFinal, effect: 'resumable' })
  refundTopUp(@Arg('input', () => RefundTopUpInput, { description: 'The top-up to refund and your idempotency key.' }) input: RefundTopUpInput, @Ctx() ctx: GraphQLContext): Promise<TopUpPayload> {
    return payload(ctx, () => refundTopUp(ctx.em, ctx.gateway ?? null, ctx.principal!, fromGlobalId(input.topUp, 'TopUp').id, input.idempotencyKey));
  }

  @Authorized('ISSUER', 'topups:write')
  @Mutation(() => TopUpPayload, {
    description:
      'Settles a pending load of one of your cards whose write was started but that the card cannot settle (LOAD_UNRESOLVED, or a lost card): loaded books it onto the card, not loaded releases it to be written again or refunded. Card company, scope topups:write.',
  })
  @Idempotent()
  resolvePendingLoad(@Arg('input', () => ResolvePendingLoadInput, { description: 'The top-up and what the card company established.' }) input: ResolvePendingLoadInput, @Ctx() ctx: GraphQLContext): Promise<TopUpPayload> {
    return payload(ctx, async () => {
      // The card's key checks a TAC the card company brings; without one, its word is recorded.
      const keyStore = input.tac != null ? requestKeyStore(ctx.em, await loadKeyEncryptionKey(ctx.config), ctx.config) : null;
      return { topUp: await resolvePendingLoad(ctx.em, ctx.principal!, fromGlobalId(input.topUp, 'TopUp').id, { loaded: input.loaded, note: input.note, tac: input.tac ?? null }, keyStore) };
    });
  }

  @Authorized('CARDHOLDER_APP', 'card:topup')
  @Mutation(() => AutoTopUpPayload, { description: 'Sets the auto top-up (and low-balance threshold) of your cardholder’s registered card (scope card:topup).' })
  async setAutoTopUp(@Arg('input', () => SetAutoTopUpInput, { description: 'The card and its auto top-up settings.' }) input: SetAutoTopUpInput, @Ctx() ctx: GraphQLContext): Promise<AutoTopUpPayload> {
    return withUserErrors<AutoTopUpPayload>(async () => {
      const row = await setAutoTopUp(ctx.em, ctx.principal!, ctx.config.topUpLimits, { cardId: fromGlobalId(input.card, 'Card').id, threshold: input.threshold, amount: input.amount, paymentMethod: input.paymentMethod, enabled: input.enabled });
      return { autoTopUp: autoTopUpView(row), userErrors: [] };
    }, { autoTopUp: null });
  }
}

function autoTopUpView(row: Awaited<ReturnType<typeof autoTopUpOf>> & object): AutoTopUpType {
  return Object.assign(new AutoTopUpType(), {
    threshold: Money.of(BigInt(row.threshold), row.currency),
    amount: Money.of(BigInt(row.amount), row.currency),
    paymentMethod: row.payment_method,
    enabled: row.enabled,
    lastTriggeredAt: row.last_triggered_at,
  });
}

/** The top-up side of a card: its top-ups, what waits to be loaded, its auto top-up. Visible to whoever sees the card. */
@Resolver(() => CardType)
export class CardTopUpsResolver {
  @FieldResolver(() => TopUpConnection, { description: 'The card’s top-ups, newest first.' })
  async topUps(@Root() card: CardType, @Args() args: CardTopUpsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listTopUpsOfCard(ctx.em, card.uuid, { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, statuses: (args.status ?? undefined) as TopUpStatus[] | undefined, limit: page.fetch });
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), (r) => topUpView(r, ctx.config.gateway?.url));
  }

  @FieldResolver(() => Money, { description: 'Paid top-ups not yet written onto the card: what the next 补登 at a certified reader adds.' })
  async pendingLoad(@Root() card: CardType, @Ctx() ctx: GraphQLContext): Promise<Money> {
    return Money.of(await pendingLoadOfCard(ctx.em, card.uuid), card.currency);
  }

  @FieldResolver(() => AutoTopUpType, { nullable: true, description: 'The card’s auto top-up settings, if any.' })
  async autoTopUp(@Root() card: CardType, @Ctx() ctx: GraphQLContext): Promise<AutoTopUpType | null> {
    const row = await autoTopUpOf(ctx.em, card.uuid);
    if (!row) return null;
    // The payment method reference is the holder's: others see only its last characters.
    const view = autoTopUpView(row);
    if (ctx.principal?.holderId !== row.holder_id) view.paymentMethod = `…${row.payment_method.slice(-4)}`;
    return view;
  }
}
