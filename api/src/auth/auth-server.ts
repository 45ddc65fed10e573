import type { MikroORM } from '@mikro-orm/postgresql';
import { Router } from 'express';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { HOUSEKEEPING_INTERVAL_MS, purgeExpired } from './housekeeping.js';
import type { Config } from '../config/config.js';
import { interactionRoutes } from './interactions.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { ensureSigningKey, loadSigningKeys } from './keys.js';
import { postgresAdapter } from './oidc-adapter.js';
import { createAuthorizationServer, hashBasicSecret, issuerOf, resourceOf } from './provider.js';
import { tokenEndpoints } from './token-endpoints.js';
import { throttleTokenEndpoint } from './token-throttle.js';
import { AuthThrottle } from './throttle.js';
import { TokenStatusCache } from './token-status-cache.js';
import { TokenVerifier } from './token-verifier.js';

export interface AuthServer {
  provider: Provider;
  verifier: TokenVerifier;
  /** Everything under /oauth: login and consent pages, then oidc-provider's endpoints. */
  router: Router;
  close(): Promise<void>;
}

/** Loads (or makes) the signing keys and builds the authorization server and the token verifier. */
export async function setUpAuth(opts: { config: Config; orm: MikroORM; log: Logger }): Promise<AuthServer> {
  const { config, orm, log } = opts;
  const kek = await loadKeyEncryptionKey(config);
  await ensureSigningKey(orm.em.fork(), kek);
  const keys = await loadSigningKeys(orm.em.fork(), kek);
  const provider = createAuthorizationServer({ config, orm, keys, kek, adapter: postgresAdapter(orm) });
  // Client status and revocations between requests, emptied at once by any change (LISTEN/NOTIFY).
  const statusCache = new TokenStatusCache({ databaseUrl: orm.config.get('clientUrl')!, log });
  await statusCache.start();
  const verifier = new TokenVerifier(orm, {
    issuer: issuerOf(config),
    resource: resourceOf(config),
    loadPublicKeys: async () => (await loadSigningKeys(orm.em.fork(), kek)).publicJwks,
    statusCache,
  });
  const throttle = new AuthThrottle(config.authThrottle);
  throttleTokenEndpoint(provider, orm, throttle);
  const router = Router();
  router.use(interactionRoutes(provider, orm, throttle));
  router.use(tokenEndpoints({ orm, verifier, issuer: issuerOf(config), throttle }));
  router.use(hashBasicSecret, provider.callback());
  const sweep = setInterval(() => {
    purgeExpired(orm.em.fork()).catch((err) => log.warn({ err }, 'housekeeping of expired OAuth rows failed; will retry'));
  }, HOUSEKEEPING_INTERVAL_MS);
  sweep.unref();
  return {
    provider,
    verifier,
    router,
    close: async () => {
      clearInterval(sweep);
      await statusCache.close();
    },
  };
}
