import { createHash } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { GraphQLError } from 'graphql';
import { calculateJwkThumbprint, createLocalJWKSet, EmbeddedJWK, errors as joseErrors, type JWK, type JWTPayload, jwtVerify, decodeProtectedHeader } from 'jose';
import type { Principal } from './principal.js';
import { SIGNING_ALG } from './keys.js';
import type { TokenStatus, TokenStatusCache } from './token-status-cache.js';

/** Why a token was refused, in `extensions.reason` of the UNAUTHENTICATED error. */
export type TokenRefusal =
  | 'MALFORMED_TOKEN'
  | 'UNSUPPORTED_ALGORITHM'
  | 'BAD_SIGNATURE'
  | 'TOKEN_EXPIRED'
  | 'WRONG_ISSUER'
  | 'WRONG_AUDIENCE'
  | 'TOKEN_REVOKED'
  | 'CLIENT_DISABLED'
  | 'DPOP_PROOF_REQUIRED'
  | 'DPOP_PROOF_INVALID'
  | 'DPOP_PROOF_REPLAYED';

export function unauthenticated(reason: TokenRefusal, message: string, scheme = 'Bearer'): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'UNAUTHENTICATED',
      reason,
      http: { status: 401, headers: new Map([['www-authenticate', `${scheme} error="invalid_token", error_description="${message.replace(/"/g, "'")}"`]]) },
    },
  });
}

/** The proof algorithms the authorization server accepts too (oidc-provider's defaults). */
const DPOP_ALGS = ['ES256', 'Ed25519', 'EdDSA'];
/** How far a DPoP proof's `iat` may be from our clock. */
const DPOP_WINDOW_SECONDS = 60;
/** Reload the published keys at most this often when a token names a kid we do not know. */
const KEY_RELOAD_INTERVAL_MS = 1_000;
const KEY_MAX_AGE_MS = 5 * 60_000;

export interface VerifierOptions {
  issuer: string;
  resource: string;
  loadPublicKeys: () => Promise<JWK[]>;
  /** Keeps client status and revocation between requests; without one, each request reads them. */
  statusCache?: TokenStatusCache;
}

export interface RequestCredentials {
  authorization?: string;
  dpop?: string;
  method: string;
}

/**
 * The resource side (DESIGN.md §5), a pipeline of checks each with its own refusal reason:
 * scheme → signature and algorithm → issuer → audience → expiry → sender constraint (DPoP) →
 * revocation and client status → principal.
 */
export class TokenVerifier {
  private jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  private loadedAt = 0;

  constructor(
    private readonly orm: MikroORM,
    private readonly opts: VerifierOptions,
  ) {}

  private async keySet(forceReload: boolean) {
    const age = Date.now() - this.loadedAt;
    // Reload on an unknown kid (a key rotated in), and anyway every few minutes (a key retired out).
    if (!this.jwks || age > KEY_MAX_AGE_MS || (forceReload && age > KEY_RELOAD_INTERVAL_MS)) {
      this.jwks = createLocalJWKSet({ keys: await this.opts.loadPublicKeys() });
      this.loadedAt = Date.now();
    }
    return this.jwks;
  }

  /** Verifies an access token's signature, issuer and audience; with `ignoreExpiration` for introspection. */
  async verifyJwt(token: string, ignoreExpiration = false): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthenticated('MALFORMED_TOKEN', 'The access token is not a JWT');
    }
    if (alg !== SIGNING_ALG) throw unauthenticated('UNSUPPORTED_ALGORITHM', `Access tokens are signed with ${SIGNING_ALG}, not ${alg}`);
    const options = { issuer: this.opts.issuer, audience: this.opts.resource, algorithms: [SIGNING_ALG], typ: 'at+jwt', clockTolerance: ignoreExpiration ? Number.MAX_SAFE_INTEGER : 5 };
    try {
      try {
        return (await jwtVerify(token, await this.keySet(false), options)).payload;
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        return (await jwtVerify(token, await this.keySet(true), options)).payload; // a key rotated in since we loaded
      }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthenticated('TOKEN_EXPIRED', 'The access token has expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        if (err.claim === 'iss') throw unauthenticated('WRONG_ISSUER', `The access token was not issued by ${this.opts.issuer}`);
        if (err.claim === 'aud') throw unauthenticated('WRONG_AUDIENCE', `The access token is not for ${this.opts.resource}`);
        throw unauthenticated('MALFORMED_TOKEN', `The access token's ${err.claim} claim is not acceptable`);
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey) {
        throw unauthenticated('BAD_SIGNATURE', 'The access token signature does not verify');
      }
      throw unauthenticated('MALFORMED_TOKEN', 'The access token is not valid');
    }
  }

  /** RFC 9449 §4.3 and §7.1: a fresh proof, for this request, by the key the token is bound to. */
  private async verifyDpop(proof: string | undefined, token: string, jkt: string, method: string): Promise<void> {
    if (!proof) throw unauthenticated('DPOP_PROOF_REQUIRED', 'This access token is DPoP-bound: send it as `Authorization: DPoP <token>` with a `DPoP` proof', 'DPoP');
    let claims: JWTPayload;
    let jwk: JWK | undefined;
    try {
      const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS });
      claims = verified.payload;
      jwk = verified.protectedHeader.jwk;
    } catch {
      throw unauthenticated('DPOP_PROOF_INVALID', 'The DPoP proof does not verify', 'DPoP');
    }
    const ath = createHash('sha256').update(token).digest('base64url');
    const now = Math.floor(Date.now() / 1000);
    const problem =
      claims.htm !== method
        ? 'htm does not match the request method'
        : typeof claims.htu !== 'string' || stripQuery(claims.htu) !== this.opts.resource
          ? `htu must be ${this.opts.resource}`
          : typeof claims.iat !== 'number' || Math.abs(claims.iat - now) > DPOP_WINDOW_SECONDS
            ? 'iat is too far from the server time'
            : claims.ath !== ath
              ? 'ath does not match the access token'
              : typeof claims.jti !== 'string' || claims.jti.length > 200
                ? 'jti is missing'
                : jkt !== (await calculateJwkThumbprint(jwk!))
                  ? 'the proof key is not the key the token is bound to'
                  : undefined;
    if (problem) throw unauthenticated('DPOP_PROOF_INVALID', `The DPoP proof is not valid: ${problem}`, 'DPoP');
    const [fresh] = await this.orm.em.fork().execute(
      `insert into seen_jti (jti, expires_at) values (?, to_timestamp(?)) on conflict do nothing returning jti`,
      [`dpop:${jkt}:${claims.jti}`, (claims.iat as number) + 2 * DPOP_WINDOW_SECONDS],
    );
    if (!fresh) throw unauthenticated('DPOP_PROOF_REPLAYED', 'This DPoP proof was used before', 'DPoP');
  }

  /** One query: the client as it is now, and whether the token has been revoked; through the cache when there is one. */
  private tokenStatus(clientId: string, jti: string): Promise<TokenStatus | null> {
    const read = async () => {
      const [row] = await this.orm.em.fork().execute<TokenStatus[]>(
        `select c.kind, c.tenant_id, c.disabled, not exists (select 1 from revoked_access_token r where r.jti = ?) as live
           from oauth_client c where c.client_id = ?`,
        [jti, clientId],
      );
      return row ?? null;
    };
    return this.opts.statusCache ? this.opts.statusCache.statusOf(clientId, jti, read) : read();
  }

  /** The principal of a request: null without credentials; refuses bad ones with UNAUTHENTICATED. */
  async principalFor(request: RequestCredentials): Promise<Principal | null> {
    const header = request.authorization;
    if (!header) return null;
    const [scheme, token, extra] = header.split(' ');
    if (!token || extra !== undefined || !/^(Bearer|DPoP)$/i.test(scheme!)) throw unauthenticated('MALFORMED_TOKEN', 'Send `Authorization: Bearer <token>` or `Authorization: DPoP <token>`');
    const claims = await this.verifyJwt(token);
    const jkt = (claims.cnf as { jkt?: string } | undefined)?.jkt;
    // RFC 9449 §7.1: a bound token travels only under the DPoP scheme, with its proof.
    if (jkt && !/^DPoP$/i.test(scheme!)) throw unauthenticated('DPOP_PROOF_REQUIRED', 'This access token is DPoP-bound: send it as `Authorization: DPoP <token>` with a `DPoP` proof', 'DPoP');
    if (jkt) await this.verifyDpop(request.dpop, token, jkt, request.method);
    else if (/^DPoP$/i.test(scheme!)) throw unauthenticated('DPOP_PROOF_INVALID', 'This access token is not DPoP-bound; send it as a Bearer token');

    const row = await this.tokenStatus(String(claims.client_id), String(claims.jti));
    if (!row || row.disabled) throw unauthenticated('CLIENT_DISABLED', 'The client this token was issued to is disabled');
    if (!row.live) throw unauthenticated('TOKEN_REVOKED', 'The access token has been revoked');
    return {
      kind: row.kind,
      clientId: String(claims.client_id),
      tenantId: row.tenant_id,
      holderId: row.kind === 'CARDHOLDER_APP' && typeof claims.sub === 'string' ? claims.sub : null,
      // A client-credentials token's sub is the client itself; only a signed-in person's names a party user.
      userId: row.kind !== 'CARDHOLDER_APP' && typeof claims.sub === 'string' && claims.sub !== claims.client_id ? claims.sub : null,
      scopes: typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [],
    };
  }
}

function stripQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url;
  }
}
