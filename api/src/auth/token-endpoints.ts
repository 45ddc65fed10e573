import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response, Router } from 'express';
import type { JWTPayload } from 'jose';
import { authenticateClient, ClientAuthError } from './client-authentication.js';
import type { TokenVerifier } from './token-verifier.js';
import type { AuthThrottle } from './throttle.js';
import { basicClientId, throttledAnswer } from './token-throttle.js';

/**
 * Revocation (RFC 7009) and introspection (RFC 7662) of our JWT access tokens. oidc-provider
 * refuses structured tokens at both endpoints (it keeps no copy of them), so these routes take
 * them over, at the same paths its discovery document advertises. Revoked tokens are listed in
 * `revoked_access_token` until they expire, and the API refuses them.
 */
export function tokenEndpoints(opts: { orm: MikroORM; verifier: TokenVerifier; issuer: string; throttle: AuthThrottle }): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '20kb' });

  // Throttled like the token endpoint: a secret must not be guessable here either.
  async function authenticate(req: Request, res: Response, path: string) {
    const keys = opts.throttle.tokenKeys(basicClientId(req.headers.authorization), req.ip ?? 'unknown');
    const wait = await opts.throttle.retryAfter(opts.orm.em.fork(), keys);
    if (wait > 0) {
      const answer = throttledAnswer(wait);
      res.status(answer.status).set(answer.headers).json(answer.body);
      return undefined;
    }
    try {
      const client = await authenticateClient(opts.orm.em.fork(), req, `${opts.issuer}${path}`, opts.issuer);
      await opts.throttle.succeeded(opts.orm.em.fork(), opts.throttle.tokenClientKey(client.client_id));
      return client;
    } catch (err) {
      if (!(err instanceof ClientAuthError)) throw err;
      await opts.throttle.failed(opts.orm.em.fork(), keys);
      res.status(401).setHeader('www-authenticate', 'Basic realm="OneCard"').json({ error: 'invalid_client', error_description: err.message });
      return undefined;
    }
  }

  /** The token's claims when it is one of ours (signature, issuer, audience), else undefined. */
  async function ourToken(token: unknown): Promise<JWTPayload | undefined> {
    if (typeof token !== 'string' || token.length > 4096) return undefined;
    return opts.verifier.verifyJwt(token, true).catch(() => undefined);
  }

  router.post('/token/revocation', form, async (req, res) => {
    const client = await authenticate(req, res, '/token/revocation');
    if (!client) return;
    const claims = await ourToken(req.body?.token);
    // A client revokes only its own tokens; anything else is answered 200 and ignored (RFC 7009 §2.2).
    if (claims?.jti && claims.client_id === client.client_id && typeof claims.exp === 'number') {
      await opts.orm.em.fork().execute(
        `insert into revoked_access_token (jti, client_id, expires_at) values (?, ?, to_timestamp(?)) on conflict do nothing`,
        [claims.jti, client.client_id, claims.exp],
      );
    }
    res.status(200).end();
  });

  router.post('/token/introspection', form, async (req, res) => {
    const client = await authenticate(req, res, '/token/introspection');
    if (!client) return;
    res.setHeader('cache-control', 'no-store');
    const claims = await ourToken(req.body?.token);
    const expired = typeof claims?.exp !== 'number' || claims.exp * 1000 <= Date.now();
    // The operator may introspect any token; other clients only their own.
    const mayLook = claims && (client.kind === 'OPERATOR' || claims.client_id === client.client_id);
    if (!claims?.jti || expired || !mayLook) {
      res.json({ active: false });
      return;
    }
    // Active as the API would take it: not revoked, and its client still there and not disabled.
    const [refused] = await opts.orm.em.fork().execute(
      `select 1 where exists (select 1 from revoked_access_token where jti = ?) or not exists (select 1 from oauth_client where client_id = ? and not disabled)`,
      [claims.jti, String(claims.client_id)],
    );
    if (refused) {
      res.json({ active: false });
      return;
    }
    const { iss, aud, sub, exp, iat, jti, scope, client_id, cnf } = claims;
    res.json({ active: true, token_type: cnf ? 'DPoP' : 'Bearer', iss, aud, sub, exp, iat, jti, scope, client_id, ...(cnf ? { cnf } : {}) });
  });

  return router;
}
