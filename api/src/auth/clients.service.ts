import { createHash, randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { JWK } from 'jose';
import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import type { PrincipalKind } from './principal.js';
import { SCOPES, scopesForKind } from './scopes.js';

export type ClientAuthMethod = 'client_secret_basic' | 'private_key_jwt' | 'none';

export interface OAuthClientRow {
  client_id: string;
  kind: PrincipalKind;
  tenant_id: string | null;
  name: string;
  scopes: string[];
  secret_hash: string | null;
  auth_method: ClientAuthMethod;
  jwks: { keys: JWK[] } | null;
  redirect_uris: string[];
  dpop_bound: boolean;
  disabled: boolean;
  created_at: Date;
}

export interface CreateClientInput {
  kind: PrincipalKind;
  tenantId: string | null;
  name: string;
  scopes: string[];
  /** Public keys for private_key_jwt; without them the client gets a secret (or none, for an app). */
  jwks?: { keys: JWK[] };
  redirectUris?: string[];
  dpopBound?: boolean;
}

export type ClientErrorCode = 'INVALID_SCOPE' | 'INVALID_JWKS' | 'INVALID_REDIRECT_URI' | 'TENANT_REQUIRED';

/** A client registration refused (the CLI prints it; createOAuthClient answers INVALID_INPUT on `input`). */
export class ClientError extends DomainError<ClientErrorCode> {
  constructor(code: ClientErrorCode, message: string) {
    super(code, message, UserErrorCode.INVALID_INPUT);
  }
}

/** Secrets are 256 random bits, so a plain SHA-256 is a safe way to keep them (no guessing). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** Redirect URIs are https, or http on a loopback host (a developer's machine), without a fragment. */
export function redirectUriAllowed(uri: string): boolean {
  const url = URL.canParse(uri) ? new URL(uri) : undefined;
  return !!url && !url.hash && (url.protocol === 'https:' || (url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)));
}

function validate(input: CreateClientInput): ClientAuthMethod {
  const allowed = scopesForKind(input.kind);
  const bad = input.scopes.filter((s) => !allowed.includes(s));
  if (bad.length) throw new ClientError('INVALID_SCOPE', `a ${input.kind} client may not hold ${bad.join(' ')}${bad.some((s) => !SCOPES[s]) ? ' (unknown scope)' : ''}`);
  if (input.kind !== 'OPERATOR' && !input.tenantId) throw new ClientError('TENANT_REQUIRED', `a ${input.kind} client belongs to a tenant`);
  if (input.jwks && (!Array.isArray(input.jwks.keys) || input.jwks.keys.length === 0 || input.jwks.keys.some((k) => 'd' in k || !['RSA', 'EC', 'OKP'].includes(String(k.kty))))) {
    throw new ClientError('INVALID_JWKS', 'jwks must hold one or more public RSA, EC or OKP keys (no private parts, no symmetric keys)');
  }
  const redirects = input.redirectUris ?? [];
  if (input.kind === 'CARDHOLDER_APP' && redirects.length === 0) throw new ClientError('INVALID_REDIRECT_URI', 'a cardholder app needs at least one redirect URI');
  for (const uri of redirects) if (!redirectUriAllowed(uri)) throw new ClientError('INVALID_REDIRECT_URI', `${uri}: redirect URIs are https, or http on a loopback host, without a fragment`);
  // A client with redirect URIs signs people in (code + PKCE): a cardholder app, or a party's
  // sign-in client for the web console (issue 26). A browser or a phone cannot keep a secret.
  if (redirects.length) return input.jwks ? 'private_key_jwt' : 'none';
  return input.jwks ? 'private_key_jwt' : 'client_secret_basic';
}

/** Registers a client. The secret, if any, is returned here once and only its hash is kept. */
export async function createClient(em: EntityManager, input: CreateClientInput): Promise<{ client: OAuthClientRow; clientSecret: string | null }> {
  const authMethod = validate(input);
  const clientId = `oc_${input.kind.toLowerCase().replace('_', '')}_${randomBytes(9).toString('base64url')}`;
  const clientSecret = authMethod === 'client_secret_basic' ? `ocs_${randomBytes(32).toString('base64url')}` : null;
  const [client] = await em.execute<OAuthClientRow[]>(
    `insert into oauth_client (client_id, kind, tenant_id, name, scopes, secret_hash, auth_method, jwks, redirect_uris, dpop_bound)
     values (?, ?, ?, ?, ?::text[], ?, ?, ?, ?::text[], ?) returning *`,
    [
      clientId,
      input.kind,
      input.tenantId,
      input.name,
      `{${input.scopes.map((s) => `"${s}"`).join(',')}}`,
      clientSecret && hashSecret(clientSecret),
      authMethod,
      input.jwks ? JSON.stringify(input.jwks) : null,
      `{${(input.redirectUris ?? []).map((u) => `"${u.replace(/["\\]/g, '\\$&')}"`).join(',')}}`,
      input.dpopBound ?? false,
    ],
  );
  return { client: client!, clientSecret };
}

export async function findClient(em: EntityManager, clientId: string): Promise<OAuthClientRow | undefined> {
  const [row] = await em.execute<OAuthClientRow[]>(`select * from oauth_client where client_id = ?`, [clientId]);
  return row;
}

/** The client as oidc-provider's metadata (RFC 7591 names). */
export function providerMetadata(client: OAuthClientRow): Record<string, unknown> {
  // Redirect URIs make a sign-in client (authorization code + PKCE); without them, client credentials.
  const app = client.redirect_uris.length > 0;
  return {
    client_id: client.client_id,
    client_name: client.name,
    // oidc-provider compares plain secrets; we give it the hash and hash what clients send (see provider.ts).
    ...(client.secret_hash ? { client_secret: client.secret_hash } : {}),
    token_endpoint_auth_method: client.auth_method,
    ...(client.jwks ? { jwks: client.jwks } : {}),
    grant_types: app ? ['authorization_code'] : ['client_credentials'],
    response_types: app ? ['code'] : [],
    redirect_uris: client.redirect_uris,
    scope: client.scopes.join(' '),
    dpop_bound_access_tokens: client.dpop_bound,
  };
}

/** Disables a client; the token verifier refuses its tokens from the next request on. */
export async function disableClient(em: EntityManager, clientId: string): Promise<OAuthClientRow | undefined> {
  const [row] = await em.execute<OAuthClientRow[]>(`update oauth_client set disabled = true where client_id = ? returning *`, [clientId]);
  return row;
}

/** A party's sign-in client for the web console, as the console's sign-in page lists it. */
export interface ConsoleSignInClient {
  clientId: string;
  kind: PrincipalKind;
  name: string;
  scope: string;
}

/**
 * The enabled sign-in clients of parties (not cardholder apps) whose redirect URI is the console's:
 * the console offers one "sign in" per party. Client ids of public clients are not secrets.
 */
export async function consoleSignInClients(em: EntityManager, redirectUri: string): Promise<ConsoleSignInClient[]> {
  const rows = await em.execute<{ client_id: string; kind: PrincipalKind; name: string; scopes: string[] }[]>(
    `select client_id, kind, name, scopes from oauth_client
      where kind <> 'CARDHOLDER_APP' and not disabled and auth_method = 'none' and ? = any (redirect_uris)
      order by case kind when 'MERCHANT' then 1 when 'BILLER' then 2 when 'ISSUER' then 3 else 4 end, name`,
    [redirectUri],
  );
  return rows.map((r) => ({ clientId: r.client_id, kind: r.kind, name: r.name, scope: r.scopes.join(' ') }));
}
