/**
 * Named places where a crash is the worst it can be (an effect committed, its answer not yet with
 * the client), so that tests can crash there on purpose:
 *
 * - `answer`: an idempotent mutation's effect is committed and its answer not yet sent (with the
 *   answer committed alongside, or, for a mutation that calls the gateway, not yet stored);
 * - `top-up-recorded`: createTopUp's top-up is committed and the gateway not yet asked;
 * - `refund-started`: refundTopUp's refund is committed (REFUNDING) and the gateway not yet asked.
 *
 * In production nothing happens at them. Two ways to arm them, both for tests only:
 * `setCrashHook()` in-process (the hook throws a `SimulatedCrash`, which the idempotency layer lets
 * through untouched, as a dead process would), and `ONECARD_TEST_CRASH_PROBABILITY` for an API run
 * as a child process, which then kills itself (SIGKILL) at a crash point with that probability.
 */
export type CrashPoint = 'answer' | 'top-up-recorded' | 'refund-started';

/** What a test hook throws: the process "died" here. Nothing may catch it and carry on. */
export class SimulatedCrash extends Error {
  constructor(readonly point: CrashPoint, readonly operation: string) {
    super(`simulated crash at ${point} (${operation})`);
  }
}

/** A hook may also return a promise: the call then waits at the point (a test holding a call "running"). */
type CrashHook = (point: CrashPoint, operation: string) => void | Promise<void>;

let hook: CrashHook | null = null;

/** Installs (or with null removes) the in-process hook. Tests only. */
export function setCrashHook(fn: CrashHook | null): void {
  hook = fn;
}

/** Makes this process SIGKILL itself at a crash point with this probability (0 disarms). Tests only: config refuses it outside NODE_ENV=test. */
export function armCrashPoints(probability: number): void {
  hook = probability > 0 ? () => void (Math.random() < probability && process.kill(process.pid, 'SIGKILL')) : null;
}

export async function crashPoint(point: CrashPoint, operation: string): Promise<void> {
  await hook?.(point, operation);
}
