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
registerEnumType(ReaderStatusEnum, {
  name: 'ReaderStatus',
  description: 'ACTIVE readers may open card sessions; SUSPENDED ones may be re-activated; REVOKED is final.',
  valuesConfig: {
    ACTIVE: { description: 'In service: card sessions may be opened on it.' },
    SUSPENDED: { description: 'Out of service for now: no card sessions; `activateReader` brings it back.' },
    REVOKED: { description: 'Revoked for good, with both its certificates (listed on the CRLs). Final.' },
  },
});

export enum ReaderOwnerKindEnum {
  MERCHANT = 'MERCHANT',
  BILLER = 'BILLER',
  CARD_COMPANY = 'CARD_COMPANY',
  CARDHOLDER = 'CARDHOLDER',
}
registerEnumType(ReaderOwnerKindEnum, {
  name: 'ReaderOwnerKind',
  description: 'Who a reader belongs to: a merchant, a biller, a card company, or a cardholder (a home reader).',
  valuesConfig: {
    MERCHANT: { description: 'A merchant’s reader, for purchases and payments.' },
    BILLER: { description: 'A biller’s reader.' },
    CARD_COMPANY: { description: 'A card company’s reader, e.g. at its counter for loads (圈存).' },
    CARDHOLDER: { description: 'A cardholder’s home reader, used through a cardholder app.' },
  },
});

@ObjectType('Reader', { implements: Node, description: 'A certified card reader: two certificates (national and city) over one device key.' })
export class ReaderType extends Node {
  uuid!: string;
  cityUuid!: string;

  @Field({ description: 'The device serial number; also the CN of its certificates.' })
  serial!: string;

  @Field({ description: 'The device model, as registered (the OU of its certificates).' })
  model!: string;

  @Field(() => ReaderOwnerKindEnum, { description: 'What kind of owner `owner` is.' })
  ownerKind!: ReaderOwnerKindEnum;

  @Field(() => ID, { description: 'Global id of the owner (Merchant, Biller, CardCompany or Cardholder).' })
  owner!: string;

  @Field(() => ID, { description: 'Global id of the City whose card company certified it.' })
  city!: string;

  @Field({ description: 'The terminal number (终端编号): 6 bytes as 12 hex digits, unique in the city; the terminal field of every load and purchase on the card, so MACs and TACs cover it. 12 decimal digits (BCD) when registered with one; a reader registered without one carries the number derived from its serial.' })
  terminalNumber!: string;

  @Field(() => ReaderStatusEnum, { description: 'Whether the reader may open card sessions.' })
  status!: ReaderStatusEnum;

  @Field(() => String, { nullable: true, description: 'Serial of the certificate from the national working CA; null while it awaits the operator’s approval (approveReaderNationalCertificate): until then the reader opens no session.' })
  nationalCertificateSerial!: string | null;

  @Field({ description: 'Serial of the certificate from the city working CA.' })
  cityCertificateSerial!: string;

  @Field(() => DateTimeScalar, { description: 'When the reader was registered.' })
  createdAt!: Date;
}

export const ReaderConnection = connectionType(ReaderType, 'Reader');

@InputType({ description: 'A reader to register and certify: its serial, owner, city, and two CSRs over its one device key.' })
export class RegisterReaderInput {
  @Field({ description: 'Device serial number (3–64 of A–Z a–z 0–9 . _ -).' })
  serial!: string;

  @Field({ description: 'The device model, e.g. "OC-R1"; becomes the OU of its certificates.' })
  model!: string;

  @Field(() => ID, { description: 'Global id of the owner: a Merchant, Biller or CardCompany of the city, or a Cardholder.' })
  owner!: string;

  @Field(() => ID, { description: 'Global id of the City.' })
  city!: string;

  @Field(() => String, { nullable: true, description: 'The terminal number of its PSAM (终端编号): 12 decimal digits (6 bytes BCD), unique in the city (DUPLICATE_TERMINAL_NUMBER). Omitted: a number derived from the serial (hex, as readers registered before numbers were), fine for online card sessions; a terminal that takes offline purchases registers its own.' })
  terminalNumber?: string | null;

  @Field({ description: 'PEM CSR for the national certificate (access: the reader signs the session hello with its key).' })
  nationalCsr!: string;

  @Field({ description: 'PEM CSR for the city certificate (the reader signs its session messages and transaction results with its key); a key other than the national one.' })
  cityCsr!: string;

  @Field({ description: 'PEM CSR for the encryption certificate (what the host seals to the reader is wrapped to its key); a third key of its own.' })
  encryptionCsr!: string;
}

@InputType({ description: 'The reader whose status to change.' })
export class ReaderStatusInput {
  @Field(() => ID, { description: 'Global id of the Reader.' })
  reader!: string;
}

@ObjectType({ description: 'The reader registered with its three certificate chains, or why not.' })
export class RegisterReaderPayload {
  @Field(() => ReaderType, { nullable: true, description: 'The reader registered; null when refused.' })
  reader!: ReaderType | null;

  @Field(() => [String], { description: 'PEM: the national certificate, then its CA, then the root; empty when a card company registered the reader (the operator issues it: approveReaderNationalCertificate).' })
  nationalCertificateChain!: string[];

  @Field(() => [String], { description: 'PEM: the city certificate, then its CA, then the root.' })
  cityCertificateChain!: string[];

  @Field(() => [String], { description: 'PEM: the encryption certificate (keyUsage keyEncipherment), then the city CA, then the root.' })
  encryptionCertificateChain!: string[];

  @Field(() => [UserError], { description: 'Why the registration was refused (no certificate was issued); empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The reader after a status change, or why not.' })
export class ReaderPayload {
  @Field(() => ReaderType, { nullable: true, description: 'The reader after the change; null when refused.' })
  reader!: ReaderType | null;

  @Field(() => [UserError], { description: 'Why the change was refused (NOT_FOUND, INVALID_INPUT); empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The reader with its national certificate, issued by the national authority; or why not.' })
export class ApproveReaderNationalCertificatePayload {
  @Field(() => ReaderType, { nullable: true, description: 'The reader, now with its national certificate; null when refused.' })
  reader!: ReaderType | null;

  @Field(() => [String], { description: 'PEM: the national certificate, then the national CA, then the root; empty when refused.' })
  nationalCertificateChain!: string[];

  @Field(() => [UserError], { description: 'Why it was refused; empty on success.' })
  userErrors!: UserError[];
}
