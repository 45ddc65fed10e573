import { GraphQLError } from 'graphql';
import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { Principal } from '../auth/principal.js';
import { scopeByKind } from '../auth/scopes.js';
import { ALGORITHM_ID_MEANINGS, ALG_SM4 } from '../cardcrypto/algorithm.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { type UserError, userError, UserErrorCode } from '../graphql/user-error.js';
import { CardKeyAlgorithmEnum } from '../readers/keys/master-keys.types.js';
import { profileFromText } from '../readers/session/card-profile.js';
import { CardProfileRefused, profilesOf, setCardProfile, type StoredCardProfile } from '../readers/session/card-profile.service.js';
import { selectionView } from '../readers/session/card-session.resolver.js';
import { CardAlgorithmIdType, CardProfilePayload, CardProfileType, M1LayoutType, SetCardProfileInput } from './card-profiles.types.js';

/** Reading and setting card profiles (issue 24 item 2): the card company for its own cards, the operator for any. Thin: the rules are in readers/session/card-profile.ts. */

const PROFILE_SCOPES = scopeByKind({ ISSUER: 'readers:manage', OPERATOR: 'readers:manage' });

const view = (p: StoredCardProfile): CardProfileType =>
  Object.assign(new CardProfileType(), {
    cardCompany: toGlobalId('CardCompany', p.cardCompanyId!),
    product: p.product,
    isDefault: p.id === null,
    selection: p.selection.map(selectionView),
    loadKeyIndex: p.loadKeyIndex,
    purchaseKeyIndex: p.purchaseKeyIndex,
    acceptedAlgorithms: p.algorithmIds.map((id) => {
      const known = ALGORITHM_ID_MEANINGS.get(id)!;
      return Object.assign(new CardAlgorithmIdType(), { id, cipher: known.cipher === ALG_SM4 ? CardKeyAlgorithmEnum.SM4 : CardKeyAlgorithmEnum.TDES, meaning: known.meaning });
    }),
    publicDataSfi: p.publicDataSfi,
    transactionLogSfi: p.transactionLogSfi,
    m1: Object.assign(new M1LayoutType(), p.m1),
    toleratedStatusWords: p.toleratedStatusWords,
    updatedAt: p.updatedAt,
  });

/**
 * The card company a request is about: a card company's own (naming another answers as a company
 * that does not exist), any existing one for the operator, who must name it.
 */
async function cardCompanyFor(ctx: GraphQLContext, principal: Principal, globalId: string | null | undefined): Promise<string | null> {
  const named = globalId ? fromGlobalId(globalId, 'CardCompany').id : null;
  if (principal.kind === 'ISSUER') return named === null || named === principal.tenantId ? principal.tenantId! : null;
  if (!named) throw new GraphQLError('the operator names the card company (cardCompany)', { extensions: { code: 'BAD_USER_INPUT' } });
  const [company] = await ctx.em.execute<{ id: string }[]>(`select id from card_company where id = ?`, [named]);
  return company ? company.id : null;
}

@Resolver()
export class CardProfileResolver {
  @Authorized(...PROFILE_SCOPES)
  @Query(() => [CardProfileType], { description: 'A card company’s card profiles: its own first (the default while it has set none), then its products’. A card company reads its own; the operator names one. Scope readers:manage.' })
  async cardProfiles(@Arg('cardCompany', () => ID, { nullable: true, description: 'The CardCompany; a card company may omit it.' }) cardCompany: string | null, @Ctx() ctx: GraphQLContext): Promise<CardProfileType[]> {
    const companyId = await cardCompanyFor(ctx, ctx.principal!, cardCompany);
    return companyId ? (await profilesOf(ctx.em, companyId)).map(view) : [];
  }

  @Authorized(...PROFILE_SCOPES)
  @Mutation(() => CardProfilePayload, { description: 'Sets a card company’s profile, or one of its products’, whole. Card sessions opened from now on use it. Validated first; nothing is written when refused. Scope readers:manage.' })
  async setCardProfile(@Arg('input', () => SetCardProfileInput, { description: 'The profile.' }) input: SetCardProfileInput, @Ctx() ctx: GraphQLContext): Promise<CardProfilePayload> {
    const refused = (errors: UserError[]) => Object.assign(new CardProfilePayload(), { profile: null, userErrors: errors });
    const companyId = await cardCompanyFor(ctx, ctx.principal!, input.cardCompany);
    if (!companyId) return refused([userError(UserErrorCode.NOT_FOUND, 'no such card company', ['input', 'cardCompany'])]);
    try {
      const stored = await setCardProfile(ctx.em, companyId, profileFromText({ ...input, m1: input.m1 ? { ...input.m1 } : null }));
      return Object.assign(new CardProfilePayload(), { profile: view(stored), userErrors: [] });
    } catch (err) {
      if (!(err instanceof CardProfileRefused)) throw err;
      return refused(err.problems.map((p) => userError(UserErrorCode[p.code], p.message, ['input', ...p.field])));
    }
  }
}
