import type { EntityManager } from '@mikro-orm/postgresql';
import type { NoticedCache } from '../../db/noticed-cache.js';
import type { Config } from '../../config/config.js';
import { type KeyStore, SoftwareKeyStore } from '../key-store.js';
import type { KeyVault } from './master-keys.service.js';
import { Pkcs11KeyStore } from './pkcs11-key-store.js';
import { Pkcs11Token } from './pkcs11-token.js';

/** One logged-in session per token and process: opening one per request would cost a login each time. */
const tokens = new Map<string, Pkcs11Token>();

function tokenFor(config: Config): Pkcs11Token | undefined {
  if (!config.pkcs11) return undefined;
  const key = `${config.pkcs11.module}\n${config.pkcs11.tokenLabel}`;
  let token = tokens.get(key);
  if (!token) {
    token = Pkcs11Token.open(config.pkcs11);
    tokens.set(key, token);
  }
  return token;
}

/** The card key store the configuration names: the PKCS#11 one when an HSM is configured, else the sealed software one. */
export function keyStoreFor(em: EntityManager, kek: Buffer, config: Config, reads?: NoticedCache): KeyStore {
  const token = tokenFor(config);
  return token ? new Pkcs11KeyStore(em, kek, token, reads) : new SoftwareKeyStore(em, kek, reads);
}

/**
 * The key store of one request. Its reads run in the transaction the request has open when it
 * reads (a fork that follows MikroORM's transaction context), on that transaction's connection:
 * a message holding one pool connection inside its transaction must never wait for a second one
 * to read a master key, or enough such messages at once would wait on each other for ever.
 */
export function requestKeyStore(em: EntityManager, kek: Buffer, config: Config, reads?: NoticedCache): KeyStore {
  return keyStoreFor(em.fork({ useContext: true }), kek, config, reads);
}

/** Where imported master keys go, by the same configuration. */
export function keyVaultFor(kek: Buffer, config: Config): KeyVault {
  return { kek, token: tokenFor(config) };
}
