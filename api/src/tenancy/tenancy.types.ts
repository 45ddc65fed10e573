import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { CurrencyScalar, DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';
import { BillerKind } from './biller.entity.js';
import { TenantStatus } from './merchant.entity.js';

registerEnumType(TenantStatus, {
  name: 'TenantStatus',
  description: 'Whether a merchant or biller may take payments now.',
  valuesConfig: {
    ACTIVE: { description: 'Takes payments.' },
    SUSPENDED: { description: 'Suspended by the operator: takes no new payments.' },
  },
});
registerEnumType(BillerKind, {
  name: 'BillerKind',
  description: 'What a biller bills for (公用事业缴费: utility bill payment).',
  valuesConfig: {
    WATER: { description: 'Water supply.' },
    GAS: { description: 'Piped gas.' },
    HEATING: { description: 'District heating.' },
    ELECTRICITY: { description: 'Electricity.' },
    TELECOM: { description: 'Telephone, mobile and broadband.' },
  },
});

@ObjectType('City', { implements: Node, description: 'A city whose card (城市一卡通) the platform serves. A directory entry every authenticated client may read.' })
export class CityType extends Node {
  /** Internal id, for the resolvers. */
  uuid!: string;

  @Field({ description: 'Short unique code: 2 to 8 upper-case letters, e.g. `GZ`. Never changes.' })
  code!: string;

  @Field({ description: 'Display name.' })
  name!: string;

  @Field({ description: 'IANA time zone the city’s business days are cut in, e.g. `Asia/Shanghai`.' })
  timeZone!: string;

  @Field(() => CurrencyScalar, { description: 'ISO 4217 currency of every amount in the city. Never changes.' })
  currency!: string;

  @Field(() => DateTimeScalar, { description: 'When the city was onboarded.' })
  createdAt!: Date;
}

@ObjectType('CardCompany', { implements: Node, description: 'A city’s card company (通卡公司): the issuer of its cards. Exactly one per city.' })
export class CardCompanyType extends Node {
  uuid!: string;
  cityUuid!: string;

  @Field({ description: 'Display name.' })
  name!: string;

  @Field(() => DateTimeScalar, { description: 'When the card company was onboarded (with its city).' })
  createdAt!: Date;
}

@ObjectType('FeePlan', {
  implements: Node,
  description: 'The operator’s service fee terms: max(minimumFee, fixedFee + amount × basisPoints / 10000), the percentage rounded half-up to a minor unit.',
})
export class FeePlanType extends Node {
  uuid!: string;

  @Field({ description: 'Unique display name.' })
  name!: string;

  @Field(() => Int, { description: 'The percentage part in basis points (1 bp = 0.01 %), 0 to 10000.' })
  basisPoints!: number;

  @Field(() => Money, { description: 'Charged on every transaction on top of the percentage.' })
  fixedFee!: Money;

  @Field(() => Money, { description: 'The least the fee on one transaction can be.' })
  minimumFee!: Money;

  @Field(() => CurrencyScalar, { description: 'The currency the plan is priced in; only merchants and billers of cities in it can use the plan. Never changes.' })
  currency!: string;

  @Field(() => DateTimeScalar, { description: 'When the plan was created.' })
  createdAt!: Date;
}

@ObjectType('Merchant', { implements: Node, description: 'An e-commerce merchant taking card-wallet payments in one city.' })
export class MerchantType extends Node {
  uuid!: string;
  cityUuid!: string;
  feePlanUuid!: string | null;

  @Field({ description: 'Display name, unique within the city.' })
  name!: string;

  @Field(() => TenantStatus, { description: 'Whether it may take payments now.' })
  status!: TenantStatus;

  @Field(() => CurrencyScalar, { description: 'The currency it is paid and settled in: its city’s.' })
  currency!: string;

  @Field(() => DateTimeScalar, { description: 'When the merchant was onboarded.' })
  createdAt!: Date;
}

@ObjectType('Biller', { implements: Node, description: 'A utility that publishes bills to be paid from card wallets in one city.' })
export class BillerType extends Node {
  uuid!: string;
  cityUuid!: string;
  feePlanUuid!: string | null;

  @Field({ description: 'Display name, unique within the city.' })
  name!: string;

  @Field(() => BillerKind, { description: 'What it bills for.' })
  kind!: BillerKind;

  @Field(() => TenantStatus, { description: 'Whether it may take bill payments now. Cardholder apps see only ACTIVE billers.' })
  status!: TenantStatus;

  @Field(() => CurrencyScalar, { description: 'The currency its bills are in: its city’s.' })
  currency!: string;

  @Field(() => DateTimeScalar, { description: 'When the biller was onboarded.' })
  createdAt!: Date;
}

export const CityConnection = connectionType(CityType, 'City');
export const FeePlanConnection = connectionType(FeePlanType, 'FeePlan');
export const MerchantConnection = connectionType(MerchantType, 'Merchant');
export const BillerConnection = connectionType(BillerType, 'Biller');

// ---- inputs and payloads ------------------------------------------------------------------------

@InputType({ description: 'A new city and its card company, created together.' })
export class CreateCityInput {
  @Field({ description: '2 to 8 upper-case letters, unique, e.g. `GZ`.' })
  code!: string;

  @Field({ description: 'Display name.' })
  name!: string;

  @Field({ description: 'IANA time zone, e.g. `Asia/Shanghai`.' })
  timeZone!: string;

  @Field(() => CurrencyScalar, { description: 'ISO 4217 currency of the city, e.g. `CNY`.' })
  currency!: string;

  @Field({ description: 'Name of the city’s card company (通卡公司).' })
  cardCompanyName!: string;
}

@InputType({ description: 'Changes to a city; absent fields stay as they are. Code and currency never change.' })
export class UpdateCityInput {
  @Field(() => ID, { description: 'Global id of the City.' })
  city!: string;

  @Field(() => String, { nullable: true, description: 'New display name.' })
  name?: string | null;

  @Field(() => String, { nullable: true, description: 'New IANA time zone.' })
  timeZone?: string | null;

  @Field(() => String, { nullable: true, description: 'New name of the city’s card company.' })
  cardCompanyName?: string | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'New limit per M1 load of the city’s card company, in minor units (1 to 2147483647): what one write onto an M1 card may put at risk (docs/cards.md).' })
  m1LoadLimit?: bigint | null;
}

@InputType({ description: 'A new fee plan.' })
export class CreateFeePlanInput {
  @Field({ description: 'Unique display name.' })
  name!: string;

  @Field(() => Int, { description: 'The percentage part in basis points (1 bp = 0.01 %), 0 to 10000.' })
  basisPoints!: number;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'Fixed part of every fee, in minor units; 0 when absent.' })
  fixedFee?: bigint | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'Least fee per transaction, in minor units; 0 when absent.' })
  minimumFee?: bigint | null;

  @Field(() => CurrencyScalar, { description: 'ISO 4217 currency the plan is priced in.' })
  currency!: string;
}

@InputType({ description: 'Changes to a fee plan, in force for every merchant and biller on it from now on; absent fields stay as they are.' })
export class UpdateFeePlanInput {
  @Field(() => ID, { description: 'Global id of the FeePlan.' })
  feePlan!: string;

  @Field(() => String, { nullable: true, description: 'New display name.' })
  name?: string | null;

  @Field(() => Int, { nullable: true, description: 'New percentage in basis points, 0 to 10000.' })
  basisPoints?: number | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'New fixed part, in minor units.' })
  fixedFee?: bigint | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'New least fee, in minor units.' })
  minimumFee?: bigint | null;
}

@InputType({ description: 'A new merchant, ACTIVE from the start.' })
export class CreateMerchantInput {
  @Field(() => ID, { description: 'Global id of the City it trades in.' })
  city!: string;

  @Field({ description: 'Display name, unique within the city.' })
  name!: string;

  @Field(() => ID, { nullable: true, description: 'Global id of its FeePlan, in the city’s currency.' })
  feePlan?: string | null;
}

@InputType({ description: 'Changes to a merchant; absent fields stay as they are.' })
export class UpdateMerchantInput {
  @Field(() => ID, { description: 'Global id of the Merchant.' })
  merchant!: string;

  @Field(() => String, { nullable: true, description: 'New display name.' })
  name?: string | null;

  @Field(() => ID, { nullable: true, description: 'Global id of its new FeePlan; an explicit null takes it off any plan.' })
  feePlan?: string | null;

  @Field(() => TenantStatus, { nullable: true, description: 'SUSPENDED stops new payments; ACTIVE resumes them.' })
  status?: TenantStatus | null;
}

@InputType({ description: 'A new biller, ACTIVE from the start.' })
export class CreateBillerInput {
  @Field(() => ID, { description: 'Global id of the City it serves.' })
  city!: string;

  @Field({ description: 'Display name, unique within the city.' })
  name!: string;

  @Field(() => BillerKind, { description: 'What it bills for.' })
  kind!: BillerKind;

  @Field(() => ID, { nullable: true, description: 'Global id of its FeePlan, in the city’s currency.' })
  feePlan?: string | null;
}

@InputType({ description: 'Changes to a biller; absent fields stay as they are.' })
export class UpdateBillerInput {
  @Field(() => ID, { description: 'Global id of the Biller.' })
  biller!: string;

  @Field(() => String, { nullable: true, description: 'New display name.' })
  name?: string | null;

  @Field(() => ID, { nullable: true, description: 'Global id of its new FeePlan; an explicit null takes it off any plan.' })
  feePlan?: string | null;

  @Field(() => TenantStatus, { nullable: true, description: 'SUSPENDED stops new bill payments; ACTIVE resumes them.' })
  status?: TenantStatus | null;
}

@ObjectType({ description: 'The city written, or why not.' })
export class CityPayload {
  @Field(() => CityType, { nullable: true, description: 'The city; its `cardCompany` is the one created or renamed with it. Null when refused.' })
  city!: CityType | null;

  @Field(() => [UserError], { description: 'Why the change was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The fee plan written, or why not.' })
export class FeePlanPayload {
  @Field(() => FeePlanType, { nullable: true, description: 'The fee plan; null when refused.' })
  feePlan!: FeePlanType | null;

  @Field(() => [UserError], { description: 'Why the change was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The merchant written, or why not.' })
export class MerchantPayload {
  @Field(() => MerchantType, { nullable: true, description: 'The merchant; null when refused.' })
  merchant!: MerchantType | null;

  @Field(() => [UserError], { description: 'Why the change was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The biller written, or why not.' })
export class BillerPayload {
  @Field(() => BillerType, { nullable: true, description: 'The biller; null when refused.' })
  biller!: BillerType | null;

  @Field(() => [UserError], { description: 'Why the change was refused; empty on success.' })
  userErrors!: UserError[];
}
