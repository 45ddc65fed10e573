import { hkdfSync } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { NextFunction, Request, Response } from 'express';
import Provider, { errors, interactionPolicy, type Configuration } from 'oidc-provider';
import type { Config } from '../config/config.js';
import { findCardholder } from './cardholders.service.js';
import { accountMayUseClient, findPartyUser } from './party-users.service.js';
import { assertionLifetimeProblem } from './client-authentication.js';
import { hashSecret } from './clients.service.js';
import { SIGNING_ALG, type SigningKeys } from './keys.js';
import { oauthPage } from './pages.js';
import { ALL_SCOPES } from './scopes.js';

/** Access tokens live at most 10 minutes: short enough that revocation rarely matters. */
export const ACCESS_TOKEN_TTL_SECONDS = 600;

export const issuerOf = (config: Config) => `${config.publicUrl}/oauth`;
/** The resource indicator (RFC 8707) and `aud` of every access token: the GraphQL API. */
export const resourceOf = (config: Config) => `${config.publicUrl}/graphql`;

/**
 * The authorization server (DESIGN.md §5): oidc-provider with client credentials, authorization
 * code + PKCE for cardholder apps, JWT access tokens for our one resource, introspection,
 * revocation, DPoP, client_secret_basic and private_key_jwt. Storage is PostgreSQL.
 */
export function createAuthorizationServer(opts: { config: Config; orm: MikroORM; keys: SigningKeys; kek: Buffer; adapter: Configuration['adapter'] }): Provider {
  const { config, orm } = opts;
  const resource = resourceOf(config);
  const configuration: Configuration = {
    adapter: opts.adapter,
    jwks: { keys: opts.keys.privateJwks as NonNullable<Configuration['jwks']>['keys'] },
    cookies: { keys: [Buffer.from(hkdfSync('sha256', opts.kek, Buffer.alloc(0), 'onecard oauth cookies', 32)).toString('base64url')] },
    scopes: ['openid', ...ALL_SCOPES],
    claims: { openid: ['sub'] },
    clientAuthMethods: ['client_secret_basic', 'private_key_jwt', 'none'],
    // oidc-provider keeps an assertion's jti until its exp, and takes any exp: bound it.
    async assertJwtClientAuthClaimsAndHeader(_ctx, claims) {
      const tooLong = assertionLifetimeProblem(claims.exp, Math.floor(Date.now() / 1000));
      if (tooLong) throw new errors.InvalidClientAuth(tooLong);
    },
    clientDefaults: { id_token_signed_response_alg: SIGNING_ALG, grant_types: ['client_credentials'], response_types: [] },
    pkce: { required: () => true },
    responseTypes: ['code'],
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL_SECONDS,
      ClientCredentials: ACCESS_TOKEN_TTL_SECONDS,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 30 * 24 * 3600,
    },
    features: {
      devInteractions: { enabled: false },
      // Not offered: our clients use client credentials or code + PKCE, and nothing else.
      pushedAuthorizationRequests: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: false },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator, client) => {
          if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource; use ${resource}`);
          return {
            scope: client.scope ?? '',
            audience: resource,
            accessTokenTTL: ACCESS_TOKEN_TTL_SECONDS,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: SIGNING_ALG } },
          };
        },
      },
    },
    interactions: { policy: signInPolicy(orm), url: (_ctx, interaction) => `/oauth/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      // A cardholder (for an app) or a party's user (for the console): the client decides which may sign in.
      const em = orm.em.fork();
      const account = (await findCardholder(em, sub)) ?? (await findPartyUser(em, sub));
      return account && { accountId: account.id, claims: async () => ({ sub: account.id }) };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = oauthPage('Sign-in problem', `<p>${escapeHtml(String(out.error_description ?? out.error))}</p>`);
    },
  };
  const provider = new Provider(issuerOf(config), configuration);
  provider.proxy = config.trustProxy; // only behind a proxy that sets X-Forwarded-* itself
  return provider;
}

/**
 * oidc-provider's prompts, with one more reason to ask for a login: the browser's sign-in session
 * belongs to an account that may not use this client. The session is per browser, not per client:
 * without this, a cardholder signed in for an app (or the biller's clerk) who then opened the
 * merchant's console sign-in would only be asked to consent, and get a token acting as the merchant.
 */
function signInPolicy(orm: MikroORM) {
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(
    new interactionPolicy.Check('account_not_for_client', 'the signed-in account may not use this client', async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      const clientId = ctx.oidc.client?.clientId;
      if (!accountId || !clientId) return interactionPolicy.Check.NO_NEED_TO_PROMPT; // no session: the login prompt asks anyway
      return (await accountMayUseClient(orm.em.fork(), accountId, clientId)) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * oidc-provider compares client secrets in clear; we keep only their hashes and give it those,
 * so the secret a client sends in HTTP Basic is hashed before oidc-provider sees it.
 */
export function hashBasicSecret(req: Request, _res: Response, next: NextFunction): void {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
      const formDecode = (s: string) => {
        try {
          return decodeURIComponent(s.replace(/\+/g, ' '));
        } catch {
          return s;
        }
      };
      const id = decoded.slice(0, colon);
      const secret = formDecode(decoded.slice(colon + 1));
      req.headers.authorization = `Basic ${Buffer.from(`${id}:${encodeURIComponent(hashSecret(secret))}`).toString('base64')}`;
    }
  }
  next();
}
