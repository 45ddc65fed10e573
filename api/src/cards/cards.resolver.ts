import { GraphQLError } from 'graphql';
import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { scopeByKind } from '../auth/scopes.js';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { Principal } from '../auth/principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { type CardActivityKind, type CardActivityRow, HistoryWindowError, historyWindow } from './card-history.service.js';
import { CardError } from './cards.errors.js';
import {
  type BalanceTransfer,
  balanceTransferOf,
  type BlacklistEntryRow,
  blacklistSince,
  type CardRow,
  type CardStatus,
  cardHistoryFor,
  cardPurseBalanceOf,
  findBalanceTransferFor,
  findCardActivityFor,
  findCardFor,
  findCardOfCompany,
  findCardOfHolder,
  issueCard,
  listCardsFor,
  replaceCard,
  transitionCard,
} from './cards.service.js';
import {
  type BlacklistActionEnum,
  BlacklistDelta,
  BlacklistEntry,
  CardActivity,
  CardActivityConnection,
  type CardActivityKindEnum,
  CardConnection,
  CardHistoryArgs,
  CardPayload,
  type CardStatusEnum,
  CardStatusInput,
  CardType,
  type CardTypeEnum,
  BalanceTransferType,
  type ConcessionEnum,
  IssueCardInput,
  ReplaceCardInput,
  ReplaceCardPayload,
} from './cards.types.js';

/** The card number as a viewer may see it: in full for its card company and the operator. */
export function maskCardNumber(number: string): string {
  return `**** **** **** ${number.slice(-4)}`;
}

function seesInFull(principal: Principal | null, row: CardRow): boolean {
  return principal?.kind === 'OPERATOR' || (principal?.kind === 'ISSUER' && principal.tenantId === row.card_company_id);
}

export function cardView(row: CardRow, principal: Principal | null): CardType {
  const full = seesInFull(principal, row);
  return Object.assign(new CardType(), {
    id: toGlobalId('Card', row.id),
    uuid: row.id,
    asnValue: row.asn,
    currency: row.currency,
    number: full ? row.card_number : maskCardNumber(row.card_number),
    asn: row.asn,
    cardType: row.card_type as CardTypeEnum,
    keyVersion: row.key_version,
    issuedOn: row.issued_on,
    expiresOn: row.expires_on,
    status: row.status as CardStatusEnum,
    cardCompany: toGlobalId('CardCompany', row.card_company_id),
    holder: row.holder_id ? toGlobalId('Cardholder', row.holder_id) : null,
    concession: row.concession as ConcessionEnum,
    concessionValidUntil: row.concession_valid_until,
    concessionProof: full ? row.concession_proof : null,
    replacedById: row.replaced_by,
    createdAt: row.created_at,
    statusChangedAt: row.status_changed_at,
  });
}

/** Most blacklist changes one call returns, and the default. */
export const BLACKLIST_MAX_PAGE = 500;
const BLACKLIST_DEFAULT_PAGE = 100;

function blacklistEntryView(row: BlacklistEntryRow): BlacklistEntry {
  return Object.assign(new BlacklistEntry(), {
    version: Number(row.version),
    asn: row.asn,
    action: row.action as BlacklistActionEnum,
    reason: row.reason,
    at: row.at,
    card: toGlobalId('Card', row.card_id),
    cardCompany: toGlobalId('CardCompany', row.card_company_id),
  });
}

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

export function balanceTransferView(t: BalanceTransfer): BalanceTransferType {
  return Object.assign(new BalanceTransferType(), {
    id: toGlobalId('BalanceTransfer', t.id),
    fromCard: toGlobalId('Card', t.fromCardId),
    toCard: toGlobalId('Card', t.toCardId),
    dueAt: t.dueAt,
    transferredAt: t.transferredAt,
    amount: t.amount === null ? null : Money.of(t.amount, t.currency),
  });
}

function activityView(row: CardActivityRow): CardActivity {
  return Object.assign(new CardActivity(), {
    id: toGlobalId('CardActivity', row.id),
    at: row.at,
    kind: row.kind as CardActivityKindEnum,
    amount: Money.of(row.amount, row.currency),
    balanceAfter: Money.of(row.balanceAfter, row.currency),
    description: row.description,
    reference: row.reference ? toGlobalId(row.reference.type, row.reference.id) : null,
  });
}

nodeLoaders.set('Card', async (ctx, id) => {
  const row = ctx.principal && (await findCardFor(ctx.em, ctx.principal, id));
  return row ? cardView(row, ctx.principal) : null;
});

nodeLoaders.set('BalanceTransfer', async (ctx, id) => {
  const row = ctx.principal && (await findBalanceTransferFor(ctx.em, ctx.principal, id));
  return row ? balanceTransferView(row) : null;
});

nodeLoaders.set('CardActivity', async (ctx, id) => {
  const row = ctx.principal && (await findCardActivityFor(ctx.em, ctx.principal, id));
  return row ? activityView(row) : null;
});

@Resolver(() => CardType)
export class CardResolver {
  @Authorized()
  @Query(() => CardType, { nullable: true, description: 'A card you may see: any (operator), those your card company issued (issuer), your cardholder’s registered cards (app).' })
  async card(@Arg('id', () => ID, { description: 'Global id of the Card.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<CardType | null> {
    const row = await findCardFor(ctx.em, ctx.principal!, fromGlobalId(id, 'Card').id);
    return row ? cardView(row, ctx.principal) : null;
  }

  @Authorized()
  @Query(() => CardConnection, { description: 'The cards you may see, in card-number order: every card (operator, scope cards:read), those your card company issued (issuer, cards:read), your cardholder’s registered cards (app, card:read).' })
  async cards(
    @Args() args: ConnectionArgs,
    @Ctx() ctx: GraphQLContext,
    @Arg('number', () => String, { nullable: true, description: 'Only the card with this number (the one printed on it): a search, within the cards you may see.' }) number?: string | null,
  ) {
    const page = pageRequest(args);
    const rows = await listCardsFor(ctx.em, ctx.principal!, { afterNumber: page.after?.sortKey, limit: page.fetch, number: number?.replace(/\s+/g, '') || undefined });
    return toConnection(rows, page, (r) => ({ sortKey: r.card_number, id: r.id }), (r) => cardView(r, ctx.principal));
  }

  @FieldResolver(() => Money, { description: 'The host’s shadow of the on-card purse (a ledger account), in the currency of the card company’s city; zero before the card’s first load.' })
  async purseBalance(@Root() card: CardType, @Ctx() ctx: GraphQLContext): Promise<Money> {
    return Money.of(await cardPurseBalanceOf(ctx.em, { asn: card.asnValue, currency: card.currency }), card.currency);
  }

  @FieldResolver(() => CardType, { nullable: true, description: 'The card that replaced this one, once REPLACED.' })
  async replacedBy(@Root() card: CardType, @Ctx() ctx: GraphQLContext): Promise<CardType | null> {
    const row = card.replacedById && ctx.principal ? await findCardFor(ctx.em, ctx.principal, card.replacedById) : null;
    return row ? cardView(row, ctx.principal) : null;
  }

  @FieldResolver(() => BalanceTransferType, { nullable: true, description: 'The replacement balance transfer: out of this card once it is REPLACED, else into it if it is a replacement.' })
  async balanceTransfer(@Root() card: CardType, @Ctx() ctx: GraphQLContext): Promise<BalanceTransferType | null> {
    const transfer = await balanceTransferOf(ctx.em, card.uuid);
    return transfer ? balanceTransferView(transfer) : null;
  }

  @FieldResolver(() => CardActivityConnection, {
    description: 'What moved the card’s purse, newest first, with the balance after each movement: by default the last six months; a window of at most 13 months.',
  })
  async history(@Root() card: CardType, @Args() args: CardHistoryArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    if (page.after && !/^[0-9]{1,18}$/.test(page.after.id)) throw badInput('`after` is not a cursor this connection gave out');
    let window: ReturnType<typeof historyWindow>;
    try {
      window = historyWindow(args, new Date());
    } catch (err) {
      if (err instanceof HistoryWindowError) throw badInput(err.message);
      throw err;
    }
    const rows = ctx.principal ? await cardHistoryFor(ctx.em, ctx.principal, card.uuid, { ...window, kinds: args.kinds as CardActivityKind[] | null | undefined, afterId: page.after?.id, limit: page.fetch }) : [];
    return toConnection(rows, page, (r) => ({ sortKey: r.id, id: r.id }), activityView);
  }

  @Authorized('ISSUER', 'cards:write')
  @Mutation(() => CardPayload, { description: 'Issues a card of your card company: the number Luhn-checked, number and ASN unique. Card company, scope cards:write.' })
  async issueCard(@Arg('input', () => IssueCardInput, { description: 'The card to issue.' }) input: IssueCardInput, @Ctx() ctx: GraphQLContext): Promise<CardPayload> {
    const principal = ctx.principal!;
    let holderId: string | null = null;
    if (input.holder) {
      const decoded = fromGlobalId(input.holder);
      if (decoded.type !== 'Cardholder') return { card: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no cardholder ${input.holder}`, ['input', 'holder'])] };
      holderId = decoded.id;
    }
    return withUserErrors<CardPayload>(async () => {
      const row = await issueCard(ctx.em, principal.tenantId ?? '', {
        cardNumber: input.cardNumber,
        asn: input.asn,
        cardType: input.cardType,
        keyVersion: input.keyVersion,
        issuedOn: input.issuedOn,
        expiresOn: input.expiresOn,
        concession: input.concession ?? undefined,
        concessionValidUntil: input.concessionValidUntil ?? null,
        concessionProof: input.concessionProof ?? null,
        holderId,
      });
      return { card: cardView(row, principal), userErrors: [] };
    }, { card: null });
  }

  /**
   * A status change by the card's issuer, or (`byHolder`) by a cardholder app for a card registered
   * to its holder. The blacklist entry the change implies is written by transitionCard, in the
   * same transaction.
   */
  private async transition(ctx: GraphQLContext, input: CardStatusInput, to: CardStatus, onlyFrom?: readonly CardStatus[], byHolder = false): Promise<CardPayload> {
    const principal = ctx.principal!;
    const id = fromGlobalId(input.card, 'Card').id;
    return withUserErrors<CardPayload>(async () => {
      const row = await ctx.em.transactional(async (tx) => {
        // Another company's (or holder's) card answers exactly like a card that does not exist.
        const owned = byHolder ? await findCardOfHolder(tx, principal.holderId, id) : await findCardOfCompany(tx, principal.tenantId ?? '', id);
        if (!owned) throw new CardError('NOT_FOUND', `no card ${input.card} ${byHolder ? 'registered to your cardholder' : 'of your card company'}`, 'card');
        return transitionCard(tx, id, to, { reason: input.reason ?? null, by: principal.clientId, onlyFrom });
      });
      return { card: cardView(row, principal), userErrors: [] };
    }, { card: null });
  }

  @Authorized('ISSUER', 'cards:write')
  @Mutation(() => CardPayload, { description: 'Blocks an ACTIVE card of your card company: it goes on the blacklist, no further use until unblocked. Card company, scope cards:write.' })
  blockCard(@Arg('input', () => CardStatusInput, { description: 'The card to block, and why.' }) input: CardStatusInput, @Ctx() ctx: GraphQLContext) {
    return this.transition(ctx, input, 'BLOCKED');
  }

  @Authorized('ISSUER', 'cards:write')
  @Mutation(() => CardPayload, { description: 'Unblocks a BLOCKED card of your card company: it is ACTIVE again and comes off the blacklist. Card company, scope cards:write.' })
  unblockCard(@Arg('input', () => CardStatusInput, { description: 'The card to unblock, and why.' }) input: CardStatusInput, @Ctx() ctx: GraphQLContext) {
    // Only a blocked card is unblocked: a LOST one is found through its own flow.
    return this.transition(ctx, input, 'ACTIVE', ['BLOCKED']);
  }

  @Authorized(...scopeByKind({ CARDHOLDER_APP: 'card:manage', ISSUER: 'cards:write' }))
  @Mutation(() => CardPayload, {
    description:
      'Reports an ACTIVE card lost: it becomes LOST and its ASN goes on the blacklist. A cardholder app (scope card:manage) for a card registered to its cardholder; the card company (scope cards:write) for any card it issued.',
  })
  reportCardLost(@Arg('input', () => CardStatusInput, { description: 'The card reported lost, and why.' }) input: CardStatusInput, @Ctx() ctx: GraphQLContext) {
    const principal = ctx.principal!;
    const byHolder = principal.kind === 'CARDHOLDER_APP';
    return this.transition(ctx, input, 'LOST', ['ACTIVE'], byHolder);
  }

  @Authorized('ISSUER', 'cards:write')
  @Mutation(() => ReplaceCardPayload, {
    description:
      'Replaces (补卡) an ACTIVE, LOST or BLOCKED card of your card company with a new card for the same cardholder and concession: the old card becomes REPLACED and goes on the blacklist, and its purse balance moves to the new card once the wait for its offline transactions is over (`balanceTransfer.dueAt`). Card company, scope cards:write.',
  })
  async replaceCard(@Arg('input', () => ReplaceCardInput, { description: 'The card to replace, and its replacement.' }) input: ReplaceCardInput, @Ctx() ctx: GraphQLContext): Promise<ReplaceCardPayload> {
    const principal = ctx.principal!;
    const id = fromGlobalId(input.card, 'Card').id;
    const { cardNumber, asn, cardType, keyVersion, issuedOn, expiresOn } = input.newCard;
    return withUserErrors<ReplaceCardPayload>(async () => {
      const out = await replaceCard(ctx.em, principal.tenantId ?? '', id, {
        newCard: { cardNumber, asn, cardType, keyVersion, issuedOn, expiresOn },
        reason: input.reason ?? null,
        by: principal.clientId,
        transferDelaySeconds: ctx.config.balanceTransferDelaySeconds,
      });
      return { card: cardView(out.card, principal), oldCard: cardView(out.oldCard, principal), balanceTransfer: balanceTransferView(out.transfer), userErrors: [] };
    }, { card: null, oldCard: null, balanceTransfer: null });
  }

  @Authorized('ISSUER', 'cards:write')
  @Mutation(() => CardPayload, { description: 'Marks a LOST card of your card company found: it is ACTIVE again and comes off the blacklist. Card company, scope cards:write.' })
  reportCardFound(@Arg('input', () => CardStatusInput, { description: 'The card found, and a note for its status history.' }) input: CardStatusInput, @Ctx() ctx: GraphQLContext) {
    return this.transition(ctx, input, 'ACTIVE', ['LOST']);
  }

  @Authorized('OPERATOR', 'ISSUER', 'cards:read')
  @Query(() => BlacklistDelta, {
    description:
      'The blacklist changes after version `since`, in version order, for terminals to keep their copy current: every card company’s (operator), your own card company’s (issuer).',
  })
  async blacklist(
    @Arg('since', () => Int, { nullable: true, defaultValue: 0, description: 'The highest version you already hold (0 or null for the whole list).' }) since: number | null | undefined,
    @Arg('first', () => Int, { nullable: true, description: `Most changes to return, 1 to ${BLACKLIST_MAX_PAGE} (default ${BLACKLIST_DEFAULT_PAGE}).` }) first: number | null | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<BlacklistDelta> {
    since ??= 0;
    if (!Number.isInteger(since) || since < 0) throw badInput('`since` is a version, 0 or more');
    const limit = first ?? BLACKLIST_DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > BLACKLIST_MAX_PAGE) throw badInput(`\`first\` must be between 1 and ${BLACKLIST_MAX_PAGE}`);
    const { entries, latestVersion } = await blacklistSince(ctx.em, ctx.principal!, { since, limit: limit + 1 });
    return Object.assign(new BlacklistDelta(), { entries: entries.slice(0, limit).map(blacklistEntryView), latestVersion: Number(latestVersion), hasMore: entries.length > limit });
  }
}
