import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { withUserErrors } from '../../graphql/domain-error.js';
import { loadKeyEncryptionKey } from '../../secrets/kek.js';
import { keyVaultFor } from './key-store-for.js';
import { changeMasterKeyStatus, importMasterKey, keyTransportPublicKey, listMasterKeys, type MasterKeyInfo, MasterKeyRefusal } from './master-keys.service.js';
import {
  CardKeyTransportKeyType,
  type CardKeyAlgorithmEnum,
  CardMasterKeyPayload,
  type CardMasterKeyPurposeEnum,
  CardMasterKeyRefInput,
  type CardMasterKeyStatusEnum,
  CardMasterKeyType,
  ImportCardMasterKeyInput,
  type KeyStorageEnum,
} from './master-keys.types.js';

const view = (k: MasterKeyInfo): CardMasterKeyType =>
  Object.assign(new CardMasterKeyType(), {
    purpose: k.purpose as CardMasterKeyPurposeEnum,
    keyVersion: k.keyVersion,
    algorithm: k.algorithm as CardKeyAlgorithmEnum,
    keyCheckValue: k.keyCheckValue,
    storedIn: k.storedIn as KeyStorageEnum,
    status: k.status as CardMasterKeyStatusEnum,
    createdAt: k.createdAt,
    activatedAt: k.activatedAt,
    retiredAt: k.retiredAt,
  });

/** A card company's own master keys (the principal's tenant): imported, activated, retired, listed; never read. */
@Resolver()
export class MasterKeyResolver {
  @Authorized('ISSUER', 'cardkeys:manage')
  @Query(() => CardKeyTransportKeyType, { description: 'The key-transport key a card company wraps its master keys with (made on first use). Scope cardkeys:manage.' })
  async cardKeyTransportKey(@Ctx() ctx: GraphQLContext): Promise<CardKeyTransportKeyType> {
    const { publicKeyPem, storedIn } = await keyTransportPublicKey(ctx.em, keyVaultFor(await loadKeyEncryptionKey(ctx.config), ctx.config));
    return Object.assign(new CardKeyTransportKeyType(), { publicKeyPem, storedIn: storedIn as KeyStorageEnum, wrapping: 'RSA-OAEP, SHA-1, MGF1-SHA-1' });
  }

  @Authorized('ISSUER', 'cardkeys:manage')
  @Query(() => [CardMasterKeyType], { description: 'Your card company’s master key versions: purpose, version, algorithm, check value, where, status. Never a key. Scope cardkeys:manage.' })
  async cardMasterKeys(@Ctx() ctx: GraphQLContext): Promise<CardMasterKeyType[]> {
    return (await listMasterKeys(ctx.em, ctx.principal!.tenantId!)).map(view);
  }

  @Authorized('ISSUER', 'cardkeys:manage')
  @Mutation(() => CardMasterKeyPayload, { description: 'Imports a master key wrapped under `cardKeyTransportKey`; it is PENDING until activated. A 3DES key goes into the HSM when one is configured. Scope cardkeys:manage.' })
  async importCardMasterKey(@Arg('input', () => ImportCardMasterKeyInput, { description: 'The wrapped key, its version and check value.' }) input: ImportCardMasterKeyInput, @Ctx() ctx: GraphQLContext): Promise<CardMasterKeyPayload> {
    return withUserErrors<CardMasterKeyPayload>(async () => {
      const wrappedKey = Buffer.from(input.wrappedKey, 'base64');
      if (wrappedKey.toString('base64') !== input.wrappedKey.replace(/\s+/g, '')) throw new MasterKeyRefusal('INVALID_INPUT', 'wrappedKey is base64', 'wrappedKey');
      const vault = keyVaultFor(await loadKeyEncryptionKey(ctx.config), ctx.config);
      const imported = await importMasterKey(ctx.em, vault, { cardCompanyId: ctx.principal!.tenantId!, purpose: input.purpose, keyVersion: input.keyVersion, algorithm: input.algorithm, wrappedKey, keyCheckValue: input.keyCheckValue });
      return { masterKey: view(imported), userErrors: [] };
    }, { masterKey: null });
  }

  @Authorized('ISSUER', 'cardkeys:manage')
  @Mutation(() => CardMasterKeyPayload, { description: 'PENDING → ACTIVE: card sessions naming this key version use it from now on. Scope cardkeys:manage.' })
  async activateCardMasterKey(@Arg('input', () => CardMasterKeyRefInput, { description: 'The key version to activate.' }) input: CardMasterKeyRefInput, @Ctx() ctx: GraphQLContext): Promise<CardMasterKeyPayload> {
    return withUserErrors<CardMasterKeyPayload>(async () => ({ masterKey: view(await changeMasterKeyStatus(ctx.em, { cardCompanyId: ctx.principal!.tenantId!, ...input, to: 'ACTIVE' })), userErrors: [] }), { masterKey: null });
  }

  @Authorized('ISSUER', 'cardkeys:manage')
  @Mutation(() => CardMasterKeyPayload, { description: 'ACTIVE → RETIRED: no card session uses this key version any more (cards still carrying it are refused until re-keyed). Scope cardkeys:manage.' })
  async retireCardMasterKey(@Arg('input', () => CardMasterKeyRefInput, { description: 'The key version to retire.' }) input: CardMasterKeyRefInput, @Ctx() ctx: GraphQLContext): Promise<CardMasterKeyPayload> {
    return withUserErrors<CardMasterKeyPayload>(async () => ({ masterKey: view(await changeMasterKeyStatus(ctx.em, { cardCompanyId: ctx.principal!.tenantId!, ...input, to: 'RETIRED' })), userErrors: [] }), { masterKey: null });
  }
}
