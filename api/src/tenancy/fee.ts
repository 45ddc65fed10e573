/** The terms `feeFor()` needs; a `FeePlan` has them. */
export interface FeeTerms {
  /** 1 bp = 0.01 %. */
  basisPoints: number;
  fixedFee: bigint;
  minimumFee: bigint;
}

const BASIS_POINTS_PER_UNIT = 10_000n;

/**
 * The operator's service fee on a transaction of `amount` minor units:
 * max(minimum, fixed + amount × bp / 10 000), the percentage rounded half-up to a whole minor unit.
 * Integer arithmetic only (DESIGN.md §3), so 0.5 fen always rounds the same way. Pure: clearing
 * and quotes call it with the plan in force. The fee is not capped at the amount: a minimum can
 * exceed a tiny amount, and the caller decides what that means.
 */
export function feeFor(plan: FeeTerms, amount: bigint): bigint {
  if (amount < 0n) throw new RangeError(`a fee is computed on a non-negative amount; got ${amount}`);
  if (!Number.isInteger(plan.basisPoints) || plan.basisPoints < 0 || plan.basisPoints > 10_000) throw new RangeError(`basis points are 0 to 10000; got ${plan.basisPoints}`);
  const percentage = (amount * BigInt(plan.basisPoints) + BASIS_POINTS_PER_UNIT / 2n) / BASIS_POINTS_PER_UNIT;
  const fee = plan.fixedFee + percentage;
  return fee > plan.minimumFee ? fee : plan.minimumFee;
}
