import { Ctx, Field, FieldResolver, ObjectType, Resolver, Root } from 'type-graphql';
import { CardType } from '../cards/cards.types.js';
import type { GraphQLContext } from '../graphql/context.js';
import { Money } from '../graphql/money.js';
import { pendingLoadsOfCard } from './load-pickup.js';
import { topUpView } from './topups.resolver.js';
import { TopUpOriginEnum, TopUpType } from './topups.types.js';

@ObjectType('PendingLoad', { description: 'Value waiting to be written onto the card (补登): a paid top-up, a merchant’s refund, or a replaced card’s balance, as the holder confirms it before a pickup.' })
export class PendingLoadType {
  @Field(() => TopUpType, { description: 'The pending load itself (its id goes into `openCardSession(input: { pendingLoads })`).' })
  topUp!: TopUpType;

  @Field(() => TopUpOriginEnum, { description: 'Where the value comes from: a top-up (APP, COUNTER, AUTO), a merchant’s REFUND, or a replaced card’s balance (TRANSFER).' })
  source!: TopUpOriginEnum;

  @Field(() => Money, { description: 'What it adds to the card.' })
  amount!: Money;

  @Field({ description: 'True when the next pickup may write it; false when it is held back (see heldBack).' })
  writable!: boolean;

  @Field(() => String, { nullable: true, description: 'Why it stays pending for now: it would take the card past its purse maximum (TOPUP_PURSE_MAX), or a reader is writing it right now. Null when writable.' })
  heldBack!: string | null;
}

/** The card's pending loads, listed for the holder to confirm before a pickup session writes them. */
@Resolver(() => CardType)
export class CardPendingLoadsResolver {
  @FieldResolver(() => [PendingLoadType], { description: 'Every pending load of the card, oldest first, each writable by the next pickup or held back with its reason (docs/topups.md#picking-up-every-pending-load).' })
  async pendingLoads(@Root() card: CardType, @Ctx() ctx: GraphQLContext): Promise<PendingLoadType[]> {
    const listing = await pendingLoadsOfCard(ctx.em, { id: card.uuid, asn: card.asnValue, currency: card.currency }, ctx.config.topUpLimits);
    return listing.map(({ load, heldBack }) =>
      Object.assign(new PendingLoadType(), {
        topUp: topUpView(load, ctx.config.gateway?.url),
        source: load.origin as TopUpOriginEnum,
        amount: Money.of(BigInt(load.amount), card.currency),
        writable: heldBack === null,
        heldBack: heldBack?.message ?? null,
      }),
    );
  }
}
