import type { EntityManager } from '@mikro-orm/postgresql';
import { NOW, transitionWhere } from '../../lifecycle/machine.js';
import { FINISHED_STATES_SQL, sessionMachine } from './session-machine.js';
import type { SessionState } from './session.model.js';

/** How long past its expiry a session is left as it is, so that a late message still hears SESSION_EXPIRED. */
export const ABANDONED_SESSION_GRACE_SECONDS = 60;

/**
 * Ends card sessions that nobody will finish: past their expiry (and a grace minute) and still
 * OPEN, AUTHENTICATED or awaiting a card's answer, typically cut by a crash of the app, the reader
 * or the API. Each becomes FAILED (SESSION_EXPIRED) with an audit row saying so. Nothing waits on
 * them (an expired session is not live for payments or loads whatever its state); this keeps their
 * state honest. A write the card may have made (MAC2 or a purchase sent, no answer) stays claimed
 * by its payment or top-up, which the card's next tap settles. Skip-locked batches, so several
 * processes may run it; returns how many were ended.
 */
export async function expireAbandonedSessions(em: EntityManager, now: Date = new Date()): Promise<number> {
  let ended = 0;
  for (;;) {
    const rows = await em.transactional(async (tx) => {
      const abandoned = await tx.execute<{ id: string; state: SessionState }[]>(
        `select id, state from card_session
          where state not in (${FINISHED_STATES_SQL}) and expires_at <= ?::timestamptz - make_interval(secs => ?)
          order by expires_at limit 200 for update skip locked`,
        [now.toISOString(), ABANDONED_SESSION_GRACE_SECONDS],
      );
      if (!abandoned.length) return [];
      const states = [...new Set(abandoned.map((a) => a.state))];
      await transitionWhere(tx, sessionMachine, { from: states, to: 'FAILED', patch: { refusal: 'SESSION_EXPIRED', finished_at: NOW }, where: 't.id = any(?::uuid[])', params: [`{${abandoned.map((a) => a.id).join(',')}}`] });
      await tx.execute(
        `insert into card_session_audit (session_id, seq, step, outcome, refusal, detail)
         select a.id, null, 'expired', 'REFUSED', 'SESSION_EXPIRED', jsonb_build_object('state', a.was, 'by', 'expiry job') from unnest(?::uuid[], ?::text[]) as a(id, was)`,
        [`{${abandoned.map((a) => a.id).join(',')}}`, `{${abandoned.map((a) => a.state).join(',')}}`],
      );
      return abandoned;
    });
    ended += rows.length;
    if (rows.length < 200) return ended;
  }
}
