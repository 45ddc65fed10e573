import type { EntityManager } from '@mikro-orm/postgresql';
import { toGlobalId } from '../../../graphql/global-id.js';
import { allOk, M1AnswerError, type M1PurseLayout, type M1Result, purseValue, readPurseScript, WRITE_SCRIPT_LAST_CHECK, WRITE_SCRIPT_STEPS, writePurseScript } from '../../m1/m1-script.js';
import type { ReaderRow } from '../../readers.service.js';
import { type CardProfile, DEFAULT_CARD_PROFILE } from '../card-profile.js';
import { profilesOf } from '../card-profile.service.js';
import { responsesOf } from '../checks/body.js';
import { checkCardUsable } from '../checks/card-status.js';
import { checkPurseCover } from '../checks/purse-cover.js';
import { complete, guardCredit, guardDebit } from '../complete.js';
import { sealForReader } from '../envelope.js';
import { type CardIdentity, cardOf, type SessionRow } from '../session.model.js';
import type { Step, StepResult } from '../step.js';
import { SessionError } from '../session.errors.js';
import { checkM1Load } from '../checks/m1-load.js';
import { checkM1Value } from '../checks/m1-value.js';
import { recordM1Write, refuseWhileM1WriteOpen, settleLateReadBack, settleM1Write, tornWriteExplains } from '../m1-writes.js';
import { parseBody } from '../checks/body.js';
import { checkSequence } from '../checks/sequence.js';
import { checkStepSignature } from '../checks/signature.js';
import type { IncomingMessage } from '../session.model.js';
import type { SessionDeps } from '../step.js';

/**
 * M1 (MIFARE Classic) cards in a card session. An M1 card has no cryptogram of its own, so the
 * host holds its sector keys (derived from the card company's M1 master key and the card's UID)
 * and sends the reader sealed scripts: one to read the purse and its backup, one to change it. The
 * card's issuer is the card company of the reader's city: M1 cards do not travel between cities.
 */

/** The M1 master key version in use (key rotation for M1 cards is a card re-issue). */
const M1_KEY_VERSION = 1;
/** A value block holds a signed 32-bit value. */
const M1_MAX_VALUE = 0x7fff_ffff;

function results(body: Record<string, unknown>): M1Result[] {
  const [answer] = responsesOf(body, 1);
  try {
    const parsed: unknown = JSON.parse(answer!);
    if (Array.isArray(parsed) && parsed.every((r) => r && typeof r === 'object' && !Array.isArray(r))) return parsed as M1Result[];
  } catch {
    // falls through
  }
  throw new SessionError('MALFORMED_MESSAGE', 'an M1 script answer is a JSON list of step results').at('body');
}

function cardAnswer<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof M1AnswerError) throw new SessionError('CARD_ERROR', err.message).at('card-answers');
    throw err;
  }
}

async function m1Card(em: EntityManager, reader: ReaderRow, uid: string): Promise<CardIdentity> {
  const [issuer] = await em.execute<{ card_company_id: string; currency: string; card_city_code: string | null }[]>(
    `select cc.id as card_company_id, c.currency, c.card_city_code from city c join card_company cc on cc.city_id = c.id where c.id = ?`,
    [reader.city_id],
  );
  return { asn: uid, asnBytes: Buffer.from(uid, 'hex'), cityCode: issuer!.card_city_code ?? '', cardCompanyId: issuer!.card_company_id, currency: issuer!.currency.trim() };
}

/** The purse's sector and blocks from the card company's profile (the default one for a session opened before profiles). */
function purseLayoutOf(profile: CardProfile | undefined): M1PurseLayout {
  const { purseSector, valueBlock, backupBlock } = (profile ?? DEFAULT_CARD_PROFILE).m1;
  return { sector: purseSector, valueBlock, backupBlock };
}

const sealScript = (session: SessionRow, seq: number, script: unknown) =>
  sealForReader(session.context.publicKeyPem!, Buffer.from(JSON.stringify(script), 'utf8'), `${toGlobalId('CardSession', session.id)}:${seq}`);

/** Message 1: the UID; the host answers with the read script, sealed (it carries key B). */
export const m1Identified: Step = async ({ em, deps, session, reader, message, body }) => {
  const [uid] = responsesOf(body, 1);
  if (typeof uid !== 'string' || !/^[0-9A-Fa-f]{8}$/.test(uid)) throw new SessionError('CARD_ERROR', 'an M1 UID is 4 bytes of hex').at('card-answers');
  const card = await m1Card(em, reader, uid.toUpperCase());
  await checkCardUsable(em, deps, card.asn);
  // The card company's own profile says where its purse is (an M1 card names no product).
  const profile = (await profilesOf(em, card.cardCompanyId, deps.reads))[0]!;
  const purse = purseLayoutOf(profile);
  const keyB = await deps.keyStore.m1SectorKey({ cardCompanyId: card.cardCompanyId, keyVersion: M1_KEY_VERSION, uid: card.asnBytes, sector: purse.sector });
  return {
    state: 'AWAITING_PURSE',
    context: { ...session.context, cardCompanyId: card.cardCompanyId, cityCode: card.cityCode, currency: card.currency, profile },
    commands: [{ sealedScript: sealScript(session, message.seq + 1, readPurseScript(keyB, purse)) }],
    asn: card.asn,
    auditDetail: { uid: card.asn },
  };
};

/**
 * A refusal after the card's earlier writes were settled from its value: the settlement stands
 * (the card holds what it holds whatever this session does), written again with the refusal.
 */
function keepingSettlement(err: unknown, settle: (em: EntityManager) => Promise<unknown>): unknown {
  if (!(err instanceof SessionError)) return err;
  const earlier = err.keep;
  err.keep = async (tx) => {
    await settle(tx);
    await earlier?.(tx);
  };
  return err;
}

/**
 * Message 2: the purse (value and backup agree). Earlier writes whose answers were lost are settled
 * from it first (m1-writes.ts); then a balance read ends, and a load or a purchase gets its write
 * script, bound to this card's UID and this value, once the purpose has checked and claimed it.
 */
export const m1PurseRead: Step = async (s) => {
  const { em, deps, session, body, now } = s;
  const steps = results(body);
  const card = cardOf(session);
  const { value, torn } = await purseOf(em, card.asn, steps, now);
  const settle = (tx: EntityManager) => checkM1Value(tx, deps, session, card.asn, value, now);
  const settled = await settle(em);
  try {
    return await afterSettlement(s, card, value, settled, torn);
  } catch (err) {
    throw keepingSettlement(err, settle);
  }
};

/**
 * The purse's value: value block and backup agreeing; or, for a write torn between the two that the
 * card's open write explains, the value block's (`torn`: the backup still holds the other value).
 */
async function purseOf(em: EntityManager, uid: string, steps: M1Result[], now: Date): Promise<{ value: number; torn: boolean }> {
  cardAnswer(() => allOk(steps, 3));
  try {
    return { value: purseValue(steps[1], steps[2]), torn: false };
  } catch (err) {
    if (!(err instanceof M1AnswerError)) throw err;
    const blocks = (() => {
      try {
        return { value: purseValue(steps[1]), backup: purseValue(steps[2]) };
      } catch {
        return null;
      }
    })();
    if (blocks && (await tornWriteExplains(em, uid, blocks.value, blocks.backup, now))) return { value: blocks.value, torn: true };
    throw new SessionError('CARD_ERROR', err.message).at('card-answers');
  }
}

/** A script that rewrites the backup from the value block, changing no value: bound to the UID and the value, as a write is. */
async function repairScript(deps: Parameters<Step>[0]['deps'], session: SessionRow, card: CardIdentity, value: number): Promise<unknown> {
  const purse = purseLayoutOf(session.context.profile);
  const keyB = await deps.keyStore.m1SectorKey({ cardCompanyId: card.cardCompanyId, keyVersion: M1_KEY_VERSION, uid: card.asnBytes, sector: purse.sector });
  return writePurseScript({ uid: card.asn, keyB, operation: 'increment', amount: 0, oldValue: value, newValue: value, purse });
}

async function afterSettlement(s: Parameters<Step>[0], card: CardIdentity, value: number, settled: Record<string, unknown>[], torn: boolean): Promise<StepResult> {
  const { em, deps, session, reader, message } = s;
  const earlierWrites = settled.length ? { earlierWrites: settled } : {};
  if (session.operation === 'BALANCE' && torn) {
    // The torn write is settled; the backup is rewritten before the balance is given (a load or a
    // purchase needs no repair of its own: its script writes the backup after the value).
    return {
      state: 'AWAITING_WRITE',
      context: { ...session.context, m1: { oldValue: value, newValue: value } },
      commands: [{ sealedScript: sealScript(session, message.seq + 1, await repairScript(deps, session, card, value)) }],
      auditDetail: { torn: true, repairedBackupTo: value, ...earlierWrites },
    };
  }
  if (session.operation === 'BALANCE') {
    const result = { asn: card.asn, balance: value };
    await complete(em, deps, session, reader, card, result);
    return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: { ...result, ...earlierWrites } };
  }
  // One open write per card: a second one would leave the value unable to tell which write it shows.
  await refuseWhileM1WriteOpen(em, session, card.asn);
  const amount = Number(session.amount);
  let newValue: number;
  if (session.operation === 'LOAD') {
    newValue = value + amount;
    if (newValue > M1_MAX_VALUE) throw new SessionError('CARD_ERROR', 'the purse cannot hold that much').at('card-answers');
    // The purpose first (a load an earlier write left unresolved is named as such), then what an M1
    // card cannot prove limits what the host writes onto it (docs/cards.md).
    await guardCredit(s, { card, amount, oldBalance: value, onlineCounter: null, lastRecord: null, terminal: null, date: null, time: null, m1: { oldValue: value, newValue } });
    await checkM1Load(em, card, amount, value);
  } else {
    if (value < amount) throw new SessionError('INSUFFICIENT_BALANCE', `the card holds ${value}, less than ${amount}`).at('card-answers');
    newValue = value - amount;
    // Before the card pays: the ledger's shadow must cover it, and the purpose must agree.
    await checkPurseCover(em, card, amount, value);
    await guardDebit(s, card, { amount, cardBalance: value, offlineCounter: null, lastRecord: null, terminal: null, date: null, time: null });
  }
  const purse = purseLayoutOf(session.context.profile);
  const keyB = await deps.keyStore.m1SectorKey({ cardCompanyId: card.cardCompanyId, keyVersion: M1_KEY_VERSION, uid: card.asnBytes, sector: purse.sector });
  const script = writePurseScript({ uid: card.asn, keyB, operation: session.operation === 'LOAD' ? 'increment' : 'decrement', amount, oldValue: value, newValue, purse });
  // Recorded with the purpose's claim, before the script leaves: a lost answer is settled from the card's value.
  await recordM1Write(em, session, card.asn, { oldValue: value, newValue });
  return {
    state: 'AWAITING_WRITE',
    context: { ...session.context, m1: { oldValue: value, newValue } },
    commands: [{ sealedScript: sealScript(session, message.seq + 1, script) }],
    auditDetail: { oldValue: value, newValue, ...earlierWrites },
  };
}

/**
 * Message 3: the reader's signed results. Every step succeeded and the purse and its backup read
 * what they must: booked. The script stopped at its UID or value check (replayed onto another card,
 * or the card's value moved): the reader reports nothing was written, so the write is settled as
 * such. Any other failure leaves the card's value unknown: settled from it at the card's next session.
 */
export const m1Written: Step = async ({ em, deps, session, reader, body }) => {
  const steps = results(body);
  const { oldValue, newValue } = session.context.m1!;
  const failed = steps.findIndex((r) => !r.ok);
  if (failed >= 0 && failed <= WRITE_SCRIPT_LAST_CHECK && steps.length === failed + 1) {
    const why = steps[failed]!.error ?? 'refused';
    const error = new SessionError('CARD_ERROR', `the reader stopped the write script before writing (${why}): the card is not the one, or not as it was read`, { script: steps }).at('card-answers');
    error.keep = async (tx) => void (await settleM1Write(tx, session.id, 'NOT_WRITTEN', session.id, `the reader's signed report: the script stopped at step ${failed} (${why}) before writing`));
    throw error;
  }
  const value = cardAnswer(() => {
    allOk(steps, WRITE_SCRIPT_STEPS);
    return purseValue(steps[WRITE_SCRIPT_STEPS - 2], steps[WRITE_SCRIPT_STEPS - 1]);
  });
  if (value !== newValue) throw new SessionError('CARD_ERROR', `the purse reads ${value} after the script, expected ${newValue}`).at('card-answers');
  if (session.operation === 'BALANCE') {
    // A balance read that repaired a torn purse's backup: both blocks agree again.
    const balance = { asn: session.card_asn!, balance: value };
    await complete(em, deps, session, reader, cardOf(session), balance);
    return { state: 'COMPLETED', context: session.context, commands: [], result: balance, auditDetail: { ...balance, repaired: true } } satisfies StepResult;
  }
  const result = { asn: session.card_asn!, oldBalance: oldValue, newBalance: newValue, amount: Number(session.amount) };
  await settleM1Write(em, session.id, 'WRITTEN', session.id, 'the reader’s signed read-back');
  await complete(em, deps, session, reader, cardOf(session), result);
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result } satisfies StepResult;
};

/**
 * The write's report refused because its session had ended (expired, or failed meanwhile): not
 * dropped. When the reader signed it, in sequence, and its read-back shows the write's new value,
 * the card took the write: m1-writes.ts settles it (booked if still open; unresolved, with the
 * difference recorded, if it had been taken as not made). Anything else tells nothing: the card's
 * next session settles it from the value.
 */
export function keepingLateReport(err: unknown, deps: SessionDeps, session: SessionRow, reader: ReaderRow, message: IncomingMessage): unknown {
  if (!(err instanceof SessionError) || !['SESSION_EXPIRED', 'SESSION_FINISHED'].includes(err.refusal)) return err;
  if (session.card_type !== 'M1' || session.state === 'COMPLETED' || session.operation === 'BALANCE' || !session.context.m1) return err;
  let newValue: number;
  try {
    checkSequence(session, message);
    checkStepSignature(session, message);
    const steps = results(parseBody(message.body));
    allOk(steps, WRITE_SCRIPT_STEPS);
    newValue = purseValue(steps[WRITE_SCRIPT_STEPS - 2], steps[WRITE_SCRIPT_STEPS - 1]);
  } catch {
    return err;
  }
  if (newValue !== session.context.m1.newValue) return err;
  const earlier = err.keep;
  err.keep = async (tx) => {
    await earlier?.(tx);
    await settleLateReadBack(tx, deps, session, reader);
  };
  return err;
}
