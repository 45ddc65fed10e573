import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../../graphql/global-id.js';
import { userError, UserErrorCode } from '../../graphql/user-error.js';
import { ChargedInItsTransaction } from '../../graphql/cost-throttle.js';
import type {} from './session-reads.js'; // ctx.sessionReads
import { loadKeyEncryptionKey } from '../../secrets/kek.js';
import { requestKeyStore } from '../keys/key-store-for.js';
import { findReaderFor } from '../readers.service.js';
import { type CardSessionEngine, openSession } from './card-session.service.js';
import { hostKeyOfCity } from '../../pki/host-key.js';
import { ApplicationSelectionType, type ApplicationSelectionKindEnum, CardOperationEnum, CardSessionMessageInput, CardSessionPayload, type CardSessionStateEnum, CardSessionType, HostMessageType, OpenCardSessionInput, ReaderCommandType, SealedCommandType } from './card-session.types.js';
import { type OpenOutcome, openRefusal } from './purpose.js';
import type { ReaderCommand, SessionRow } from './session.model.js';
import { type SelectionStep, selectionValue } from './card-profile.js';

export function sessionView(row: SessionRow): CardSessionType {
  return Object.assign(new CardSessionType(), {
    id: toGlobalId('CardSession', row.id),
    operation: row.operation as CardOperationEnum,
    state: row.state as CardSessionStateEnum,
    challenge: row.challenge,
    nextSeq: row.next_seq,
    expiresAt: row.expires_at,
    reader: toGlobalId('Reader', row.reader_id),
    amount: row.amount === null ? null : BigInt(row.amount),
    result: row.result,
    refusal: row.refusal,
  });
}

const sealedView = (s: ReaderCommand['sealed']) => (s ? Object.assign(new SealedCommandType(), s) : null);
export const selectionView = (step: SelectionStep) => Object.assign(new ApplicationSelectionType(), { kind: step.kind as ApplicationSelectionKindEnum, value: selectionValue(step) });

const commandView = (c: ReaderCommand) =>
  Object.assign(new ReaderCommandType(), { apdu: c.apdu ?? null, sealed: sealedView(c.sealed), readUid: c.readUid ?? null, sealedScript: sealedView(c.sealedScript), select: c.select ? c.select.map(selectionView) : null });

declare module '../../graphql/context.js' {
  interface GraphQLContext {
    /** The card-session engine with the purposes the composition root handed it (api/src/card-sessions.ts; createHttpApp puts it here). */
    cardSessions?: CardSessionEngine;
  }
}

/** The engine the composition root built (api/src/card-sessions.ts), with its purposes. */
function engineOf(ctx: GraphQLContext): CardSessionEngine {
  if (!ctx.cardSessions) throw new Error('no card-session engine in the GraphQL context (createHttpApp takes one)');
  return ctx.cardSessions;
}

/**
 * A balance read needs no purpose: any client that sees the reader. A load or a purchase is opened
 * by its purpose (who may open it, for what amount), chosen by the fields the request names.
 */
async function open(ctx: GraphQLContext, input: OpenCardSessionInput): Promise<OpenOutcome> {
  const reader = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.reader, 'Reader').id);
  if (!reader) return openRefusal(UserErrorCode.NOT_FOUND, `no reader ${input.reader}`, 'reader');
  if (reader.status !== 'ACTIVE') return openRefusal(UserErrorCode.INVALID_INPUT, `the reader is ${reader.status}`, 'reader');
  if (!reader.national_certificate_serial) return openRefusal(UserErrorCode.INVALID_INPUT, 'the reader’s national certificate awaits the national authority’s approval', 'reader');
  if (input.operation === CardOperationEnum.BALANCE) {
    if (input.amount != null) return openRefusal(UserErrorCode.INVALID_INPUT, 'a balance read takes no amount', 'amount');
    return openSession(ctx.em, { reader, operation: 'BALANCE', cardType: input.cardType ?? 'CPU', clientId: ctx.principal!.clientId, charge: ctx.costCharge });
  }
  const purpose = engineOf(ctx).purposeFor(input);
  if (!purpose) return openRefusal(UserErrorCode.FORBIDDEN_OPERATION, `no ${input.operation} is served here`, 'operation');
  return purpose.open(ctx, reader, input);
}

@Resolver()
export class CardSessionResolver {
  @Authorized()
  @Mutation(() => CardSessionPayload, {
    description:
      'Opens a card session on a reader you may use. BALANCE: any client that sees the reader. LOAD with topUp: writes a PAID top-up onto its card (the holder’s app on its reader, scope card:topup; or the card company, scope topups:write). LOAD without: the card company at its counter (scope topups:write), on a reader of its city. PURCHASE with payment: pays a merchant’s Payment (the holder’s app on its reader, scope card:topup; or the merchant on its reader, scope payments:write). PURCHASE with billPayment: pays a bill (the holder’s app that made the bill payment, scope card:topup). PURCHASE: the merchant that owns the reader (scope payments:write).',
  })
  @ChargedInItsTransaction()
  async openCardSession(@Arg('input', () => OpenCardSessionInput, { description: 'The session to open.' }) input: OpenCardSessionInput, @Ctx() ctx: GraphQLContext): Promise<CardSessionPayload> {
    const outcome = await open(ctx, input);
    if ('code' in outcome) return { session: null, commands: [], userErrors: [userError(outcome.code, outcome.message, ['input', outcome.field])] };
    return { session: sessionView(outcome), commands: [], userErrors: [] };
  }

  @Authorized()
  @Mutation(() => CardSessionPayload, { description: 'Relays one signed reader message; returns the commands for the card, or why the session was refused (and ended). Only the client that opened the session.' })
  @ChargedInItsTransaction()
  async cardSessionMessage(@Arg('input', () => CardSessionMessageInput, { description: 'The reader’s signed message.' }) input: CardSessionMessageInput, @Ctx() ctx: GraphQLContext): Promise<CardSessionPayload> {
    const kek = await loadKeyEncryptionKey(ctx.config);
    const keyStore = requestKeyStore(ctx.em, kek, ctx.config, ctx.sessionReads);
    const hostKey = (em: typeof ctx.em, reader: { city_id: string }) => hostKeyOfCity(em, kek, reader.city_id, ctx.config.publicUrl, ctx.sessionReads);
    const outcome = await engineOf(ctx).handleMessage(ctx.em, { keyStore, hostKey, charge: ctx.costCharge, reads: ctx.sessionReads }, { sessionId: fromGlobalId(input.session, 'CardSession').id, seq: input.seq, body: input.body, signature: input.signature, clientId: ctx.principal!.clientId });
    if (outcome.ok) return { session: sessionView(outcome.session), commands: outcome.commands.map(commandView), hostMessage: Object.assign(new HostMessageType(), outcome.hostMessage), userErrors: [] };
    if (!outcome.session) return { session: null, commands: [], userErrors: [userError(UserErrorCode.NOT_FOUND, 'no such card session', ['input', 'session'])] };
    return { session: sessionView(outcome.session), commands: [], userErrors: [userError(UserErrorCode.CARD_SESSION_REFUSED, `${outcome.refusal}: ${outcome.message}`, ['input'])] };
  }
}
