import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar } from '../graphql/scalars.js';

export enum CertificateStatusEnum {
  GOOD = 'GOOD',
  REVOKED = 'REVOKED',
  UNKNOWN = 'UNKNOWN',
}
registerEnumType(CertificateStatusEnum, {
  name: 'CertificateStatus',
  description: 'GOOD, REVOKED, or UNKNOWN (not issued by this platform).',
  valuesConfig: {
    GOOD: { description: 'Issued by this platform and not revoked (check `notAfter` for its expiry).' },
    REVOKED: { description: 'Revoked: `revokedAt` and `revocationReason` say when and why; it is on its CA’s CRL.' },
    UNKNOWN: { description: 'No certificate with this serial was issued by this platform.' },
  },
});

@ObjectType('CertificateStatusResult', { description: 'The revocation status of a certificate we issued (like an OCSP answer).' })
export class CertificateStatusType {
  @Field({ description: 'Serial number, lower-case hex.' })
  serial!: string;

  @Field(() => CertificateStatusEnum, { description: 'Good, revoked, or unknown to this platform.' })
  status!: CertificateStatusEnum;

  @Field(() => String, { nullable: true, description: 'The issuing CA id (e.g. `national`, `city-gz`).' })
  issuer!: string | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'The end of the certificate’s validity; null when UNKNOWN.' })
  notAfter!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was revoked; null unless REVOKED.' })
  revokedAt!: Date | null;

  @Field(() => Number, { nullable: true, description: 'RFC 5280 CRLReason code.' })
  revocationReason!: number | null;
}

@ObjectType('CertificateAuthority', { description: 'A CA of the platform’s hierarchy; its certificate and CRL are public.' })
export class CertificateAuthorityType {
  @Field({ description: '`root`, `national`, or `city-<code>`.' })
  id!: string;

  @Field({ description: 'ROOT, NATIONAL or CITY.' })
  kind!: string;

  @Field({ description: 'The CA’s name, as in its certificate subject, e.g. "OneCard National Working CA".' })
  name!: string;

  @Field({ description: 'PEM; also at /pki/<id>.pem.' })
  certificatePem!: string;

  @Field(() => String, { nullable: true, description: 'Where its CRL is served (DER); none for the offline root.' })
  crlUrl!: string | null;
}
