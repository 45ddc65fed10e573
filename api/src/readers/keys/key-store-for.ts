import type { EntityManager } from '@mikro-orm/postgresql';
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
export function keyStoreFor(em: EntityManager, kek: Buffer, config: Config): KeyStore {
  const token = tokenFor(config);
  return token ? new Pkcs11KeyStore(em, kek, token) : new SoftwareKeyStore(em, kek);
}

/** Where imported master keys go, by the same configuration. */
export function keyVaultFor(kek: Buffer, config: Config): KeyVault {
  return { kek, token: tokenFor(config) };
}
