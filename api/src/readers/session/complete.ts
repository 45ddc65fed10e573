import type { EntityManager } from '@mikro-orm/postgresql';
import { LedgerError, LedgerErrorCode } from '../../ledger/ledger.errors.js';
import type { ReaderRow } from '../readers.service.js';
import type { PendingCredit, PendingDebit } from './purpose.js';
import { type CardIdentity, cardOf, type SessionRow } from './session.model.js';
import type { SessionDeps, StepInput } from './step.js';
import { SessionError } from './session.errors.js';
import { cardPurseBalance } from '../../ledger/accounts.js';

/** The session's purpose, from the list the composition root handed in; none for a balance read. */
export function purposeOf(deps: Pick<SessionDeps, 'purposes'>, session: SessionRow) {
  const name = session.context.purpose;
  if (!name) return undefined;
  const purpose = deps.purposes.get(name);
  if (!purpose) throw new Error(`no card-session purpose ${name} was handed to the engine`);
  return purpose;
}

/** Runs a purpose's guard; its refusal names the `purpose` check. */
async function asPurposeCheck(guard: () => Promise<void> | undefined): Promise<void> {
  try {
    await guard();
  } catch (err) {
    if (err instanceof SessionError) err.at('purpose');
    throw err;
  }
}

/** The purpose's own checks before the card pays (see DebitGuard). */
export async function guardDebit(s: StepInput, card: CardIdentity, pending: Pick<PendingDebit, 'amount' | 'cardBalance' | 'offlineCounter' | 'lastRecord' | 'terminal' | 'date' | 'time'>): Promise<void> {
  await asPurposeCheck(() => purposeOf(s.deps, s.session)?.debitGuard?.(s.em, { session: s.session, reader: s.reader, cardCompanyId: card.cardCompanyId, asn: card.asn, currency: card.currency, now: s.now, ...pending }));
}

/** The purpose's own checks, and claim, before MAC2 leaves the host (see CreditGuard). */
export async function guardCredit(s: StepInput, pending: Omit<PendingCredit, 'session' | 'reader' | 'now'>): Promise<void> {
  await asPurposeCheck(() => purposeOf(s.deps, s.session)?.creditGuard?.(s.em, { session: s.session, reader: s.reader, now: s.now, ...pending }));
}

/**
 * Hands the finished operation to its purpose. A purse shadow the ledger will not take below zero
 * (a card spending value we never booked, or a race with another session of the same card) refuses
 * the step as PURSE_MISMATCH: the whole step rolls back, and the audit row keeps what the card proved.
 */
export async function complete(em: EntityManager, deps: SessionDeps, session: SessionRow, reader: ReaderRow, card: CardIdentity, result: Record<string, unknown>): Promise<void> {
  const done = { session, reader, cardCompanyId: card.cardCompanyId, asn: card.asn, currency: card.currency, result };
  let shadowAfterEntry: bigint | void;
  try {
    shadowAfterEntry = await purposeOf(deps, session)?.complete(em, done);
  } catch (err) {
    if (err instanceof LedgerError && err.code === LedgerErrorCode.INSUFFICIENT_FUNDS) throw new SessionError('PURSE_MISMATCH', `the ledger refused: ${err.message}`, result).at('complete');
    throw err;
  }
  const purseBalance = await compareWithShadow(em, session, card, result, shadowAfterEntry ?? undefined);
  for (const observe of deps.observers) await observe(em, { ...done, purseBalance });
}

/**
 * A load or purchase the card proved later (GET TRANSACTION PROVE, transaction-proofs.ts) is booked as its own
 * session's completion would have: its purpose's entry, then the observers. No shadow comparison:
 * the card's balance then is history; the session that proved it compares the balance it reads now.
 */
export async function completeProven(em: EntityManager, deps: SessionDeps, session: SessionRow, reader: ReaderRow, result: Record<string, unknown>): Promise<void> {
  const card = cardOf(session);
  const done = { session, reader, cardCompanyId: card.cardCompanyId, asn: card.asn, currency: card.currency, result };
  await purposeOf(deps, session)?.complete(em, done);
  for (const observe of deps.observers) await observe(em, done);
}

/**
 * Every balance a card reports is held against the ledger's shadow of its purse (after this
 * session's own entry), and a difference is recorded for the card company to look into: value we
 * never issued, offline spending we have not heard of yet, or a write that went wrong. Returns the
 * shadow it read, for the observers.
 */
async function compareWithShadow(em: EntityManager, session: SessionRow, card: CardIdentity, result: Record<string, unknown>, afterEntry: bigint | undefined): Promise<bigint | undefined> {
  const reported = typeof result.balance === 'number' ? result.balance : typeof result.newBalance === 'number' ? result.newBalance : undefined;
  if (reported === undefined) return undefined;
  // The purpose's own entry gave it (its row locked by this transaction since), or it is read.
  const shadow = afterEntry ?? (await cardPurseBalance(em, card.asn, card.currency));
  if (shadow === BigInt(reported)) return shadow;
  await em.execute(
    `insert into card_balance_discrepancy (card_asn, session_id, currency, card_balance, shadow_balance) values (?, ?, ?, ?, ?)`,
    [card.asn, session.id, card.currency, reported, shadow.toString()],
  );
  return shadow;
}
