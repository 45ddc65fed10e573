import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import { scopeByKind } from '../auth/scopes.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { requestKeyStore } from '../readers/keys/key-store-for.js';
import { findReaderFor, type ReaderRow } from '../readers/readers.service.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { type BatchAnswer, uploadOfflineBatch } from './offline-upload.service.js';
import { OfflineBatchType, type OfflineOutcomeEnum, OfflineRecordResultType, UploadOfflineBatchInput, UploadOfflineBatchPayload } from './offline-upload.types.js';

/**
 * Who relays a terminal's batches: the merchant that owns it (scope payments:write), or the card
 * company that owns it (scope topups:write). Anyone else's terminal answers as a missing one.
 */
function mayUpload(ctx: GraphQLContext, terminal: ReaderRow): boolean {
  const p = ctx.principal!;
  if (p.kind === 'MERCHANT') return terminal.owner_kind === 'MERCHANT' && terminal.owner_id === p.tenantId && p.scopes.includes('payments:write');
  if (p.kind === 'ISSUER') return terminal.owner_kind === 'CARD_COMPANY' && terminal.owner_id === p.tenantId && p.scopes.includes('topups:write');
  return false;
}

function batchView(answer: BatchAnswer): OfflineBatchType {
  return Object.assign(new OfflineBatchType(), {
    id: toGlobalId('OfflineBatch', answer.id),
    terminal: toGlobalId('Reader', answer.readerId),
    batchId: answer.batchId,
    receivedAt: new Date(answer.receivedAt),
    records: answer.records.map((r) =>
      Object.assign(new OfflineRecordResultType(), {
        index: r.index,
        asn: r.asn,
        offlineCounter: r.offlineCounter,
        amount: BigInt(r.amount),
        outcome: r.outcome as OfflineOutcomeEnum,
        accepted: r.accepted,
        reason: r.reason,
        journalEntry: r.journalEntryId ? toGlobalId('JournalEntry', r.journalEntryId) : null,
      }),
    ),
  });
}

@Resolver()
export class OfflineUploadResolver {
  @Authorized(...scopeByKind({ MERCHANT: 'payments:write', ISSUER: 'topups:write' }))
  @Mutation(() => UploadOfflineBatchPayload, {
    description:
      'A certified terminal’s signed batch of offline card purchases (issue 8), relayed by its owner: the merchant (scope payments:write) or the card company (scope topups:write). A batch whose certificate, terminal or signature fails is refused whole (OFFLINE_BATCH_REFUSED); otherwise each record is answered, and ACCEPTED/GAP ones are posted. The same batch again returns the stored answer.',
  })
  async uploadOfflineBatch(@Arg('input', () => UploadOfflineBatchInput, { description: 'The terminal, its batch, the signature and its certificate.' }) input: UploadOfflineBatchInput, @Ctx() ctx: GraphQLContext): Promise<UploadOfflineBatchPayload> {
    const terminal = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.terminal, 'Reader').id);
    if (!terminal || !mayUpload(ctx, terminal)) return { batch: null, replayed: false, userErrors: [userError(UserErrorCode.NOT_FOUND, `no terminal ${input.terminal} you may upload for`, ['input', 'terminal'])] };
    const keyStore = requestKeyStore(ctx.em, await loadKeyEncryptionKey(ctx.config), ctx.config);
    return withUserErrors<UploadOfflineBatchPayload>(async () => {
      const { answer, replayed } = await uploadOfflineBatch(ctx.em, { keyStore, topUpLimits: ctx.config.topUpLimits }, { terminal, terminalGlobalId: input.terminal, batchId: input.batchId, body: input.body, signature: input.signature, certificate: input.certificate });
      return { batch: batchView(answer), replayed, userErrors: [] };
    }, { batch: null, replayed: false });
  }
}
