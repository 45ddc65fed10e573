import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { Money } from '../graphql/money.js';
import { UserError } from '../graphql/user-error.js';

@InputType({ description: 'A ride credential for your holder’s transit wallet, bound to the app’s device key.' })
export class IssueQrCredentialInput {
  @Field(() => ID, { description: 'Global id of the TransitWallet the rides are paid from.' })
  wallet!: string;

  @Field({ description: 'The app’s device public key: an uncompressed P-256 point (65 bytes, 0x04 ‖ x ‖ y), base64url. Its private key never leaves the device; it signs each fresh part of the code.' })
  devicePublicKey!: string;
}

@ObjectType('QrCredential', { description: 'A ride credential (乘车码) the card company signed for one app install: what it names and until when (docs/qr-rides.md).' })
export class QrCredentialType {
  @Field(() => ID, { description: 'Global id of the credential.' })
  id!: string;

  @Field({ description: 'The credential’s id as the code carries it (a UUID): what the scanners’ blocklist names.' })
  credentialId!: string;

  @Field(() => ID, { description: 'Global id of the TransitWallet it pays from.' })
  wallet!: string;

  @Field(() => DateTimeScalar, { description: 'From when scanners take it.' })
  validFrom!: Date;

  @Field(() => DateTimeScalar, { description: 'Until when scanners take it (exclusive); the app asks for a new one before.' })
  validUntil!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was put on the blocklist (a lost phone, the wallet’s debt at its limit), or null.' })
  blockedAt!: Date | null;
}

@ObjectType({ description: 'The result of issueQrCredential: the signed credential the app completes every few seconds, or why not.' })
export class IssueQrCredentialPayload {
  @Field(() => QrCredentialType, { nullable: true, description: 'The credential; null when refused.' })
  credential!: QrCredentialType | null;

  @Field(() => String, { nullable: true, description: 'The card company’s half of the code, `OCQR1.<credential>.<issuer signature>` (base64url parts): the app appends `.<fresh part>.<device signature>` each time it redraws the code. Null when refused.' })
  signedCredential!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@InputType({ description: 'A ride credential to put on the scanners’ blocklist.' })
export class BlockQrCredentialInput {
  @Field(() => ID, { description: 'Global id of the QrCredential.' })
  credential!: string;

  @Field({ description: 'Why (1 to 500 characters), e.g. “phone lost”.' })
  reason!: string;
}

@ObjectType({ description: 'The result of blockQrCredential.' })
export class QrCredentialPayload {
  @Field(() => QrCredentialType, { nullable: true, description: 'The credential, now blocked; null when refused.' })
  credential!: QrCredentialType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'One blocklist entry: a credential scanners refuse from now on.' })
export class QrBlockedCredentialType {
  @Field({ description: 'The credential’s id as the code carries it (a UUID).' })
  credentialId!: string;

  @Field(() => Int, { description: 'Its place in the card company’s blocklist; ask again with afterSequence set to the last one you hold.' })
  sequence!: number;

  @Field(() => DateTimeScalar, { description: 'When it was blocked.' })
  blockedAt!: Date;
}

@ObjectType('QrRetiredSigningCertificate', { description: 'A signing certificate retired by a host key rotation: it still verifies the credentials it signed before retiredAt, for scans before usableUntil, and nothing else.' })
export class QrRetiredSigningCertificateType {
  @Field({ description: 'PEM: the retired signing certificate (issued by the same city working CA as signingCertificates’ second).' })
  certificate!: string;

  @Field(() => DateTimeScalar, { description: 'When it was retired: a credential it signed with a validFrom at or after this is forged.' })
  retiredAt!: Date;

  @Field(() => DateTimeScalar, { description: 'retiredAt plus a credential’s validity (6 hours): drop it then; a code it signed scanned later is forged.' })
  usableUntil!: Date;
}

@ObjectType({ description: 'What a scanner needs to verify a card company’s ride codes offline: the signing certificate chain and the blocklist after the sequence it holds.' })
export class QrScannerUpdateType {
  @Field(() => [String], { description: 'PEM: the card company’s signing certificate (P-256, from its city working CA), then the city working CA’s. Check them up to the root you pin; a code names its signer by the first 8 bytes of SHA-256 over the signing key’s SubjectPublicKeyInfo.' })
  signingCertificates!: string[];

  @Field(() => [QrRetiredSigningCertificateType], { description: 'Signing certificates retired less than a credential’s validity ago, oldest first: keep each until its usableUntil for the credentials it signed before retirement (docs/qr-rides.md, “Host key rotation”).' })
  retiredSigningCertificates!: QrRetiredSigningCertificateType[];

  @Field(() => [QrBlockedCredentialType], { description: 'Blocklist entries after afterSequence, oldest first (at most 10,000: ask again from sequence until empty).' })
  blocked!: QrBlockedCredentialType[];

  @Field(() => Int, { description: 'The last sequence in this answer (afterSequence when there is nothing new).' })
  sequence!: number;
}

@InputType({ description: 'A scanner’s signed batch of the QR ride codes it let through.' })
export class UploadQrRideBatchInput {
  @Field(() => ID, { description: 'The scanner: a certified reader owned by a card company or a merchant.' })
  terminal!: string;

  @Field({ description: 'The scanner’s own id for the batch; the same batch sent again answers what was stored.' })
  batchId!: string;

  @Field({ description: 'JSON `{ "kind": "qr-rides", "rides": [{ code, scannedAt, amount }] }`, exactly as signed: the code as scanned, the scanner’s time (ISO-8601 with offset), the fare in minor units.' })
  body!: string;

  @Field({ description: 'Base64 RSA-SHA256 by the scanner’s device key over `onecard-offline-batch-v1\\n<terminal id>\\n<batchId>\\n<body>` (the offline batch signature).' })
  signature!: string;

  @Field({ description: 'The scanner’s city certificate (PEM).' })
  certificate!: string;
}

export enum QrRideOutcomeEnum {
  ACCEPTED = 'ACCEPTED',
  DEBT = 'DEBT',
  DUPLICATE = 'DUPLICATE',
  EXPIRED = 'EXPIRED',
  BLOCKED = 'BLOCKED',
  FORGED = 'FORGED',
  DEBT_LIMIT_EXCEEDED = 'DEBT_LIMIT_EXCEEDED',
  FARE_ABOVE_CAP = 'FARE_ABOVE_CAP',
}
registerEnumType(QrRideOutcomeEnum, {
  name: 'QrRideOutcome',
  description: 'What became of one QR ride. ACCEPTED and DEBT were booked (wallet → the scanner owner’s transit payable); the others were recorded, not booked.',
  valuesConfig: {
    ACCEPTED: { description: 'Booked from the wallet.' },
    DEBT: { description: 'Booked: what the wallet held, the rest as debt (within the wallet’s limit) the next top-up clears.' },
    DUPLICATE: { description: 'The same code (credential, counter and fresh time) was booked before (this or another batch, this or another scanner). The same counter with another time is booked, and the credential blocked.' },
    EXPIRED: { description: 'Outside the credential’s validity, or the fresh part was drawn more than 30 s from the scan (a screenshot).' },
    BLOCKED: { description: 'The credential was on the blocklist when scanned.' },
    FORGED: { description: 'Not a code, not signed by the card company or the credential’s device key, or no credential the card company issued.' },
    DEBT_LIMIT_EXCEEDED: { description: 'The wallet could not cover it within its debt limit: not booked, and the wallet’s credentials blocked.' },
    FARE_ABOVE_CAP: { description: 'The fare is above the fare cap the card company set for this scanner (setQrScanner): recorded, not booked.' },
  },
});

@ObjectType({ description: 'The answer to one ride of a QR ride batch.' })
export class QrRideResultType {
  @Field(() => Int, { description: 'The ride’s place in the body, from 0.' })
  index!: number;

  @Field(() => ID, { nullable: true, description: 'Global id of the QrCredential the code names (null when it names none the card company issued).' })
  credential!: string | null;

  // A uint32: past GraphQL Int's 2^31 - 1, so a Float (always a whole number).
  @Field(() => Float, { nullable: true, description: 'The code’s counter (from its fresh part): a whole number, 0 to 4294967295 (uint32, past GraphQL Int).' })
  counter!: number | null;

  @Field(() => MinorUnitsScalar, { description: 'The fare in minor units, as the scanner gave it.' })
  amount!: bigint;

  @Field(() => QrRideOutcomeEnum, { description: 'What became of the ride.' })
  outcome!: QrRideOutcomeEnum;

  @Field({ description: 'Whether the ride was booked (ACCEPTED or DEBT).' })
  accepted!: boolean;

  @Field({ description: 'Why this outcome, in a sentence for the developer.' })
  reason!: string;

  @Field(() => ID, { nullable: true, description: 'The ledger entry of a booked ride.' })
  journalEntry!: string | null;
}

@ObjectType({ description: 'A QR ride batch as stored, with the answer to each ride.' })
export class QrRideBatchType {
  @Field(() => ID, { description: 'Global id of the stored batch.' })
  id!: string;

  @Field(() => ID, { description: 'Global id of the scanner (a Reader).' })
  terminal!: string;

  @Field({ description: 'The scanner’s own id for the batch, as uploaded.' })
  batchId!: string;

  @Field(() => DateTimeScalar, { description: 'When the platform first received it.' })
  receivedAt!: Date;

  @Field(() => [QrRideResultType], { description: 'The answer to each ride, in the body’s order.' })
  rides!: QrRideResultType[];
}

@ObjectType({ description: 'The result of uploadQrRideBatch.' })
export class UploadQrRideBatchPayload {
  @Field(() => QrRideBatchType, { nullable: true, description: 'The batch with each ride’s answer; null when refused whole.' })
  batch!: QrRideBatchType | null;

  @Field({ description: 'True when this batch was received before and the stored answer is returned (nothing booked again).' })
  replayed!: boolean;

  @Field(() => [UserError], { description: 'Why the batch was refused whole (OFFLINE_BATCH_REFUSED naming the failed check, OFFLINE_BATCH_ID_REUSED, QR_SCANNER_NOT_REGISTERED); empty otherwise.' })
  userErrors!: UserError[];
}

@InputType({ description: 'Whether a terminal may upload QR rides, and the highest fare it may charge.' })
export class SetQrScannerInput {
  @Field(() => ID, { description: 'Global id of the terminal (a Reader of a card company or a merchant of your city), as setTerminalLocation names it.' })
  reader!: string;

  @Field({ defaultValue: true, description: 'True (the default): the terminal is a QR scanner (a bus validator, a metro gate) and its ride batches are taken. False: they are refused whole (QR_SCANNER_NOT_REGISTERED).' })
  acceptsQrRides!: boolean;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'The highest fare one ride may cost on this terminal, in minor units of its city’s currency: 1 to 100000 (1,000.00); 5000 (50.00) when omitted. A ride above it is recorded FARE_ABOVE_CAP, not booked. Omit it when acceptsQrRides is false.' })
  fareCap?: bigint | null;
}

@ObjectType('QrScanner', { description: 'A terminal as a QR scanner: whether it may upload QR rides, and its fare cap.' })
export class QrScannerType {
  @Field(() => ID, { description: 'Global id of the terminal (a Reader).' })
  reader!: string;

  @Field({ description: 'Whether its QR ride batches are taken.' })
  acceptsQrRides!: boolean;

  @Field(() => Money, { nullable: true, description: 'The highest fare one ride may cost on it; null when it takes no QR rides.' })
  fareCap!: Money | null;
}

@ObjectType({ description: 'The result of setQrScanner.' })
export class SetQrScannerPayload {
  @Field(() => QrScannerType, { nullable: true, description: 'The terminal as a scanner now; null when refused.' })
  scanner!: QrScannerType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}
