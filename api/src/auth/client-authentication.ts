import { timingSafeEqual } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Request } from 'express';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { findClient, hashSecret, type OAuthClientRow } from './clients.service.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * A private_key_jwt assertion may expire at most this far ahead: it is meant for one request, and
 * its id is kept (to refuse a replay) until it expires.
 */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

/** Why an assertion's `exp` is refused, or undefined when it is near enough. */
export function assertionLifetimeProblem(exp: unknown, nowSeconds: number): string | undefined {
  if (typeof exp !== 'number') return undefined; // a missing exp is refused by the verifier itself
  if (exp - nowSeconds > MAX_ASSERTION_LIFETIME_SECONDS) return `client_assertion expires too far ahead: exp may be at most ${MAX_ASSERTION_LIFETIME_SECONDS / 60} minutes from now`;
  return undefined;
}

export class ClientAuthError extends Error {}

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * Authenticates the client of a request to our own endpoints (JWT revocation and introspection),
 * by the method it is registered with: client_secret_basic, private_key_jwt (RFC 7523, each
 * assertion used once), or none (a public app naming itself).
 */
export async function authenticateClient(em: EntityManager, req: Request, endpoint: string, issuer: string): Promise<OAuthClientRow> {
  const body = (req.body ?? {}) as Record<string, string | undefined>;
  const header = req.headers.authorization;
  let client: OAuthClientRow | undefined;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    client = await findClient(em, formDecode(decoded.slice(0, colon)));
    const given = Buffer.from(hashSecret(formDecode(decoded.slice(colon + 1))));
    const stored = Buffer.from(client?.secret_hash ?? '');
    if (!client || client.auth_method !== 'client_secret_basic' || given.length !== stored.length || !timingSafeEqual(given, stored)) {
      throw new ClientAuthError('client authentication failed');
    }
  } else if (body.client_assertion_type === JWT_BEARER && body.client_assertion) {
    let claimed: string | undefined;
    try {
      claimed = decodeJwt(body.client_assertion).sub;
    } catch {
      throw new ClientAuthError('client_assertion is not a JWT');
    }
    client = claimed ? await findClient(em, claimed) : undefined;
    if (!client || client.auth_method !== 'private_key_jwt' || !client.jwks) throw new ClientAuthError('client authentication failed');
    try {
      const { payload } = await jwtVerify(body.client_assertion, createLocalJWKSet(client.jwks), {
        issuer: client.client_id,
        subject: client.client_id,
        // The issuer, this endpoint, or the token endpoint: what client libraries put in `aud`.
        audience: [issuer, endpoint, `${issuer}/token`],
        requiredClaims: ['jti', 'exp'],
      });
      const tooLong = assertionLifetimeProblem(payload.exp, Math.floor(Date.now() / 1000));
      if (tooLong) throw new ClientAuthError(tooLong);
      const [fresh] = await em.execute(`insert into seen_jti (jti, expires_at) values (?, to_timestamp(?)) on conflict do nothing returning jti`, [
        `assertion:${client.client_id}:${payload.jti}`,
        payload.exp!,
      ]);
      if (!fresh) throw new ClientAuthError('client_assertion was used before');
    } catch (err) {
      throw err instanceof ClientAuthError ? err : new ClientAuthError('client_assertion does not verify');
    }
  } else if (body.client_id) {
    client = await findClient(em, body.client_id);
    if (!client || client.auth_method !== 'none') throw new ClientAuthError('client authentication failed');
  } else {
    throw new ClientAuthError('no client authentication');
  }
  if (client.disabled) throw new ClientAuthError('client is disabled');
  return client;
}
