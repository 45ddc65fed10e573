import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';
import { ApplicationSelectionKindEnum, ApplicationSelectionType } from '../readers/session/card-session.types.js';
import { CardKeyAlgorithmEnum } from '../readers/keys/master-keys.types.js';

@ObjectType('CardAlgorithmId', { description: 'An algorithm id byte a card may answer in INITIALIZE FOR LOAD / PURCHASE, with what it means.' })
export class CardAlgorithmIdType {
  @Field(() => Int, { description: 'The byte (0–255): 0 and 1 are 3DES, 4 is SM4.' })
  id!: number;

  @Field(() => CardKeyAlgorithmEnum, { description: 'The cipher the host computes MACs and TACs with for a card answering it.' })
  cipher!: CardKeyAlgorithmEnum;

  @Field(() => String, { description: 'Where this reading of the byte comes from.' })
  meaning!: string;
}

@ObjectType('M1Layout', { description: 'Where an M1 (MIFARE Classic) card keeps its purse, and how its sector key is derived.' })
export class M1LayoutType {
  @Field(() => Int, { description: 'The purse sector (1–15).' }) purseSector!: number;
  @Field(() => Int, { description: 'The value block (a data block of the purse sector).' }) valueBlock!: number;
  @Field(() => Int, { description: 'The backup block (another data block of the purse sector).' }) backupBlock!: number;
  @Field(() => String, { description: 'The sector key the host authenticates with: B (the key UID_SECTOR_3DES derives).' }) keyType!: string;
  @Field(() => String, { description: 'The sector key derivation: UID_SECTOR_3DES (left 6 bytes of 3DES-ECB(M1 master key, UID ‖ sector ‖ 0B ‖ 0000)), the one implemented.' }) keyDerivation!: string;
}

@ObjectType('CardProfile', { description: 'How readers and the host talk to a card company’s cards, or one of its products’ (docs/cards.md, "Card profiles").' })
export class CardProfileType {
  @Field(() => ID, { description: 'The CardCompany it belongs to.' })
  cardCompany!: string;

  @Field(() => String, { nullable: true, description: 'Null: the card company’s own profile. A product’s applies to its cards that select one of its AIDs.' })
  product!: string | null;

  @Field(() => Boolean, { description: 'True when the card company has set none: the platform’s default (today’s behaviour) applies.' })
  isDefault!: boolean;

  @Field(() => [ApplicationSelectionType], { description: 'How the application is selected, in order of preference.' })
  selection!: ApplicationSelectionType[];

  @Field(() => Int, { description: 'The key index INITIALIZE FOR LOAD asks the card to use.' })
  loadKeyIndex!: number;

  @Field(() => Int, { description: 'The key index INITIALIZE FOR PURCHASE asks the card to use.' })
  purchaseKeyIndex!: number;

  @Field(() => [CardAlgorithmIdType], { description: 'The algorithm ids accepted; a card answering another is refused (ALGORITHM_NOT_ACCEPTED) before any MAC leaves the host.' })
  acceptedAlgorithms!: CardAlgorithmIdType[];

  @Field(() => Int, { description: 'SFI of the public basic data (issuer id, ASN, dates).' })
  publicDataSfi!: number;

  @Field(() => Int, { description: 'SFI of the cyclic transaction log (23-byte records).' })
  transactionLogSfi!: number;

  @Field(() => M1LayoutType, { description: 'The M1 purse layout and sector key derivation.' })
  m1!: M1LayoutType;

  @Field(() => [String], { description: 'Warning status words (62xx, 63xx) read as success, e.g. 6282.' })
  toleratedStatusWords!: string[];

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was last set; null for the default.' })
  updatedAt!: Date | null;
}

@InputType('ApplicationSelectionInput', { description: 'One way to select the application.' })
export class ApplicationSelectionInput {
  @Field(() => ApplicationSelectionKindEnum, { description: 'By AID, through the PSE, or by path.' })
  kind!: ApplicationSelectionKindEnum;

  @Field(() => String, { description: 'The AID (hex, 5–16 bytes), the PSE name (e.g. 1PAY.SYS.DDF01), or the path (e.g. 3F00/1001).' })
  value!: string;
}

@InputType('M1LayoutInput', { description: 'Where an M1 card keeps its purse.' })
export class M1LayoutInput {
  @Field(() => Int, { description: 'The purse sector (1–15).' }) purseSector!: number;
  @Field(() => Int, { description: 'The value block, a data block of the purse sector.' }) valueBlock!: number;
  @Field(() => Int, { description: 'The backup block, another data block of the purse sector.' }) backupBlock!: number;
  @Field(() => String, { defaultValue: 'B', description: 'B, the key UID_SECTOR_3DES derives (the default; A is refused until a derivation of key A exists).' }) keyType!: string;
  @Field(() => String, { defaultValue: 'UID_SECTOR_3DES', description: 'The derivation; UID_SECTOR_3DES is the one implemented.' }) keyDerivation!: string;
}

@InputType('SetCardProfileInput', { description: 'A card company’s profile, or one of its products’: replaces what was set before, whole.' })
export class SetCardProfileInput {
  @Field(() => ID, { nullable: true, description: 'The CardCompany. The operator names it; a card company may omit it (its own).' })
  cardCompany?: string | null;

  @Field(() => String, { nullable: true, description: 'A product name (e.g. T-UNION); omit for the card company’s own profile.' })
  product?: string | null;

  @Field(() => [ApplicationSelectionInput], { description: 'How to select the application, in order of preference (1 to 8 ways). A product’s lists the AIDs its cards answer.' })
  selection!: ApplicationSelectionInput[];

  @Field(() => Int, { description: 'Key index for INITIALIZE FOR LOAD (0–255).' })
  loadKeyIndex!: number;

  @Field(() => Int, { description: 'Key index for INITIALIZE FOR PURCHASE (0–255).' })
  purchaseKeyIndex!: number;

  @Field(() => [Int], { description: 'Algorithm ids accepted: 0 and 1 (3DES), 4 (SM4).' })
  algorithmIds!: number[];

  @Field(() => Int, { defaultValue: 0x15, description: 'SFI of the public basic data (default 21, 0x15).' })
  publicDataSfi!: number;

  @Field(() => Int, { defaultValue: 0x18, description: 'SFI of the transaction log (default 24, 0x18).' })
  transactionLogSfi!: number;

  @Field(() => M1LayoutInput, { nullable: true, description: 'The M1 purse layout; default sector 1, blocks 4 and 5, key B.' })
  m1?: M1LayoutInput | null;

  @Field(() => [String], { defaultValue: [], description: 'Warnings (62xx, 63xx) to read as success, e.g. 6282.' })
  toleratedStatusWords!: string[];
}

@ObjectType('CardProfilePayload', { description: 'The profile as set.' })
export class CardProfilePayload {
  @Field(() => CardProfileType, { nullable: true, description: 'Null when refused.' })
  profile!: CardProfileType | null;

  @Field(() => [UserError], { description: 'Why it was refused (UNKNOWN_ALGORITHM_ID, MALFORMED_AID, INVALID_SFI, INVALID_INPUT, NOT_FOUND); empty on success. Nothing is written when refused.' })
  userErrors!: UserError[];
}
