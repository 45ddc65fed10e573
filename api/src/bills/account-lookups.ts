import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { findBillerFor } from '../tenancy/tenancy.service.js';
import { BillError } from './bills.errors.js';
import { checkText, TEXT_LIMITS } from './bill-input.js';

/*
 * A holder's app looking bills up by account number (docs/billers.md#look-ups-by-account-number).
 * Account numbers are short and sequential (GZW-0010001, -2, …), so a look-up is a guess anyone
 * can make. Each one is audited in `bill_lookup`, and those rows are also the throttle's counter: a
 * holder may look up so many distinct accounts not bound to it per hour. A bound account (the holder
 * proved it is theirs) is audited but never counted or throttled.
 */

/** Distinct unbound accounts one holder may look up (or try to bind) in an hour. */
export const LOOKUPS_PER_HOUR = 10;
const WINDOW = `interval '1 hour'`;

export type LookUpAction = 'LOOK_UP' | 'BIND';
export type AuditOutcome = 'FOUND' | 'NOT_FOUND' | 'NOT_ALLOWED' | 'REFUSED' | 'BOUND';

/**
 * Wrong binding proofs one holder may give in an hour, whatever the accounts (the distinct-accounts
 * budget above does not count a second try on the same account, so it alone would let references be
 * guessed without limit), and on one account in a day.
 */
export const FAILED_BINDS_PER_HOUR = 5;
export const FAILED_BINDS_PER_ACCOUNT_PER_DAY = 5;

/** The holder has used its hour's look-ups; it may look again after `retryAfterSeconds`. */
export class LookUpThrottled extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    message = `too many account look-ups: at most ${LOOKUPS_PER_HOUR} accounts an hour; try again in ${retryAfterSeconds} s, or bind the accounts that are yours`,
  ) {
    super(message);
    this.name = 'LookUpThrottled';
  }
}

/** One admitted look-up: its audit row, to be given its outcome. */
export interface AdmittedLookUp {
  auditId: string | null;
  bound: boolean;
}

export async function isBound(em: EntityManager, holderId: string, billerId: string, accountNumber: string): Promise<boolean> {
  const [row] = await em.execute(`select 1 from bill_account_binding where holder_id = ? and biller_id = ? and account_number = ?`, [holderId, billerId, accountNumber]);
  return Boolean(row);
}

/**
 * Admits a holder's look-up of one account and writes its audit row (outcome still open), or writes
 * a THROTTLED row and throws LookUpThrottled. The holder's look-ups are serialised by an advisory
 * lock, so requests in parallel cannot each slip under the limit; any number of API processes share it.
 */
export async function admitLookUp(em: EntityManager, principal: Principal, billerId: string, accountNumber: string, action: LookUpAction): Promise<AdmittedLookUp> {
  const holderId = principal.holderId!;
  const bound = await isBound(em, holderId, billerId, accountNumber);
  return em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`bill-lookup:${holderId}`]);
    const audit = (outcome: 'THROTTLED' | null) =>
      tx.execute<{ id: string }[]>(`insert into bill_lookup (holder_id, client_id, biller_id, account_number, action, outcome, bound) values (?, ?, ?, ?, ?, ?, ?) returning id::text as id`, [
        holderId,
        principal.clientId,
        billerId,
        accountNumber,
        action,
        outcome,
        bound,
      ]);
    if (!bound && action === 'BIND') {
      // A bind whose outcome is still open counts as failed: binds sent at once cannot slip under the limit.
      const [failed] = await tx.execute<{ hour: number; day_on_account: number; retry_at: Date | null }[]>(
        `select count(*) filter (where at > now() - ${WINDOW})::int as hour,
                count(*) filter (where biller_id = ? and account_number = ?)::int as day_on_account,
                case when count(*) filter (where biller_id = ? and account_number = ?) >= ? then min(at) filter (where biller_id = ? and account_number = ?) + interval '1 day'
                     else min(at) filter (where at > now() - ${WINDOW}) + ${WINDOW} end as retry_at
           from bill_lookup
          where holder_id = ? and action = 'BIND' and at > now() - interval '1 day' and (outcome = 'REFUSED' or outcome is null)`,
        [billerId, accountNumber, billerId, accountNumber, FAILED_BINDS_PER_ACCOUNT_PER_DAY, billerId, accountNumber, holderId],
      );
      if (failed!.hour >= FAILED_BINDS_PER_HOUR || failed!.day_on_account >= FAILED_BINDS_PER_ACCOUNT_PER_DAY) {
        await audit('THROTTLED');
        const [{ seconds }] = await tx.execute<{ seconds: number }[]>(`select greatest(1, ceil(extract(epoch from (?::timestamptz - now()))))::int as seconds`, [failed!.retry_at]);
        return { throttled: seconds, message: `too many wrong binding proofs: at most ${FAILED_BINDS_PER_HOUR} an hour, and ${FAILED_BINDS_PER_ACCOUNT_PER_DAY} a day on one account; try again in ${seconds} s` } as const;
      }
    }
    if (!bound) {
      const [budget] = await tx.execute<{ accounts: number; seen: boolean; oldest: Date | null }[]>(
        `select count(distinct (biller_id, account_number))::int as accounts,
                bool_or(biller_id = ? and account_number = ?) as seen,
                min(at) as oldest
           from bill_lookup
          where holder_id = ? and at > now() - ${WINDOW} and not bound and outcome is distinct from 'THROTTLED'`,
        [billerId, accountNumber, holderId],
      );
      if (!budget!.seen && budget!.accounts >= LOOKUPS_PER_HOUR) {
        await audit('THROTTLED');
        const [{ seconds }] = await tx.execute<{ seconds: number }[]>(`select greatest(1, ceil(extract(epoch from (?::timestamptz + ${WINDOW} - now()))))::int as seconds`, [budget!.oldest]);
        return { throttled: seconds } as const;
      }
    }
    const [row] = await audit(null);
    return { auditId: row!.id, bound };
  }).then((admitted): AdmittedLookUp => {
    // Thrown after the commit, so the THROTTLED audit row stays.
    if ('throttled' in admitted) throw new LookUpThrottled(admitted.throttled!, 'message' in admitted ? admitted.message : undefined);
    return admitted;
  });
}

export async function recordOutcome(em: EntityManager, admitted: AdmittedLookUp, outcome: AuditOutcome): Promise<void> {
  if (admitted.auditId) await em.execute(`update bill_lookup set outcome = ? where id = ?`, [outcome, admitted.auditId]);
}

export interface Binding {
  billerId: string;
  accountNumber: string;
  boundAt: Date;
}

/**
 * Binds an account to the holder, where its biller allows it, on proof that the holder has one of
 * the account's bills in hand: the biller's reference printed on it (any of the account's bills,
 * paid or not). Each attempt is a look-up of the account (audited, throttled), and wrong proofs have
 * a budget of their own (FAILED_BINDS_PER_HOUR), so references cannot be guessed at speed. Binding again is a no-op that answers the binding.
 */
export async function bindAccount(em: EntityManager, principal: Principal, input: { billerId: string; accountNumber: string; billerReference: string }): Promise<Binding> {
  if (principal.kind !== 'CARDHOLDER_APP' || !principal.holderId) throw new BillError('FORBIDDEN_OPERATION', 'an account is bound by a cardholder’s app', 'biller');
  const account = checkText(input.accountNumber, 'accountNumber', TEXT_LIMITS.accountNumber);
  if (account.problem) throw new BillError('INVALID_INPUT', account.problem.message, 'accountNumber');
  const biller = await findBillerFor(em, principal, input.billerId);
  if (!biller) throw new BillError('NOT_FOUND', `no biller ${input.billerId}`, 'biller');
  const admitted = await admitLookUp(em, principal, input.billerId, input.accountNumber, 'BIND');
  const [setting] = await em.execute<{ account_binding: boolean }[]>(`select account_binding from biller where id = ?`, [input.billerId]);
  if (!setting?.account_binding) {
    await recordOutcome(em, admitted, 'NOT_ALLOWED');
    throw new BillError('FORBIDDEN_OPERATION', 'this biller does not allow binding accounts to a holder', 'biller');
  }
  const [bill] = await em.execute(`select 1 from bill where biller_id = ? and account_number = ? and biller_reference = ?`, [input.billerId, input.accountNumber, input.billerReference]);
  if (!bill) {
    await recordOutcome(em, admitted, 'REFUSED');
    throw new BillError('NOT_FOUND', 'no bill of this account has that reference: give the reference printed on one of its bills', 'billerReference');
  }
  await em.execute(`insert into bill_account_binding (holder_id, biller_id, account_number, bound_by_client) values (?, ?, ?, ?) on conflict do nothing`, [
    principal.holderId,
    input.billerId,
    input.accountNumber,
    principal.clientId,
  ]);
  await recordOutcome(em, admitted, 'BOUND');
  const [row] = await em.execute<{ bound_at: Date }[]>(`select bound_at from bill_account_binding where holder_id = ? and biller_id = ? and account_number = ?`, [principal.holderId, input.billerId, input.accountNumber]);
  return { billerId: input.billerId, accountNumber: input.accountNumber, boundAt: row!.bound_at };
}

/** The biller's own setting: whether its customers' accounts may be bound to holders. */
export async function setAccountBinding(em: EntityManager, billerId: string, allowed: boolean): Promise<boolean> {
  const [row] = await em.execute<{ account_binding: boolean }[]>(`update biller set account_binding = ? where id = ? returning account_binding`, [allowed, billerId]);
  return row!.account_binding;
}
