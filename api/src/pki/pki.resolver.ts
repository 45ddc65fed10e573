import { Arg, Ctx, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../graphql/context.js';
import { crlUrl, findIssued, listCas } from './pki.service.js';
import { CertificateAuthorityType, CertificateStatusEnum, CertificateStatusType } from './pki.types.js';

@Resolver()
export class PkiResolver {
  @Query(() => CertificateStatusType, { description: 'Whether a certificate this platform issued is good or revoked. Public, like OCSP.' })
  async certificateStatus(@Arg('serial', { description: 'Serial number in hex.' }) serial: string, @Ctx() ctx: GraphQLContext): Promise<CertificateStatusType> {
    const row = await findIssued(ctx.em, serial);
    return Object.assign(new CertificateStatusType(), {
      serial: serial.toLowerCase(),
      status: row ? (row.status as CertificateStatusEnum) : CertificateStatusEnum.UNKNOWN,
      issuer: row?.ca_id ?? null,
      notAfter: row?.not_after ?? null,
      revokedAt: row?.revoked_at ?? null,
      revocationReason: row?.revocation_reason ?? null,
    });
  }

  @Query(() => [CertificateAuthorityType], { description: 'The CA hierarchy: what a reader or relying party needs to build its trust store. Public.' })
  async certificateAuthorities(@Ctx() ctx: GraphQLContext): Promise<CertificateAuthorityType[]> {
    return (await listCas(ctx.em)).map((ca) =>
      Object.assign(new CertificateAuthorityType(), {
        id: ca.id,
        kind: ca.kind,
        name: ca.name,
        certificatePem: ca.certificate_pem,
        crlUrl: ca.kind === 'ROOT' ? null : crlUrl(ctx.config.publicUrl, ca.id),
      }),
    );
  }
}
