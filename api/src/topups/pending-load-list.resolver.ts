import { GraphQLError } from 'graphql';
import { Args, ArgsType, Authorized, Ctx, Field, ObjectType, Query, Resolver, registerEnumType } from 'type-graphql';
import { ConnectionArgs, connectionType, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { Money } from '../graphql/money.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { type ListedPendingLoad, listPendingLoadsFor, type PendingLoadListStatus } from './top-up-rows.js';
import { topUpView } from './topups.resolver.js';
import { TopUpType } from './topups.types.js';

export enum PendingLoadStatusEnum {
  UNRESOLVED = 'UNRESOLVED',
  WAITING = 'WAITING',
}
registerEnumType(PendingLoadStatusEnum, {
  name: 'PendingLoadStatus',
  description: 'Where a paid top-up not yet on its card stands, as the card company sorts them.',
  valuesConfig: {
    UNRESOLVED: { description: 'Its write onto the card was started (MAC2 issued) and no reader is writing it now: the card settles it at its next tap, or the card company does (resolvePendingLoad; LOAD_UNRESOLVED, a lost card).' },
    WAITING: { description: 'Paid, never started: the card’s next tap at a certified reader writes it (补登).' },
  },
});

@ObjectType('PendingLoadEntry', { description: 'A pending load of one of the card company’s cards, as its back office lists them.' })
export class PendingLoadEntryType {
  @Field(() => TopUpType, { description: 'The pending load (a top-up, a merchant’s refund or a replaced card’s balance): pass its id to resolvePendingLoad.' })
  topUp!: TopUpType;

  @Field({ description: 'The number printed on the card it is for.' })
  cardNumber!: string;

  @Field(() => Money, { description: 'What it adds to the card.' })
  amount!: Money;

  @Field(() => PendingLoadStatusEnum, { description: 'UNRESOLVED or WAITING.' })
  status!: PendingLoadStatusEnum;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When a reader started writing it onto the card (the card session that issued MAC2); null while WAITING.' })
  writeStartedAt!: Date | null;
}

const PendingLoadEntryConnection = connectionType(PendingLoadEntryType, 'PendingLoadEntry');

@ArgsType()
class PendingLoadsArgs extends ConnectionArgs {
  @Field(() => PendingLoadStatusEnum, { defaultValue: PendingLoadStatusEnum.UNRESOLVED, description: 'Which: UNRESOLVED (default), the ones that may need the card company; or WAITING.' })
  status!: PendingLoadStatusEnum;
}

function entryView(row: ListedPendingLoad, status: PendingLoadStatusEnum, gatewayUrl: string | undefined): PendingLoadEntryType {
  return Object.assign(new PendingLoadEntryType(), {
    topUp: topUpView(row, gatewayUrl),
    cardNumber: row.card_number ?? '',
    amount: Money.of(BigInt(row.amount), row.currency.trim()),
    status,
    writeStartedAt: row.write_started_at,
  });
}

@Resolver()
export class PendingLoadListResolver {
  @Authorized('ISSUER', 'OPERATOR')
  @Query(() => PendingLoadEntryConnection, { description: 'The pending loads of your cards (card company, cards:read; the operator: every card company’s, cards:read), oldest first. Settle an UNRESOLVED one with resolvePendingLoad (card company, topups:write).' })
  async pendingLoads(@Args() args: PendingLoadsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listPendingLoadsFor(ctx.em, ctx.principal!, args.status as PendingLoadListStatus, { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch });
    if (!rows) throw new GraphQLError('Missing scope: cards:read', { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), (r) => entryView(r, args.status, ctx.config.gateway?.url));
  }
}
