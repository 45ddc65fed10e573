import { Field, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar } from '../../graphql/scalars.js';
import { UserError } from '../../graphql/user-error.js';

export enum CardMasterKeyPurposeEnum {
  LOAD = 'LOAD',
  PURCHASE = 'PURCHASE',
  TAC = 'TAC',
  M1 = 'M1',
}
registerEnumType(CardMasterKeyPurposeEnum, {
  name: 'CardMasterKeyPurpose',
  description: 'What a master key derives card keys for.',
  valuesConfig: {
    LOAD: { description: 'The e-purse load key (圈存): MAC1 and MAC2 of loads.' },
    PURCHASE: { description: 'The e-purse purchase key (消费): MAC1 and MAC2 of purchases.' },
    TAC: { description: 'The TAC key: the transaction authentication code of loads and purchases.' },
    M1: { description: 'M1 (MIFARE Classic) sector keys, derived by UID.' },
  },
});

export enum CardKeyAlgorithmEnum {
  TDES = '3DES',
  SM4 = 'SM4',
}
registerEnumType(CardKeyAlgorithmEnum, {
  name: 'CardKeyAlgorithm',
  description: 'The cipher of a master key and the card keys derived from it.',
  valuesConfig: { TDES: { description: 'Two-key 3DES (16 bytes), algorithm id 00.' }, SM4: { description: 'SM4 (16 bytes), algorithm id 04: kept in software even with an HSM (docs/cardcrypto.md).' } },
});

export enum CardMasterKeyStatusEnum {
  PENDING = 'PENDING',
  ACTIVE = 'ACTIVE',
  RETIRED = 'RETIRED',
}
registerEnumType(CardMasterKeyStatusEnum, {
  name: 'CardMasterKeyStatus',
  description: 'PENDING (imported, not used yet) → ACTIVE (card sessions use it) → RETIRED (they no longer do).',
  valuesConfig: {
    PENDING: { description: 'Imported and checked against its key check value; no card session uses it until activated.' },
    ACTIVE: { description: 'Card sessions naming this key version use it.' },
    RETIRED: { description: 'No card session uses it any more: a card still naming it is refused as an unknown key.' },
  },
});

export enum KeyStorageEnum {
  SOFTWARE = 'SOFTWARE',
  PKCS11 = 'PKCS11',
}
registerEnumType(KeyStorageEnum, {
  name: 'KeyStorage',
  description: 'Where a key lives.',
  valuesConfig: {
    SOFTWARE: { description: 'Sealed with the platform’s key-encryption key in the database.' },
    PKCS11: { description: 'Inside the PKCS#11 HSM, sensitive and never extractable.' },
  },
});

@ObjectType('CardMasterKey', { description: 'A card company’s master key version, described: never the key itself, which no API returns.' })
export class CardMasterKeyType {
  @Field(() => CardMasterKeyPurposeEnum, { description: 'What card keys it derives.' })
  purpose!: CardMasterKeyPurposeEnum;

  @Field(() => Int, { description: 'The key version the card names (0–255).' })
  keyVersion!: number;

  @Field(() => CardKeyAlgorithmEnum, { description: 'Its cipher.' })
  algorithm!: CardKeyAlgorithmEnum;

  @Field(() => String, { nullable: true, description: 'Key check value: the first 3 bytes (hex) of the key enciphering zeros. Null for keys stored before imports existed.' })
  keyCheckValue!: string | null;

  @Field(() => KeyStorageEnum, { description: 'Where the key lives.' })
  storedIn!: KeyStorageEnum;

  @Field(() => CardMasterKeyStatusEnum, { description: 'Whether card sessions use it.' })
  status!: CardMasterKeyStatusEnum;

  @Field(() => DateTimeScalar, { description: 'When it was imported (or stored).' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was activated; null while PENDING.' })
  activatedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was retired; null until then.' })
  retiredAt!: Date | null;
}

@ObjectType('CardKeyTransportKey', { description: 'The public key a card company wraps its master keys with; its private key never leaves the platform’s key store.' })
export class CardKeyTransportKeyType {
  @Field(() => String, { description: 'RSA-2048 public key, PEM (SPKI).' })
  publicKeyPem!: string;

  @Field(() => String, { description: 'How to wrap: RSA-OAEP with SHA-1 and MGF1-SHA-1 over the 16 key bytes (the OAEP SoftHSM2 and most HSMs unwrap).' })
  wrapping!: string;

  @Field(() => KeyStorageEnum, { description: 'Where the private key (and the 3DES master keys unwrapped with it) live.' })
  storedIn!: KeyStorageEnum;
}

@InputType({ description: 'A master key wrapped under the key-transport key, with its check value.' })
export class ImportCardMasterKeyInput {
  @Field(() => CardMasterKeyPurposeEnum, { description: 'What card keys it derives.' })
  purpose!: CardMasterKeyPurposeEnum;

  @Field(() => Int, { description: 'A new key version (0–255).' })
  keyVersion!: number;

  @Field(() => CardKeyAlgorithmEnum, { description: 'Its cipher.' })
  algorithm!: CardKeyAlgorithmEnum;

  @Field(() => String, { description: 'Base64 of the RSA-OAEP (SHA-1) encryption of the 16 key bytes under `cardKeyTransportKey`.' })
  wrappedKey!: string;

  @Field(() => String, { description: 'The key check value the key ceremony recorded (6 hex digits); the import is refused unless the unwrapped key has it.' })
  keyCheckValue!: string;
}

@InputType({ description: 'A master key version of your card company.' })
export class CardMasterKeyRefInput {
  @Field(() => CardMasterKeyPurposeEnum, { description: 'What card keys it derives.' })
  purpose!: CardMasterKeyPurposeEnum;

  @Field(() => Int, { description: 'Its key version (0–255).' })
  keyVersion!: number;
}

@ObjectType({ description: 'The master key version after the change.' })
export class CardMasterKeyPayload {
  @Field(() => CardMasterKeyType, { nullable: true, description: 'Null when refused.' })
  masterKey!: CardMasterKeyType | null;

  @Field(() => [UserError], { description: 'Why it was refused (INVALID_INPUT, KEY_NOT_UNWRAPPED, KEY_CHECK_VALUE_MISMATCH, KEY_VERSION_TAKEN, INVALID_KEY_TRANSITION, NOT_FOUND); empty on success.' })
  userErrors!: UserError[];
}
