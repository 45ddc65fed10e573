import fs from 'node:fs/promises';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { keyVaultFor } from '../readers/keys/key-store-for.js';
import { changeMasterKeyStatus, importMasterKey, keyTransportPublicKey, listMasterKeys, type MasterKeyInfo, MasterKeyRefusal } from '../readers/keys/master-keys.service.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';

type WithOrm = <T>(work: (orm: Orm, config: Config) => Promise<T>) => Promise<T>;

const cardCompanyId = (id: string) => (/^[0-9a-f-]{36}$/i.test(id) ? id.toLowerCase() : fromGlobalId(id, 'CardCompany').id);

/** One line per key version: never the key, its check value only. */
const line = (k: MasterKeyInfo) => `${k.purpose.padEnd(8)} v${String(k.keyVersion).padEnd(3)} ${k.algorithm.padEnd(4)} KCV ${k.keyCheckValue ?? '------'}  ${k.storedIn.padEnd(8)} ${k.status}`;

/** A refusal is a message and exit code 1, not a stack trace. */
async function refusing(work: () => Promise<void>) {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof MasterKeyRefusal)) throw err;
    console.error(`${err.code}: ${err.message}`);
    process.exitCode = 1;
  }
}

/**
 * `onecard card-keys`: the key ceremony's commands (docs/cardcrypto.md, "Key ceremony"): the
 * transport key's public half, import of wrapped master keys with their check values, activation,
 * retirement, listing. With ONECARD_PKCS11_* set, 3DES keys go into the HSM.
 */
export function cardKeysCommand(withOrm: WithOrm): Command {
  const keys = new Command('card-keys').description('card companies’ master keys: import (wrapped), activate, retire, list; never shown');
  keys
    .command('transport-key')
    .description('print the key-transport key (RSA-2048 public key, PEM) that master keys are wrapped with: RSA-OAEP, SHA-1, MGF1-SHA-1')
    .action(async () => {
      const { publicKeyPem, storedIn } = await withOrm(async (orm, config) => keyTransportPublicKey(orm.em.fork(), keyVaultFor(await loadKeyEncryptionKey(config), config)));
      console.log(`${publicKeyPem.trim()}\n# private half kept in ${storedIn}`);
    });
  keys
    .command('import')
    .description('import one wrapped master key; it stays PENDING until `activate`')
    .requiredOption('--card-company <id>', 'global id (or uuid) of the CardCompany')
    .requiredOption('--purpose <purpose>', 'LOAD, PURCHASE, TAC or M1')
    .requiredOption('--version <n>', 'the key version (0-255)')
    .requiredOption('--algorithm <algorithm>', '3DES or SM4')
    .requiredOption('--wrapped <file>', 'the wrapped key: a file of 256 bytes, or of their base64')
    .requiredOption('--kcv <hex>', 'the key check value recorded at the ceremony (6 hex digits)')
    .action(async (opts: { cardCompany: string; purpose: string; version: string; algorithm: string; wrapped: string; kcv: string }) =>
      refusing(async () => {
        const raw = await fs.readFile(opts.wrapped);
        const text = raw.toString('utf8').trim();
        const wrappedKey = raw.length === 256 ? raw : Buffer.from(text, 'base64');
        const imported = await withOrm(async (orm, config) =>
          importMasterKey(orm.em.fork(), keyVaultFor(await loadKeyEncryptionKey(config), config), {
            cardCompanyId: cardCompanyId(opts.cardCompany),
            purpose: opts.purpose.toUpperCase(),
            keyVersion: Number(opts.version),
            algorithm: opts.algorithm.toUpperCase(),
            wrappedKey,
            keyCheckValue: opts.kcv,
          }),
        );
        console.log(line(imported));
      }),
    );
  for (const [name, to, what] of [
    ['activate', 'ACTIVE', 'PENDING → ACTIVE: card sessions use the key version from now on'],
    ['retire', 'RETIRED', 'ACTIVE → RETIRED: no card session uses the key version any more'],
  ] as const) {
    keys
      .command(name)
      .description(what)
      .requiredOption('--card-company <id>', 'global id (or uuid) of the CardCompany')
      .requiredOption('--purpose <purpose>', 'LOAD, PURCHASE, TAC or M1')
      .requiredOption('--version <n>', 'the key version')
      .action(async (opts: { cardCompany: string; purpose: string; version: string }) =>
        refusing(async () => {
          const changed = await withOrm((orm) => changeMasterKeyStatus(orm.em.fork(), { cardCompanyId: cardCompanyId(opts.cardCompany), purpose: opts.purpose.toUpperCase(), keyVersion: Number(opts.version), to }));
          console.log(line(changed));
        }),
      );
  }
  keys
    .command('list')
    .description('the card company’s master key versions: purpose, version, algorithm, check value, where, status')
    .requiredOption('--card-company <id>', 'global id (or uuid) of the CardCompany')
    .action(async (opts: { cardCompany: string }) => {
      const all = await withOrm((orm) => listMasterKeys(orm.em.fork(), cardCompanyId(opts.cardCompany)));
      for (const k of all) console.log(line(k));
      if (all.length === 0) console.log('no master keys');
    });
  return keys;
}
