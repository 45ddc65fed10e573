import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../../graphql/global-id.js';
import { userError, UserErrorCode } from '../../graphql/user-error.js';
import { loadKeyEncryptionKey } from '../../secrets/kek.js';
import { findCardCompany } from '../../tenancy/tenancy.service.js';
import { SoftwareKeyStore } from '../key-store.js';
import { findReaderFor } from '../readers.service.js';
import { COUNTER_LOAD } from './counter-load.js';
import { handleMessage, openSession, type ReaderCommand, type SessionRow } from './card-session.service.js';
import { CardOperationEnum, CardSessionMessageInput, CardSessionPayload, type CardSessionStateEnum, CardSessionType, OpenCardSessionInput, ReaderCommandType, SealedCommandType } from './card-session.types.js';

/** The largest load a card company may put on a card at its counter in one session (1,000.00 CNY). */
const MAX_COUNTER_LOAD = 100_000n;

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

const commandView = (c: ReaderCommand) => Object.assign(new ReaderCommandType(), { apdu: c.apdu ?? null, sealed: c.sealed ? Object.assign(new SealedCommandType(), c.sealed) : null });

@Resolver()
export class CardSessionResolver {
  @Authorized()
  @Mutation(() => CardSessionPayload, {
    description: 'Opens a card session on a reader you may use. BALANCE: any client that sees the reader. LOAD: the card company at its counter (scope topups:write), on a reader of its city.',
  })
  async openCardSession(@Arg('input', () => OpenCardSessionInput) input: OpenCardSessionInput, @Ctx() ctx: GraphQLContext): Promise<CardSessionPayload> {
    const principal = ctx.principal!;
    const reader = await findReaderFor(ctx.em, principal, fromGlobalId(input.reader, 'Reader').id);
    const refuse = (code: UserErrorCode, message: string, field: string) => ({ session: null, commands: [], userErrors: [userError(code, message, ['input', field])] });
    if (!reader) return refuse(UserErrorCode.NOT_FOUND, `no reader ${input.reader}`, 'reader');
    if (reader.status !== 'ACTIVE') return refuse(UserErrorCode.INVALID_INPUT, `the reader is ${reader.status}`, 'reader');
    if (input.operation === CardOperationEnum.BALANCE) {
      if (input.amount != null) return refuse(UserErrorCode.INVALID_INPUT, 'a balance read takes no amount', 'amount');
      const session = await openSession(ctx.em, { reader, operation: 'BALANCE', clientId: principal.clientId });
      return { session: sessionView(session), commands: [], userErrors: [] };
    }
    // A load at the card company's counter: the cash it took in becomes value on the card.
    const company = principal.kind === 'ISSUER' && principal.tenantId ? await findCardCompany(ctx.em, principal.tenantId) : null;
    if (!company || company.city.id !== reader.city_id || !principal.scopes.includes('topups:write')) {
      return refuse(UserErrorCode.FORBIDDEN_OPERATION, 'a load is opened by the card company of the reader’s city (scope topups:write)', 'operation');
    }
    if (input.amount == null || input.amount <= 0n || input.amount > MAX_COUNTER_LOAD) return refuse(UserErrorCode.INVALID_INPUT, `a load is 1 to ${MAX_COUNTER_LOAD} minor units`, 'amount');
    const session = await openSession(ctx.em, { reader, operation: 'LOAD', amount: input.amount, clientId: principal.clientId, purpose: COUNTER_LOAD, purposeData: { cardCompanyId: company.id } });
    return { session: sessionView(session), commands: [], userErrors: [] };
  }

  @Authorized()
  @Mutation(() => CardSessionPayload, { description: 'Relays one signed reader message; returns the commands for the card, or why the session was refused (and ended).' })
  async cardSessionMessage(@Arg('input', () => CardSessionMessageInput) input: CardSessionMessageInput, @Ctx() ctx: GraphQLContext): Promise<CardSessionPayload> {
    const keyStore = new SoftwareKeyStore(ctx.em.fork(), await loadKeyEncryptionKey(ctx.config));
    const outcome = await handleMessage(ctx.em, { keyStore }, { sessionId: fromGlobalId(input.session, 'CardSession').id, seq: input.seq, body: input.body, signature: input.signature, clientId: ctx.principal!.clientId });
    if (outcome.ok) return { session: sessionView(outcome.session), commands: outcome.commands.map(commandView), userErrors: [] };
    if (!outcome.session) return { session: null, commands: [], userErrors: [userError(UserErrorCode.NOT_FOUND, 'no such card session', ['input', 'session'])] };
    return { session: sessionView(outcome.session), commands: [], userErrors: [userError(UserErrorCode.CARD_SESSION_REFUSED, `${outcome.refusal}: ${outcome.message}`, ['input'])] };
  }
}
