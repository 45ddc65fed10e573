import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum ReaderStatusEnum {
  ACTIVE = 'ACTIVE',
  SUSPENDED = 'SUSPENDED',
  REVOKED = 'REVOKED',
}
registerEnumType(ReaderStatusEnum, { name: 'ReaderStatus', description: 'ACTIVE readers may open card sessions; SUSPENDED ones may be re-activated; REVOKED is final.' });

export enum ReaderOwnerKindEnum {
  MERCHANT = 'MERCHANT',
  BILLER = 'BILLER',
  CARD_COMPANY = 'CARD_COMPANY',
  CARDHOLDER = 'CARDHOLDER',
}
registerEnumType(ReaderOwnerKindEnum, { name: 'ReaderOwnerKind', description: 'Who a reader belongs to: a merchant, a biller, a card company, or a cardholder (a home reader).' });

@ObjectType('Reader', { implements: Node, description: 'A certified card reader: two certificates (national and city) over one device key.' })
export class ReaderType extends Node {
  uuid!: string;
  cityUuid!: string;

  @Field({ description: 'The device serial number; also the CN of its certificates.' })
  serial!: string;

  @Field()
  model!: string;

  @Field(() => ReaderOwnerKindEnum)
  ownerKind!: ReaderOwnerKindEnum;

  @Field(() => ID, { description: 'Global id of the owner (Merchant, Biller, CardCompany or Cardholder).' })
  owner!: string;

  @Field(() => ID, { description: 'Global id of the City whose card company certified it.' })
  city!: string;

  @Field(() => ReaderStatusEnum)
  status!: ReaderStatusEnum;

  @Field({ description: 'Serial of the certificate from the national working CA.' })
  nationalCertificateSerial!: string;

  @Field({ description: 'Serial of the certificate from the city working CA.' })
  cityCertificateSerial!: string;

  @Field(() => DateTimeScalar)
  createdAt!: Date;
}

export const ReaderConnection = connectionType(ReaderType, 'Reader');

@InputType()
export class RegisterReaderInput {
  @Field({ description: 'Device serial number (3–64 of A–Z a–z 0–9 . _ -).' })
  serial!: string;

  @Field()
  model!: string;

  @Field(() => ID, { description: 'Global id of the owner: a Merchant, Biller or CardCompany of the city, or a Cardholder.' })
  owner!: string;

  @Field(() => ID, { description: 'Global id of the City.' })
  city!: string;

  @Field({ description: 'PEM CSR for the national certificate, signed by the device key.' })
  nationalCsr!: string;

  @Field({ description: 'PEM CSR for the city certificate, signed by the same device key.' })
  cityCsr!: string;
}

@InputType()
export class ReaderStatusInput {
  @Field(() => ID)
  reader!: string;
}

@ObjectType()
export class RegisterReaderPayload {
  @Field(() => ReaderType, { nullable: true })
  reader!: ReaderType | null;

  @Field(() => [String], { description: 'PEM: the national certificate, then its CA, then the root.' })
  nationalCertificateChain!: string[];

  @Field(() => [String], { description: 'PEM: the city certificate, then its CA, then the root.' })
  cityCertificateChain!: string[];

  @Field(() => [UserError])
  userErrors!: UserError[];
}

@ObjectType()
export class ReaderPayload {
  @Field(() => ReaderType, { nullable: true })
  reader!: ReaderType | null;

  @Field(() => [UserError])
  userErrors!: UserError[];
}
