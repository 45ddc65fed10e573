import type { EntityManager } from '@mikro-orm/postgresql';
import type { JWK } from 'jose';
import { findBiller, findCardCompany, findMerchant } from '../tenancy/tenancy.service.js';
import { GraphQLError } from 'graphql';
import { Arg, Args, ArgsType, Authorized, Ctx, Field, Mutation, Query, Resolver } from 'type-graphql';
import { ConnectionArgs, connectionType, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { PrincipalKind } from './principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { ClientKindScopesType, CreateOAuthClientInput, CreateOAuthClientPayload, CreatePartyUserInput, CreatePartyUserPayload, PartyUserType, DisableOAuthClientInput, DisableOAuthClientPayload, OAuthClientType, OAuthScopeType, PrincipalKindEnum, ViewerType } from './auth.types.js';
import { listClientsFor, scopesByKind } from './client-listing.js';
import { createClient, disableClient, type OAuthClientRow } from './clients.service.js';
import { createPartyUserAs, type PartyUser } from './party-users.service.js';
import { scopeByKind } from './scopes.js';

/** The GraphQL type of each kind's tenant, for global ids. */
export const TENANT_TYPE: Record<PrincipalKind, string | null> = {
  OPERATOR: null,
  MERCHANT: 'Merchant',
  BILLER: 'Biller',
  ISSUER: 'CardCompany',
  CARDHOLDER_APP: 'CardCompany',
};

export function clientView(row: OAuthClientRow): OAuthClientType {
  return Object.assign(new OAuthClientType(), {
    clientId: row.client_id,
    kind: row.kind as PrincipalKindEnum,
    name: row.name,
    scopes: row.scopes,
    tokenEndpointAuthMethod: row.auth_method,
    dpopBound: row.dpop_bound,
    redirectUris: row.redirect_uris,
    disabled: row.disabled,
    tenant: row.tenant_id && TENANT_TYPE[row.kind] ? toGlobalId(TENANT_TYPE[row.kind]!, row.tenant_id) : null,
    createdAt: row.created_at,
  });
}

const OAuthClientConnection = connectionType(OAuthClientType, 'OAuthClient');

@ArgsType()
class OAuthClientsArgs extends ConnectionArgs {
  @Field(() => PrincipalKindEnum, { nullable: true, description: 'Only clients of this kind.' })
  kind?: PrincipalKindEnum | null;
}

/** Whether the tenant a new client would act for exists (a client of a missing tenant sees nothing). */
export async function tenantExists(em: EntityManager, kind: PrincipalKind, tenantId: string): Promise<boolean> {
  if (kind === 'MERCHANT') return (await findMerchant(em, tenantId)) !== null;
  if (kind === 'BILLER') return (await findBiller(em, tenantId)) !== null;
  if (kind === 'ISSUER' || kind === 'CARDHOLDER_APP') return (await findCardCompany(em, tenantId)) !== null;
  return false;
}

export function partyUserView(user: PartyUser): PartyUserType {
  return Object.assign(new PartyUserType(), {
    id: toGlobalId('PartyUser', user.id),
    username: user.username,
    displayName: user.displayName,
    signInClient: user.clientId,
    admin: user.admin,
    mustChangePassword: user.mustChangePassword,
    createdAt: user.createdAt,
  });
}

@Resolver()
export class AuthResolver {
  @Query(() => ViewerType, { nullable: true, description: 'Who is calling, per the access token; null without one.' })
  viewer(@Ctx() ctx: GraphQLContext): ViewerType | null {
    const p = ctx.principal;
    if (!p) return null;
    const tenantType = TENANT_TYPE[p.kind];
    return Object.assign(new ViewerType(), {
      kind: p.kind as PrincipalKindEnum,
      clientId: p.clientId,
      tenantId: tenantType && p.tenantId ? toGlobalId(tenantType, p.tenantId) : null,
      holderId: p.holderId ? toGlobalId('Cardholder', p.holderId) : null,
      scopes: p.scopes,
    });
  }

  @Authorized('OPERATOR', 'MERCHANT', 'BILLER', 'ISSUER')
  @Query(() => OAuthClientConnection, {
    description:
      'OAuth clients, newest first, never a secret: every client (operator, `clients:manage`); a party\'s own clients (its admin user, signed in to the console, `users:manage`). FORBIDDEN to anyone else: a back end\'s token names no person, a clerk is no admin.',
  })
  async oauthClients(@Args() args: OAuthClientsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listClientsFor(ctx.em, ctx.principal!, { kind: args.kind ?? undefined }, { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch });
    if (!rows) throw new GraphQLError('Only the operator (clients:manage) or a party’s admin user signed in to the console (users:manage) lists OAuth clients', { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.client_id }), clientView);
  }

  @Query(() => [ClientKindScopesType], { description: 'The scopes a client of each kind may be registered with (createOAuthClient refuses others): public, as docs/auth.md#scopes is.' })
  clientKindScopes(): ClientKindScopesType[] {
    return scopesByKind().map((k) =>
      Object.assign(new ClientKindScopesType(), {
        kind: k.kind as PrincipalKindEnum,
        scopes: k.scopes.map((s) => Object.assign(new OAuthScopeType(), s)),
      }),
    );
  }

  @Authorized('OPERATOR', 'clients:manage')
  @Mutation(() => DisableOAuthClientPayload, { description: 'Disables a client: it gets no new tokens, and the API refuses its current ones at once. Operator only, scope `clients:manage`.' })
  async disableOAuthClient(@Arg('input', () => DisableOAuthClientInput, { description: 'The client to disable.' }) input: DisableOAuthClientInput, @Ctx() ctx: GraphQLContext): Promise<DisableOAuthClientPayload> {
    const client = await disableClient(ctx.em, input.clientId);
    if (!client) return { client: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no client ${input.clientId}`, ['input', 'clientId'])] };
    return { client: clientView(client), userErrors: [] };
  }

  @Authorized('OPERATOR', 'clients:manage')
  @Mutation(() => CreateOAuthClientPayload, { description: 'Registers an OAuth client for a tenant; the payload shows its secret once. Operator only, scope `clients:manage`.' })
  async createOAuthClient(@Arg('input', () => CreateOAuthClientInput, { description: 'The client to register.' }) input: CreateOAuthClientInput, @Ctx() ctx: GraphQLContext): Promise<CreateOAuthClientPayload> {
    const tenantType = TENANT_TYPE[input.kind];
    if (tenantType && !input.tenant) return { client: null, clientSecret: null, userErrors: [userError(UserErrorCode.INVALID_INPUT, `a ${input.kind} client needs a ${tenantType} tenant`, ['input', 'tenant'])] };
    if (!tenantType && input.tenant) return { client: null, clientSecret: null, userErrors: [userError(UserErrorCode.INVALID_INPUT, 'an operator client has no tenant', ['input', 'tenant'])] };
    const tenantId = tenantType && input.tenant ? fromGlobalId(input.tenant, tenantType).id : null;
    if (tenantId && !(await tenantExists(ctx.em, input.kind, tenantId))) {
      return { client: null, clientSecret: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no ${tenantType} ${input.tenant}`, ['input', 'tenant'])] };
    }
    return withUserErrors<CreateOAuthClientPayload>(
      async () => {
        const { client, clientSecret } = await createClient(ctx.em, {
          kind: input.kind,
          tenantId,
          name: input.name,
          scopes: input.scopes,
          jwks: (input.jwks as { keys: JWK[] } | null) ?? undefined,
          redirectUris: input.redirectUris ?? undefined,
          dpopBound: input.dpopBound ?? false,
        });
        return { client: clientView(client), clientSecret, userErrors: [] };
      },
      { client: null, clientSecret: null },
    );
  }

  @Authorized(...scopeByKind({ OPERATOR: 'clients:manage', MERCHANT: 'users:manage', BILLER: 'users:manage', ISSUER: 'users:manage' }))
  @Mutation(() => CreatePartyUserPayload, {
    description:
      'Makes a console user of a party, with an initial password shown once that the person replaces at the first sign-in. The operator (`clients:manage`) for any party; a party\'s admin user, signed in to the console (`users:manage`), for its own party.',
  })
  async createPartyUser(@Arg('input', () => CreatePartyUserInput, { description: 'The user to make.' }) input: CreatePartyUserInput, @Ctx() ctx: GraphQLContext): Promise<CreatePartyUserPayload> {
    const p = ctx.principal!;
    return withUserErrors<CreatePartyUserPayload>(
      async () => {
        const { user, initialPassword } = await createPartyUserAs(ctx.em, p, { clientId: input.signInClient, username: input.username, displayName: input.displayName, admin: input.admin ?? false });
        return { user: partyUserView(user), initialPassword, userErrors: [] };
      },
      { user: null, initialPassword: null },
    );
  }
}
