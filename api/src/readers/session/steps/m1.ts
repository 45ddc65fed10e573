import type { EntityManager } from '@mikro-orm/postgresql';
import { toGlobalId } from '../../../graphql/global-id.js';
import { allOk, changePurseScript, M1_PURSE, M1AnswerError, type M1Result, purseValue, readPurseScript } from '../../m1/m1-script.js';
import type { ReaderRow } from '../../readers.service.js';
import { responsesOf } from '../checks/body.js';
import { checkCardUsable } from '../checks/card-status.js';
import { checkPurseCover } from '../checks/purse-cover.js';
import { complete, guardDebit } from '../complete.js';
import { sealForReader } from '../envelope.js';
import { type CardIdentity, cardOf, type SessionRow } from '../session.model.js';
import type { Step, StepResult } from '../step.js';
import { SessionError } from '../session.errors.js';

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

const sealScript = (session: SessionRow, seq: number, script: unknown) =>
  sealForReader(session.context.publicKeyPem!, Buffer.from(JSON.stringify(script), 'utf8'), `${toGlobalId('CardSession', session.id)}:${seq}`);

/** Message 1: the UID; the host answers with the read script, sealed (it carries key B). */
export const m1Identified: Step = async ({ em, deps, session, reader, message, body }) => {
  const [uid] = responsesOf(body, 1);
  if (typeof uid !== 'string' || !/^[0-9A-Fa-f]{8}$/.test(uid)) throw new SessionError('CARD_ERROR', 'an M1 UID is 4 bytes of hex').at('card-answers');
  const card = await m1Card(em, reader, uid.toUpperCase());
  await checkCardUsable(em, deps, card.asn);
  const keyB = await deps.keyStore.m1SectorKey({ cardCompanyId: card.cardCompanyId, keyVersion: M1_KEY_VERSION, uid: card.asnBytes, sector: M1_PURSE.sector });
  return {
    state: 'AWAITING_PURSE',
    context: { ...session.context, cardCompanyId: card.cardCompanyId, cityCode: card.cityCode, currency: card.currency },
    commands: [{ sealedScript: sealScript(session, message.seq + 1, readPurseScript(keyB)) }],
    asn: card.asn,
    auditDetail: { uid: card.asn },
  };
};

/** Message 2: the purse (value and backup agree); a balance read ends here, a change is scripted. */
export const m1PurseRead: Step = async (s) => {
  const { em, deps, session, reader, message, body } = s;
  const steps = results(body);
  const value = cardAnswer(() => {
    allOk(steps, 3);
    return purseValue(steps[1], steps[2]);
  });
  const card = cardOf(session);
  if (session.operation === 'BALANCE') {
    const result = { asn: card.asn, balance: value };
    await complete(em, deps, session, reader, card, result);
    return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result };
  }
  const amount = Number(session.amount);
  let newValue: number;
  if (session.operation === 'LOAD') {
    newValue = value + amount;
    if (newValue > M1_MAX_VALUE) throw new SessionError('CARD_ERROR', 'the purse cannot hold that much').at('card-answers');
  } else {
    if (value < amount) throw new SessionError('INSUFFICIENT_BALANCE', `the card holds ${value}, less than ${amount}`).at('card-answers');
    newValue = value - amount;
    // Before the card pays: the ledger's shadow must cover it, and the purpose must agree.
    await checkPurseCover(em, card, amount, value);
    await guardDebit(s, card, { amount, cardBalance: value, offlineCounter: null, lastRecord: null, terminal: null, date: null, time: null });
  }
  const keyB = await deps.keyStore.m1SectorKey({ cardCompanyId: card.cardCompanyId, keyVersion: M1_KEY_VERSION, uid: card.asnBytes, sector: M1_PURSE.sector });
  const script = changePurseScript(keyB, session.operation === 'LOAD' ? 'increment' : 'decrement', amount, newValue);
  return {
    state: 'AWAITING_WRITE',
    context: { ...session.context, m1: { oldValue: value, newValue } },
    commands: [{ sealedScript: sealScript(session, message.seq + 1, script) }],
    auditDetail: { oldValue: value, newValue },
  };
};

/** Message 3: every step succeeded and the purse now reads what it must. */
export const m1Written: Step = async ({ em, deps, session, reader, body }) => {
  const steps = results(body);
  const { oldValue, newValue } = session.context.m1!;
  const value = cardAnswer(() => {
    allOk(steps, 5);
    return purseValue(steps[4]);
  });
  if (value !== newValue) throw new SessionError('CARD_ERROR', `the purse reads ${value} after the script, expected ${newValue}`).at('card-answers');
  const result = { asn: session.card_asn!, oldBalance: oldValue, newBalance: newValue, amount: Number(session.amount) };
  await complete(em, deps, session, reader, cardOf(session), result);
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result } satisfies StepResult;
};
