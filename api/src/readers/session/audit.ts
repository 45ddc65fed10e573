import type { EntityManager } from '@mikro-orm/postgresql';
import { sql, type SqlValue } from '../../lifecycle/machine.js';
import type { SessionRefusal } from './session.errors.js';

/** One row of a card session's audit trail (`card_session_audit`) as a statement, to run alone or alongside the session's move. */
export function auditRow(sessionId: string, seq: number | null, step: string, outcome: 'ACCEPTED' | 'REFUSED', refusal: SessionRefusal | null, detail: Record<string, unknown> = {}): SqlValue {
  return sql(`insert into card_session_audit (session_id, seq, step, outcome, refusal, detail) values (?, ?, ?, ?, ?, ?)`, sessionId, seq, step, outcome, refusal, JSON.stringify(detail));
}

/** One row of a card session's audit trail (`card_session_audit`): every step, refusal and late proof writes one. */
export async function recordAudit(em: EntityManager, sessionId: string, seq: number | null, step: string, outcome: 'ACCEPTED' | 'REFUSED', refusal: SessionRefusal | null, detail: Record<string, unknown> = {}): Promise<void> {
  const row = auditRow(sessionId, seq, step, outcome, refusal, detail);
  await em.execute(row.text, row.params);
}
