import type { EntityManager } from '@mikro-orm/postgresql';
import { settleOpenM1Writes } from '../m1-writes.js';
import type { SessionRow } from '../session.model.js';
import type { SessionDeps } from '../step.js';

/**
 * An M1 card's earlier write whose answer was lost is settled from the value the reader read now
 * (value and backup agreeing): booked if the value is the one the write left, free again if it is
 * the one the write was bound to, unresolved otherwise (m1-writes.ts). It refuses nothing: the card
 * holds what it holds, whatever this session does.
 */
export const checkM1Value = (em: EntityManager, deps: SessionDeps, session: SessionRow, uid: string, value: number, now: Date): Promise<Record<string, unknown>[]> => settleOpenM1Writes(em, deps, session, uid, value, now);
