import type { AlgorithmId } from '../../../cardcrypto/algorithm.js';
import { loadMac1Message, loadMac2Message, loadSessionInput, loadTacMessage, purchaseMac1Message, purchaseMac2Message, purchaseTacMessage } from '../../../cardcrypto/epurse.js';
import { toGlobalId } from '../../../graphql/global-id.js';
import * as apdu from '../apdu.js';
import { acceptedAlgorithm, cardAnswer, lastRecordOf } from '../checks/card-answers.js';
import { type CardProfile, DEFAULT_CARD_PROFILE, dfNameOf, profileForSelected } from '../card-profile.js';
import { profilesOf } from '../card-profile.service.js';
import { purchaseMacsFor, sessionMacsFor, tacFor } from '../card-keys.js';
import { responsesOf } from '../checks/body.js';
import { checkCardIssuer, checkCardUsable } from '../checks/card-status.js';
import { checkCounter, recordCounter, type SeenCounters } from '../checks/counters.js';
import { checkLoadMac1, checkLoadTac, checkPurchaseMac2, checkPurchaseTac } from '../checks/cryptograms.js';
import { checkPurseCover } from '../checks/purse-cover.js';
import { complete, guardCredit, guardDebit } from '../complete.js';
import { sealForReader } from '../envelope.js';
import { type CardIdentity, cardOf, hex, type PurchaseInit, type SessionContext } from '../session.model.js';
import type { Step, StepInput, StepResult } from '../step.js';
import { SessionError } from '../session.errors.js';
import { cardClock, nextTerminalSerial, terminalIdOf } from '../terminal.js';
import { askForProofIfOwed, openClaims, provingKinds, recordTaken, settleFromProof } from '../transaction-proofs.js';
import { firstCommands } from './hello.js';

/**
 * The CPU (e-purse) card's steps after the hello (CARD-PROTOCOL.md §3–§5). Message 1 answers the
 * commands the hello sent: the card's identity, then the operation's first command. Message 2 of
 * a load or a purchase carries the card's TAC.
 */

interface IdentifiedCard {
  card: CardIdentity;
  context: SessionContext;
  rest: string[];
  counters: SeenCounters | null;
  /** The card's own profile (its product's, when the application it selected names one). */
  profile: CardProfile;
}

/** Would the card's profile have asked other key indexes or files than the batch it answered? */
function batchDiffers(operation: string, batch: CardProfile, card: CardProfile): boolean {
  if (operation === 'LOAD') return batch.loadKeyIndex !== card.loadKeyIndex || batch.transactionLogSfi !== card.transactionLogSfi;
  if (operation === 'PURCHASE') return batch.purchaseKeyIndex !== card.purchaseKeyIndex || batch.transactionLogSfi !== card.transactionLogSfi;
  return false;
}

/**
 * Message 1's common half: the card's identity, may it be used here, and its card profile. When
 * the profile asks for other key indexes or files than the batch the card answered (built before
 * the card was known), the session starts again from SELECT with the card's own profile (once);
 * the card did nothing yet: an INITIALIZE moves no counter.
 */
async function identifyCard(s: StepInput, count: number): Promise<IdentifiedCard | StepResult> {
  const batch = s.session.context.profile ?? DEFAULT_CARD_PROFILE;
  const [selected, publicData, ...rest] = responsesOf(s.body, count);
  const { data, aid } = cardAnswer(() => {
    const fci = apdu.ok(selected, 'SELECT', batch.toleratedStatusWords);
    return { aid: dfNameOf(fci), data: apdu.parsePublicData(apdu.ok(publicData, 'READ BINARY', batch.toleratedStatusWords)) };
  });
  const issuer = await checkCardIssuer(s.em, s.reader, data.cityCode, hex(data.asn));
  await checkCardUsable(s.em, s.deps, hex(data.asn));
  const profile = profileForSelected(await profilesOf(s.em, issuer.cardCompanyId, s.deps.reads), aid);
  const card = { asn: hex(data.asn), asnBytes: data.asn, cityCode: data.cityCode, cardCompanyId: issuer.cardCompanyId, currency: issuer.currency };
  const context: SessionContext = { ...s.session.context, cardCompanyId: card.cardCompanyId, cityCode: card.cityCode, currency: card.currency, profile };
  if (batchDiffers(s.session.operation, batch, profile)) {
    if (s.session.context.profileRestarted) throw new SessionError('CARD_ERROR', 'the card answered a batch its own card profile did not build').at('card-answers');
    const commands = firstCommands(s.session, s.reader, profile);
    return { state: 'AUTHENTICATED', context: { ...context, profileRestarted: true }, commands, asn: card.asn, auditDetail: { asn: card.asn, selected: aid, profile: profile.product ?? 'card company', restarted: 'the card’s profile asks other key indexes or files' } };
  }
  return { card, context, rest, counters: issuer.counters ?? null, profile };
}

/** BALANCE, message 1: completes at once, GET BALANCE answered 4 bytes. */
export const balanceRead: Step = async (s) => {
  const identified = await identifyCard(s, 3);
  if ('state' in identified) return identified;
  const { card, context, rest: [answer], profile } = identified;
  const data = cardAnswer(() => apdu.ok(answer, 'GET BALANCE', profile.toleratedStatusWords));
  if (data.length !== 4) throw new SessionError('CARD_ERROR', `GET BALANCE answered ${data.length} bytes, expected 4`).at('card-answers');
  const result = { asn: card.asn, balance: data.readUInt32BE(0) };
  const proving = await askForProofIfOwed(s, card, context, { balance: result.balance });
  if (proving) return proving;
  await complete(s.em, s.deps, s.session, s.reader, card, result);
  return { state: 'COMPLETED', context, commands: [], asn: card.asn, result, auditDetail: result };
};

const sealedFor = (s: StepInput, command: Buffer) => sealForReader(s.session.context.publicKeyPem!, command, `${toGlobalId('CardSession', s.session.id)}:${s.message.seq + 1}`);

/**
 * After the proof round: an unanswered load at a counter below the one MAC1 authenticates now was
 * taken by the card (only a host MAC2 moves the online counter), yet not proved (the answer to GET
 * TRANSACTION PROVE was dropped). Loading now would let the card's next proof slot pass over it for
 * good, so no MAC2 leaves the host: the card company settles it (resolvePendingLoad with the card's TAC).
 */
async function refuseIfLoadUnproved(s: StepInput, asn: string, onlineCounter: number): Promise<void> {
  const behind = (await openClaims(s.em, 'load', asn, s.now)).filter((c) => c.counter < onlineCounter);
  // A top-up the card's counter already settled (ALREADY_LOADED) is booked, though it has no proof row.
  const loaded = behind.length ? await s.em.execute<{ load_session_id: string }[]>(`select load_session_id from top_up where status = 'LOADED' and load_session_id in (${behind.map(() => '?').join(', ')})`, behind.map((c) => c.session.id)) : [];
  const unproved = behind.filter((c) => !loaded.some((t) => t.load_session_id === c.session.id));
  if (unproved.length === 0) return;
  throw new SessionError('LOAD_UNRESOLVED', 'the card took an earlier load whose answer was lost and has not proved it; the card company settles it before the card loads again', { cardCounter: onlineCounter, unprovedSessions: unproved.map((c) => ({ session: c.session.id, counter: c.counter })) }).at('transaction-proof');
}

/** LOAD, message 1: the card's MAC1 proves its load key; the host answers with MAC2, sealed to the reader. */
export const loadInitialized: Step = async (s) => {
  const identified = await identifyCard(s, 4);
  if ('state' in identified) return identified;
  const { card, context, rest: [logAnswer, answer], counters, profile } = identified;
  const { session, reader } = s;
  const lastRecord = lastRecordOf(logAnswer, profile.toleratedStatusWords);
  const init = cardAnswer(() => apdu.parseInitializeForLoad(apdu.ok(answer, 'INITIALIZE FOR LOAD', profile.toleratedStatusWords)));
  await checkCounter(s.em, card.asn, 'online_counter', init.onlineCounter, counters);
  const proving = await askForProofIfOwed(s, card, context, { onlineCounter: init.onlineCounter });
  if (proving) return proving;
  const algorithm = acceptedAlgorithm(profile, init.algorithmId);
  const terminalId = terminalIdOf(reader);
  const amount = Number(session.amount);
  const { date, time } = cardClock(s.now);
  // Both MACs in one call to the key store (one session key derivation); MAC2 leaves only below, after every check.
  const messages = [loadMac1Message({ oldBalance: init.oldBalance, amount, terminalId }), loadMac2Message({ amount, terminalId, date, time })];
  const [expectedMac1, mac2] = await sessionMacsFor(s.deps, { cardCompanyId: card.cardCompanyId, purpose: 'LOAD', keyVersion: init.keyVersion, asn: card.asnBytes, algorithm, sessionInput: loadSessionInput(init), messages });
  checkLoadMac1(expectedMac1!, init.mac1);
  // The purpose first: a top-up whose earlier claim the card's counter proves taken is settled (ALREADY_LOADED).
  await guardCredit(s, { card, amount, oldBalance: init.oldBalance, onlineCounter: init.onlineCounter, lastRecord, terminal: hex(terminalId), date, time, m1: null });
  await refuseIfLoadUnproved(s, card.asn, init.onlineCounter);
  return {
    state: 'AWAITING_TAC',
    context: { ...context, init: { oldBalance: init.oldBalance, onlineCounter: init.onlineCounter, keyVersion: init.keyVersion, algorithmId: algorithm, date, time } },
    commands: [{ sealed: sealedFor(s, apdu.creditForLoad(date, time, mac2)) }],
    asn: card.asn,
    auditDetail: { asn: card.asn, oldBalance: init.oldBalance, onlineCounter: init.onlineCounter },
  };
};

/**
 * INITIALIZE FOR PURCHASE's answer. `94 01` (less than the amount) may be the work of an earlier
 * purchase whose answer was lost: the card paid it and holds less now. That one is still settled at
 * this tap (issue 21): the card is asked to prove it (GET TRANSACTION PROVE) before the session is
 * refused, rather than the payment being canceled a day later with a discrepancy.
 */
async function purchaseInitializeOrProof(s: StepInput, card: CardIdentity, context: SessionContext, answer: string | undefined, profile: CardProfile): Promise<apdu.InitializeForPurchaseAnswer | StepResult> {
  try {
    return cardAnswer(() => apdu.parseInitializeForPurchase(apdu.ok(answer, 'INITIALIZE FOR PURCHASE', profile.toleratedStatusWords)), { [apdu.SW_INSUFFICIENT_BALANCE]: 'INSUFFICIENT_BALANCE' });
  } catch (err) {
    if (!(err instanceof SessionError) || err.refusal !== 'INSUFFICIENT_BALANCE') throw err;
    // No counter to compare with (the card answered none): every open claim of the card is asked about.
    const proving = await askForProofIfOwed(s, card, context, {});
    if (proving) return proving;
    throw err;
  }
}

/**
 * PURCHASE, message 1: the host plays the reader's PSAM (CARD-PROTOCOL.md §5). Before MAC1 leaves
 * the host (after which the card can pay), everything that could refuse the purchase is checked, so
 * a refusal never leaves a card debited with nothing booked.
 */
export const purchaseInitialized: Step = async (s) => {
  const identified = await identifyCard(s, 4);
  if ('state' in identified) return identified;
  const { card, context, rest: [logAnswer, answer], counters, profile } = identified;
  const { session, reader } = s;
  const lastRecord = lastRecordOf(logAnswer, profile.toleratedStatusWords);
  const init = await purchaseInitializeOrProof(s, card, context, answer, profile);
  if ('state' in init) return init;
  await checkCounter(s.em, card.asn, 'offline_counter', init.offlineCounter, counters);
  const proving = await askForProofIfOwed(s, card, context, { offlineCounter: init.offlineCounter });
  if (proving) return proving;
  const algorithm = acceptedAlgorithm(profile, init.algorithmId);
  const amount = Number(session.amount);
  const { date, time } = cardClock(s.now);
  // The purpose first: a payment whose earlier attempt the card took is settled, not charged again.
  await guardDebit(s, card, { amount, cardBalance: init.balance, offlineCounter: init.offlineCounter, lastRecord, terminal: hex(terminalIdOf(reader)), date, time });
  await checkPurseCover(s.em, card, amount, init.balance);
  const terminalSerial = await nextTerminalSerial(s.em, reader.id);
  const purchase: PurchaseInit = { balance: init.balance, offlineCounter: init.offlineCounter, keyVersion: init.keyVersion, algorithmId: algorithm, random: hex(init.random), terminalSerial, date, time };
  const [mac1] = await purchaseMacsFor(s.deps, card.cardCompanyId, card.asnBytes, purchase, [purchaseMac1Message({ amount, terminalId: terminalIdOf(reader), date, time })]);
  return {
    state: 'AWAITING_TAC',
    context: { ...context, purchase },
    commands: [{ sealed: sealedFor(s, apdu.debitForPurchase(terminalSerial, date, time, mac1)) }],
    asn: card.asn,
    auditDetail: { asn: card.asn, balance: init.balance, offlineCounter: init.offlineCounter, terminalSerial },
  };
};

/** LOAD, message 2: CREDIT FOR LOAD's TAC proves the card took exactly this load. */
export const loadCredited: Step = async ({ em, deps, session, reader, body }) => {
  const [credit] = responsesOf(body, 1);
  const tac = cardAnswer(() => apdu.ok(credit, 'CREDIT FOR LOAD', session.context.profile?.toleratedStatusWords));
  const init = session.context.init!;
  const amount = Number(session.amount);
  const asnBytes = Buffer.from(session.card_asn!, 'hex');
  const algorithm = init.algorithmId as AlgorithmId;
  const message = loadTacMessage({ newBalance: init.oldBalance + amount, onlineCounter: init.onlineCounter, amount, terminalId: terminalIdOf(reader), date: init.date, time: init.time });
  checkLoadTac(await tacFor(deps, { cardCompanyId: session.context.cardCompanyId!, keyVersion: init.keyVersion, asn: asnBytes, algorithm, message }), tac);
  const result = { asn: session.card_asn!, oldBalance: init.oldBalance, newBalance: init.oldBalance + amount, amount, onlineCounter: init.onlineCounter + 1, tac: hex(tac) };
  await complete(em, deps, session, reader, cardOf(session), result);
  // The counter row after the purse, the order an offline upload takes them in (card-purchase-lock-order.test.ts).
  await recordTaken(em, 'load', session, init.onlineCounter, tac);
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result };
};

/**
 * Any operation, after message 1 found a load or a purchase the card may have done unanswered: the
 * card's answers to GET TRANSACTION PROVE settle them (transaction-proofs.ts). A balance read then
 * completes with the balance message 1 read; a load or a purchase starts again from SELECT (the card
 * dropped its INITIALIZE when the proof command came), and is not asked again in this session.
 */
export const proofAnswered: Step = async (s) => {
  const { proving, ...rest } = s.session.context;
  const kinds = provingKinds(proving!);
  const answers = responsesOf(s.body, kinds.length);
  const card = cardOf(s.session);
  const outcomes: Record<string, unknown> = {};
  for (const [i, kind] of kinds.entries()) outcomes[kind] = { counter: proving![kind], ...(await settleFromProof(s.em, s.deps, kind, s.session, card, answers[i], s.now)) };
  const context: SessionContext = { ...rest, proofAsked: true };
  const auditDetail = { asn: card.asn, ...outcomes };
  if (s.session.operation === 'BALANCE') {
    const result = { asn: card.asn, balance: proving!.balance! };
    await complete(s.em, s.deps, s.session, s.reader, card, result);
    return { state: 'COMPLETED', context, commands: [], result, auditDetail };
  }
  return { state: 'AUTHENTICATED', context, commands: firstCommands(s.session, s.reader, context.profile ?? DEFAULT_CARD_PROFILE), auditDetail };
};

/**
 * PURCHASE, message 2: DEBIT FOR PURCHASE answers TAC || MAC2. MAC2 proves the card holding this
 * session's SESPK debited; the TAC (under DTK, which the host alone shares with the card) proves
 * exactly this amount, terminal, serial, date and time. Only then is the purchase booked.
 */
export const purchaseDebited: Step = async ({ em, deps, session, reader, body }) => {
  const [debit] = responsesOf(body, 1);
  const { tac, mac2 } = cardAnswer(() => apdu.parseDebitForPurchase(apdu.ok(debit, 'DEBIT FOR PURCHASE', session.context.profile?.toleratedStatusWords)));
  const p = session.context.purchase!;
  const card = cardOf(session);
  const amount = Number(session.amount);
  const algorithm = p.algorithmId as AlgorithmId;
  // What the card answered stays with a refusal: a card that debited and failed a check is a case to reconcile.
  const evidence = { asn: card.asn, amount, offlineCounter: p.offlineCounter, terminalSerial: p.terminalSerial, date: p.date, time: p.time, response: debit };
  const [expectedMac2] = await purchaseMacsFor(deps, card.cardCompanyId, card.asnBytes, p, [purchaseMac2Message({ amount })]);
  checkPurchaseMac2(expectedMac2!, mac2, evidence);
  const message = purchaseTacMessage({ amount, terminalId: terminalIdOf(reader), terminalSerial: p.terminalSerial, date: p.date, time: p.time });
  checkPurchaseTac(await tacFor(deps, { cardCompanyId: card.cardCompanyId, keyVersion: p.keyVersion, asn: card.asnBytes, algorithm, message }), tac, evidence);
  const result = { asn: card.asn, oldBalance: p.balance, newBalance: p.balance - amount, amount, offlineCounter: p.offlineCounter + 1, terminalSerial: p.terminalSerial, tac: hex(tac) };
  try {
    await complete(em, deps, session, reader, card, result);
  } catch (err) {
    // The card proved it debited and moved its counter on; a copy of its earlier state must still be caught.
    if (err instanceof SessionError) err.keep = (tx) => recordCounter(tx, card.asn, 'offline_counter', p.offlineCounter + 1);
    throw err;
  }
  // The counter row after the purse, the order an offline upload takes them in: the other way round,
  // a purchase and an upload of the same card deadlocked (card-purchase-lock-order.test.ts).
  await recordTaken(em, 'purchase', session, p.offlineCounter, tac);
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result };
};
