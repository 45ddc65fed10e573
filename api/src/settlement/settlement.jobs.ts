import type { EntityManager } from '@mikro-orm/postgresql';
import type { GatewayClient } from '../topups/gateway/gateway-client.js';
import { clearWindow } from './clearing.js';
import { pollSentPayouts, sendDuePayouts } from './payouts.js';
import { reconcileWindow } from './reconciliation.js';
import { closeDueWindows, type CutOff, openUpcomingWindows } from './windows.js';

/** A payout sent this long ago with no webhook is asked about. */
const POLL_PAYOUTS_AFTER_SECONDS = 300;

/**
 * One round of settlement: close the windows whose cut-off passed, clear every closed window not
 * yet cleared (also one a crash left closed), send due payouts, ask about quiet ones, and
 * reconcile settled windows with the gateway. Every
 * step is safe to run in several processes at once (row locks, skip locked, idempotent clearing).
 */
export async function runSettlementJobs(em: EntityManager, gateway: GatewayClient | null, p: { cutoff: CutOff; now?: Date; onError?: (err: unknown, step: string) => void }) {
  const now = p.now ?? new Date();
  const failed = (step: string) => (err: unknown) => p.onError?.(err, step);
  // Today's and tomorrow's windows exist before the first transaction needs them (no writer waits on another's new window).
  await openUpcomingWindows(em, { cutoff: p.cutoff, now }).catch(failed('open windows'));
  const closed = await closeDueWindows(em, { cutoff: p.cutoff, now }).catch((err: unknown) => (failed('close windows')(err), []));
  const waiting = await em.execute<{ id: string }[]>(`select id from settlement_window where status = 'CLOSED' order by business_day, id`);
  // One window failing (a person must look) does not hold up the others, nor the payouts.
  let cleared = 0;
  for (const w of waiting) await clearWindow(em, w.id).then(() => cleared++, failed(`clear window ${w.id}`));
  const sent = gateway ? await sendDuePayouts(em, gateway, now) : 0;
  const polled = gateway ? await pollSentPayouts(em, gateway, { idleSeconds: POLL_PAYOUTS_AFTER_SECONDS, now }) : 0;
  // A settled window is reconciled once by itself, when its payouts are final; the operator may run it again.
  const unreconciled = gateway
    ? await em.execute<{ id: string }[]>(`select w.id from settlement_window w where w.status = 'SETTLED' and not exists (select 1 from reconciliation_run r where r.window_id = w.id) order by w.business_day limit 5`)
    : [];
  for (const w of unreconciled) await reconcileWindow(em, gateway, w.id, now).catch(failed(`reconcile window ${w.id}`));
  return { closed: closed.length, cleared, sent, polled, reconciled: unreconciled.length };
}
