import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { scopeByKind } from '../auth/scopes.js';
import type { GraphQLContext } from '../graphql/context.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { findReaderFor, type ReaderRow } from '../readers/readers.service.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { blockQrCredential, type CredentialRow, issueQrCredential, scannerUpdate } from './qr-credentials.js';
import { type QrBatchAnswer, uploadQrRideBatch } from './qr-ride-batches.js';
import { setQrScanner } from './qr-scanners.js';
import { Money } from '../graphql/money.js';
import {
  BlockQrCredentialInput,
  IssueQrCredentialInput,
  IssueQrCredentialPayload,
  QrBlockedCredentialType,
  QrCredentialPayload,
  QrCredentialType,
  QrRideBatchType,
  type QrRideOutcomeEnum,
  QrRideResultType,
  QrRetiredSigningCertificateType,
  QrScannerType,
  QrScannerUpdateType,
  SetQrScannerInput,
  SetQrScannerPayload,
  UploadQrRideBatchInput,
  UploadQrRideBatchPayload,
} from './qr.types.js';

const credentialView = (row: Pick<CredentialRow, 'id' | 'wallet_id' | 'valid_from' | 'valid_until' | 'blocked_at'>): QrCredentialType =>
  Object.assign(new QrCredentialType(), {
    id: toGlobalId('QrCredential', row.id),
    credentialId: row.id,
    wallet: toGlobalId('TransitWallet', row.wallet_id),
    validFrom: row.valid_from,
    validUntil: row.valid_until,
    blockedAt: row.blocked_at,
  });

function batchView(answer: QrBatchAnswer): QrRideBatchType {
  return Object.assign(new QrRideBatchType(), {
    id: toGlobalId('QrRideBatch', answer.id),
    terminal: toGlobalId('Reader', answer.readerId),
    batchId: answer.batchId,
    receivedAt: new Date(answer.receivedAt),
    rides: answer.rides.map((r) =>
      Object.assign(new QrRideResultType(), {
        index: r.index,
        credential: r.credentialId ? toGlobalId('QrCredential', r.credentialId) : null,
        counter: r.counter,
        amount: BigInt(r.amount),
        outcome: r.outcome as QrRideOutcomeEnum,
        accepted: r.accepted,
        reason: r.reason,
        journalEntry: r.journalEntryId ? toGlobalId('JournalEntry', r.journalEntryId) : null,
      }),
    ),
  });
}

/** Who relays a scanner's batches: as for offline card batches, its owner (merchant payments:write, card company topups:write). */
function mayUpload(ctx: GraphQLContext, terminal: ReaderRow): boolean {
  const p = ctx.principal!;
  if (p.kind === 'MERCHANT') return terminal.owner_kind === 'MERCHANT' && terminal.owner_id === p.tenantId && p.scopes.includes('payments:write');
  if (p.kind === 'ISSUER') return terminal.owner_kind === 'CARD_COMPANY' && terminal.owner_id === p.tenantId && p.scopes.includes('topups:write');
  return false;
}

/** QR-code rides (乘车码, issue 25 item 2): credentials for the holder's app, the scanners' update, their ride batches. */
@Resolver()
export class QrRideResolver {
  @Authorized('CARDHOLDER_APP', 'card:topup')
  @Mutation(() => IssueQrCredentialPayload, {
    description:
      'A ride credential for your holder’s transit wallet (cardholder app, scope card:topup): the card company signs the wallet, holder, validity window (6 hours) and the app’s device key; the app adds a fresh part signed by the device key each time it redraws the code (docs/qr-rides.md). Refused INSUFFICIENT_FUNDS while the wallet owes its whole debt limit.',
  })
  async issueQrCredential(@Arg('input', () => IssueQrCredentialInput, { description: 'The wallet and the app’s device public key.' }) input: IssueQrCredentialInput, @Ctx() ctx: GraphQLContext): Promise<IssueQrCredentialPayload> {
    return withUserErrors<IssueQrCredentialPayload>(async () => {
      const issued = await issueQrCredential(ctx.em, { kek: await loadKeyEncryptionKey(ctx.config), publicUrl: ctx.config.publicUrl }, ctx.principal!, { walletId: fromGlobalId(input.wallet, 'TransitWallet').id, devicePublicKey: input.devicePublicKey });
      return { credential: credentialView({ id: issued.id, wallet_id: issued.walletId, valid_from: issued.validFrom, valid_until: issued.validUntil, blocked_at: null }), signedCredential: issued.code, userErrors: [] };
    }, { credential: null, signedCredential: null });
  }

  @Authorized(...scopeByKind({ CARDHOLDER_APP: 'card:topup', ISSUER: 'topups:write' }))
  @Mutation(() => QrCredentialPayload, { description: 'Puts a ride credential on the scanners’ blocklist: your holder’s (cardholder app, card:topup: a lost phone), your card company’s wallets’ (topups:write). Blocked stays blocked.' })
  async blockQrCredential(@Arg('input', () => BlockQrCredentialInput, { description: 'The credential and why.' }) input: BlockQrCredentialInput, @Ctx() ctx: GraphQLContext): Promise<QrCredentialPayload> {
    return withUserErrors<QrCredentialPayload>(async () => ({ credential: credentialView(await blockQrCredential(ctx.em, ctx.principal!, { credentialId: fromGlobalId(input.credential, 'QrCredential').id, reason: input.reason })), userErrors: [] }), { credential: null });
  }

  @Authorized()
  @Query(() => QrScannerUpdateType, { nullable: true, description: 'What scanners need to verify a card company’s ride codes offline: its signing certificates and the blocklist after afterSequence (a delta). Any signed-in client (credential ids only, nothing personal); null for an unknown card company.' })
  async qrScannerUpdate(
    @Arg('cardCompany', () => ID, { description: 'Global id of the CardCompany.' }) cardCompany: string,
    @Arg('afterSequence', () => Int, { defaultValue: 0, description: 'The last blocklist sequence the scanner holds (0 for all).' }) afterSequence: number,
    @Ctx() ctx: GraphQLContext,
  ): Promise<QrScannerUpdateType | null> {
    const update = await scannerUpdate(ctx.em, { kek: await loadKeyEncryptionKey(ctx.config), publicUrl: ctx.config.publicUrl }, fromGlobalId(cardCompany, 'CardCompany').id, Math.max(0, afterSequence));
    if (!update) return null;
    return Object.assign(new QrScannerUpdateType(), {
      signingCertificates: update.signingCertificates,
      retiredSigningCertificates: update.retiredSigningCertificates.map((r) => Object.assign(new QrRetiredSigningCertificateType(), r)),
      blocked: update.blocked.map((b) => Object.assign(new QrBlockedCredentialType(), b)),
      sequence: update.sequence,
    });
  }

  @Authorized('OPERATOR', 'ISSUER', 'readers:manage')
  @Mutation(() => SetQrScannerPayload, {
    description:
      'Lets a terminal upload QR rides, with the highest fare it may charge, or stops it (docs/qr-rides.md, “Scanners and fare caps”). The operator, or the card company of the terminal’s city (scope readers:manage): it clears the rides, and the holder’s code does not sign the fare.',
  })
  async setQrScanner(@Arg('input', () => SetQrScannerInput, { description: 'The terminal, whether it takes QR rides, its fare cap.' }) input: SetQrScannerInput, @Ctx() ctx: GraphQLContext): Promise<SetQrScannerPayload> {
    const terminal = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.reader, 'Reader').id);
    if (!terminal) return { scanner: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no terminal ${input.reader} you manage`, ['input', 'reader'])] };
    return withUserErrors<SetQrScannerPayload>(async () => {
      const row = await setQrScanner(ctx.em, ctx.principal!, terminal, { acceptsQrRides: input.acceptsQrRides, fareCap: input.fareCap ?? null });
      const [city] = row ? await ctx.em.execute<{ currency: string }[]>(`select currency from city where id = ?`, [terminal.city_id]) : [];
      return {
        scanner: Object.assign(new QrScannerType(), { reader: toGlobalId('Reader', terminal.id), acceptsQrRides: !!row, fareCap: row ? Money.of(BigInt(row.fare_cap), city!.currency.trim()) : null }),
        userErrors: [],
      };
    }, { scanner: null });
  }

  @Authorized(...scopeByKind({ MERCHANT: 'payments:write', ISSUER: 'topups:write' }))
  @Mutation(() => UploadQrRideBatchPayload, {
    description:
      'A scanner’s signed batch of QR ride codes, relayed by its owner (merchant payments:write, card company topups:write). The batch passes the offline batch checks (certificate, terminal, signature) or is refused whole (OFFLINE_BATCH_REFUSED); each ride is verified again and booked once from the wallet (ACCEPTED, DEBT) with a clearing item like a card fare. The same batch again returns the stored answer.',
  })
  async uploadQrRideBatch(@Arg('input', () => UploadQrRideBatchInput, { description: 'The scanner, its batch, the signature and its certificate.' }) input: UploadQrRideBatchInput, @Ctx() ctx: GraphQLContext): Promise<UploadQrRideBatchPayload> {
    const terminal = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.terminal, 'Reader').id);
    if (!terminal || !mayUpload(ctx, terminal)) return { batch: null, replayed: false, userErrors: [userError(UserErrorCode.NOT_FOUND, `no terminal ${input.terminal} you may upload for`, ['input', 'terminal'])] };
    const kek = await loadKeyEncryptionKey(ctx.config);
    return withUserErrors<UploadQrRideBatchPayload>(async () => {
      const { answer, replayed } = await uploadQrRideBatch(ctx.em, { kek, publicUrl: ctx.config.publicUrl }, { terminal, terminalGlobalId: input.terminal, batchId: input.batchId, body: input.body, signature: input.signature, certificate: input.certificate });
      return { batch: batchView(answer), replayed, userErrors: [] };
    }, { batch: null, replayed: false });
  }
}
