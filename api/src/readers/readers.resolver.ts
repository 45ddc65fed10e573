import type { EntityManager } from '@mikro-orm/postgresql';
import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { findCardholder } from '../auth/cardholders.service.js';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { Principal } from '../auth/principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { findBiller, findCardCompany, findCity, findMerchant } from '../tenancy/tenancy.service.js';
import { changeReaderStatus, findReaderFor, issueNationalCertificate, listReadersFor, type ReaderOwnerKind, type ReaderRow, type ReaderStatus, registerReader } from './readers.service.js';
import {
  ApproveReaderNationalCertificatePayload,
  ReaderConnection,
  type ReaderOwnerKindEnum,
  ReaderPayload,
  ReaderStatusEnum,
  ReaderStatusInput,
  ReaderType,
  RegisterReaderInput,
  RegisterReaderPayload,
} from './readers.types.js';

const OWNER_TYPES: Record<string, ReaderOwnerKind> = { Merchant: 'MERCHANT', Biller: 'BILLER', CardCompany: 'CARD_COMPANY', Cardholder: 'CARDHOLDER' };
const OWNER_TYPE_NAMES: Record<ReaderOwnerKind, string> = { MERCHANT: 'Merchant', BILLER: 'Biller', CARD_COMPANY: 'CardCompany', CARDHOLDER: 'Cardholder' };

export function readerView(row: ReaderRow): ReaderType {
  return Object.assign(new ReaderType(), {
    id: toGlobalId('Reader', row.id),
    uuid: row.id,
    cityUuid: row.city_id,
    serial: row.serial,
    model: row.model,
    ownerKind: row.owner_kind as ReaderOwnerKindEnum,
    owner: toGlobalId(OWNER_TYPE_NAMES[row.owner_kind], row.owner_id),
    city: toGlobalId('City', row.city_id),
    terminalNumber: row.terminal_number,
    status: row.status as ReaderStatusEnum,
    nationalCertificateSerial: row.national_certificate_serial,
    cityCertificateSerial: row.city_certificate_serial,
    createdAt: row.created_at,
  });
}

/** The owner named by a global id, with the city it belongs to (a cardholder belongs to none). */
async function resolveOwner(em: EntityManager, globalId: string): Promise<{ kind: ReaderOwnerKind; id: string; name: string; cityId: string | null } | null> {
  const { type, id } = fromGlobalId(globalId);
  const kind = OWNER_TYPES[type];
  if (!kind) return null;
  if (kind === 'MERCHANT') return (await findMerchant(em, id).then((m) => m && { kind, id, name: m.name, cityId: m.city.id })) ?? null;
  if (kind === 'BILLER') return (await findBiller(em, id).then((b) => b && { kind, id, name: b.name, cityId: b.city.id })) ?? null;
  if (kind === 'CARD_COMPANY') return (await findCardCompany(em, id).then((c) => c && { kind, id, name: c.name, cityId: c.city.id })) ?? null;
  return (await findCardholder(em, id).then((h) => h && { kind, id, name: h.displayName, cityId: null })) ?? null;
}

/** The operator manages every reader; a card company those of its own city. */
async function mayManage(em: EntityManager, principal: Principal, cityId: string): Promise<boolean> {
  if (principal.kind === 'OPERATOR') return true;
  if (principal.kind !== 'ISSUER' || !principal.tenantId) return false;
  const company = await findCardCompany(em, principal.tenantId);
  return company?.city.id === cityId;
}


nodeLoaders.set('Reader', async (ctx, id) => {
  const row = ctx.principal && (await findReaderFor(ctx.em, ctx.principal, id));
  return row ? readerView(row) : null;
});

@Resolver(() => ReaderType)
export class ReaderResolver {
  @Authorized()
  @Query(() => ReaderType, { nullable: true, description: 'A reader you may see: yours, your city’s (card company), or any (operator).' })
  async reader(@Arg('id', () => ID, { description: 'Global id of the Reader.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<ReaderType | null> {
    const row = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(id, 'Reader').id);
    return row ? readerView(row) : null;
  }

  @Authorized()
  @Query(() => ReaderConnection, { description: 'The readers you may see, in serial order.' })
  async readers(@Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listReadersFor(ctx.em, ctx.principal!, { afterSerial: page.after?.sortKey, limit: page.fetch });
    return toConnection(rows, page, (r) => ({ sortKey: r.serial, id: r.id }), readerView);
  }

  @Authorized('OPERATOR', 'ISSUER', 'readers:manage')
  @Mutation(() => RegisterReaderPayload, { description: 'Registers a reader from three CSRs over three keys, one per purpose (national: access; city: signing; encryption); returns the three certificate chains. The operator, or the card company of the reader’s city; scope readers:manage.' })
  async registerReader(@Arg('input', () => RegisterReaderInput, { description: 'The reader to register.' }) input: RegisterReaderInput, @Ctx() ctx: GraphQLContext): Promise<RegisterReaderPayload> {
    const none = { reader: null, nationalCertificateChain: [], cityCertificateChain: [], encryptionCertificateChain: [] };
    const city = await findCity(ctx.em, fromGlobalId(input.city, 'City').id);
    if (!city || !(await mayManage(ctx.em, ctx.principal!, city.id))) return { ...none, userErrors: [userError(UserErrorCode.NOT_FOUND, `no city ${input.city} you manage readers of`, ['input', 'city'])] };
    const owner = await resolveOwner(ctx.em, input.owner);
    if (!owner) return { ...none, userErrors: [userError(UserErrorCode.NOT_FOUND, `no owner ${input.owner}`, ['input', 'owner'])] };
    if (owner.cityId && owner.cityId !== city.id) return { ...none, userErrors: [userError(UserErrorCode.INVALID_INPUT, 'the owner belongs to another city', ['input', 'owner'])] };
    return withUserErrors<RegisterReaderPayload>(async () => {
      const result = await registerReader(ctx.em, await loadKeyEncryptionKey(ctx.config), {
        serial: input.serial,
        model: input.model,
        owner,
        cityId: city.id,
        cityCode: city.code,
        terminalNumber: input.terminalNumber ?? undefined,
        nationalCsrPem: input.nationalCsr,
        cityCsrPem: input.cityCsr,
        encryptionCsrPem: input.encryptionCsr,
        // The operator is the national authority; a card company's registration waits for it.
        nationalAuthority: ctx.principal!.kind === 'OPERATOR',
        publicUrl: ctx.config.publicUrl,
      });
      return { reader: readerView(result.reader), nationalCertificateChain: result.nationalChainPem, cityCertificateChain: result.cityChainPem, encryptionCertificateChain: result.encryptionChainPem, userErrors: [] };
    }, none);
  }

  private async transition(ctx: GraphQLContext, input: ReaderStatusInput, to: ReaderStatus): Promise<ReaderPayload> {
    const row = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.reader, 'Reader').id);
    if (!row || !(await mayManage(ctx.em, ctx.principal!, row.city_id))) return { reader: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no reader ${input.reader} you manage`, ['input', 'reader'])] };
    return withUserErrors<ReaderPayload>(async () => ({ reader: readerView(await changeReaderStatus(ctx.em, row.id, to)), userErrors: [] }), { reader: null });
  }

  @Authorized('OPERATOR', 'ISSUER', 'readers:manage')
  @Mutation(() => ReaderPayload, { description: 'Suspends a reader: it cannot open card sessions until re-activated. The operator, or the card company of its city; scope readers:manage.' })
  suspendReader(@Arg('input', () => ReaderStatusInput, { description: 'The reader to suspend.' }) input: ReaderStatusInput, @Ctx() ctx: GraphQLContext) {
    return this.transition(ctx, input, 'SUSPENDED');
  }

  @Authorized('OPERATOR', 'ISSUER', 'readers:manage')
  @Mutation(() => ReaderPayload, { description: 'Re-activates a suspended reader (a revoked one cannot be). The operator, or the card company of its city; scope readers:manage.' })
  activateReader(@Arg('input', () => ReaderStatusInput, { description: 'The reader to re-activate.' }) input: ReaderStatusInput, @Ctx() ctx: GraphQLContext) {
    return this.transition(ctx, input, 'ACTIVE');
  }

  @Authorized('OPERATOR', 'ISSUER', 'readers:manage')
  @Mutation(() => ReaderPayload, { description: 'Revokes a reader for good, and both its certificates (they appear on the CRLs). The operator, or the card company of its city; scope readers:manage.' })
  revokeReader(@Arg('input', () => ReaderStatusInput, { description: 'The reader to revoke.' }) input: ReaderStatusInput, @Ctx() ctx: GraphQLContext) {
    return this.transition(ctx, input, 'REVOKED');
  }

  @Authorized('OPERATOR', 'readers:manage')
  @Mutation(() => ApproveReaderNationalCertificatePayload, {
    description: 'The national authority issues a reader’s national certificate from the CSR its registration by a card company kept; until then the reader opens no session. The operator only; scope readers:manage.',
  })
  async approveReaderNationalCertificate(@Arg('input', () => ReaderStatusInput, { description: 'The reader to approve.' }) input: ReaderStatusInput, @Ctx() ctx: GraphQLContext): Promise<ApproveReaderNationalCertificatePayload> {
    return withUserErrors<ApproveReaderNationalCertificatePayload>(async () => {
      const done = await issueNationalCertificate(ctx.em, await loadKeyEncryptionKey(ctx.config), fromGlobalId(input.reader, 'Reader').id, ctx.config.publicUrl);
      return { reader: readerView(done.reader), nationalCertificateChain: done.nationalChainPem, userErrors: [] };
    }, { reader: null, nationalCertificateChain: [] });
  }
}
