import { defineMachine } from '../lifecycle/machine.js';
import { SettlementError } from './settlement.errors.js';

/**
 * The settlement lifecycles as data (lifecycle/machine.ts), each recorded in status_history. Only
 * a reconciliation difference is moved by a person (resolveDifference); the others move by
 * clearing, payouts and the gateway's answers, so an illegal move there is a bug (IllegalTransition).
 */

/**
 * A business day of a city: OPEN while items arrive, CLOSED at its cut-off, CLEARED once its batch
 * is made, SETTLED when no line of it is paying any more (at once when nothing was due).
 */
export type WindowStatus = 'OPEN' | 'CLOSED' | 'CLEARED' | 'SETTLED';
export const WINDOW_TRANSITIONS: Readonly<Record<WindowStatus, readonly WindowStatus[]>> = {
  OPEN: ['CLOSED'],
  CLOSED: ['CLEARED', 'SETTLED'],
  CLEARED: ['SETTLED'],
  SETTLED: [],
};
export const windowMachine = defineMachine<WindowStatus>({ name: 'settlement_window', table: 'settlement_window', initial: ['OPEN'], transitions: WINDOW_TRANSITIONS });

export type BatchStatus = 'PAYING' | 'SETTLED';
/** A window's clearing: PAYING until no line of it is. */
export const BATCH_TRANSITIONS: Readonly<Record<BatchStatus, readonly BatchStatus[]>> = {
  PAYING: ['SETTLED'],
  SETTLED: [],
};
export const batchMachine = defineMachine<BatchStatus>({ name: 'settlement_batch', table: 'settlement_batch', initial: ['PAYING'], transitions: BATCH_TRANSITIONS });

export type LineStatus = 'PAYING' | 'PAID' | 'PAYOUT_FAILED' | 'CARRIED_FORWARD' | 'NOTHING_DUE';
/**
 * A participant's line of a batch, created PAYING (a payout is due), CARRIED_FORWARD (it owes) or
 * NOTHING_DUE. A failed payout (also one the bank returns after it was paid) leaves it
 * PAYOUT_FAILED; a later window's line carries it (carried_into), its status stays.
 */
export const LINE_TRANSITIONS: Readonly<Record<LineStatus, readonly LineStatus[]>> = {
  PAYING: ['PAID', 'PAYOUT_FAILED'],
  PAID: ['PAYOUT_FAILED'],
  PAYOUT_FAILED: [],
  CARRIED_FORWARD: [],
  NOTHING_DUE: [],
};
export const lineMachine = defineMachine<LineStatus>({ name: 'settlement_line', table: 'settlement_line', initial: ['PAYING', 'CARRIED_FORWARD', 'NOTHING_DUE'], transitions: LINE_TRANSITIONS });

/**
 * A payout instruction: PENDING until sent to the gateway, SENT until it answers; its answer may
 * come before our own note that we sent it (PENDING → PAID or FAILED); a paid payout the bank
 * returns is FAILED.
 */
export type PayoutStatus = 'PENDING' | 'SENT' | 'PAID' | 'FAILED';
export const PAYOUT_TRANSITIONS: Readonly<Record<PayoutStatus, readonly PayoutStatus[]>> = {
  PENDING: ['SENT', 'PAID', 'FAILED'],
  SENT: ['PAID', 'FAILED'],
  PAID: ['FAILED'],
  FAILED: [],
};
export const payoutMachine = defineMachine<PayoutStatus>({ name: 'settlement_payout', table: 'settlement_payout', initial: ['PENDING'], transitions: PAYOUT_TRANSITIONS });

/**
 * What reconciliation found: OPEN; MATCHED_LATER when a later run no longer finds it (OPEN again if
 * one does); RESOLVED by an operator's note, for good.
 */
export type DifferenceStatus = 'OPEN' | 'RESOLVED' | 'MATCHED_LATER';
export const DIFFERENCE_TRANSITIONS: Readonly<Record<DifferenceStatus, readonly DifferenceStatus[]>> = {
  OPEN: ['RESOLVED', 'MATCHED_LATER'],
  MATCHED_LATER: ['OPEN'],
  RESOLVED: [],
};
export const differenceMachine = defineMachine<DifferenceStatus>({
  name: 'reconciliation_difference',
  table: 'reconciliation_difference',
  initial: ['OPEN'],
  transitions: DIFFERENCE_TRANSITIONS,
  refuse: (from) => new SettlementError('DIFFERENCE_NOT_OPEN', `the difference is ${from}, not OPEN`, 'difference'),
});
