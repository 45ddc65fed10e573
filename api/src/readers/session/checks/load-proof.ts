import type { EntityManager } from '@mikro-orm/postgresql';
import type { AlgorithmId } from '../../../cardcrypto/algorithm.js';
import { loadTac, verifyMac } from '../../../cardcrypto/epurse.js';
import type { ReaderRow } from '../../readers.service.js';
import { cardKeyFor } from '../card-keys.js';
import type { SessionRow } from '../session.model.js';
import type { SessionDeps } from '../step.js';
import { terminalIdOf } from '../terminal.js';

/**
 * Does a TAC from GET TRANSACTION PROVE prove this unanswered load: new balance = old + amount, the
 * counter INITIALIZE gave, the amount, the load session's terminal, and the date and time its MAC2
 * bound, under the card's DTK (which only the card and the host hold)? It refuses nothing: a TAC
 * that does not verify books nothing, and the load stays open.
 */
export async function checkLoadProof(deps: SessionDeps, em: EntityManager, load: SessionRow, tac: Buffer): Promise<boolean> {
  const init = load.context.init!;
  const [reader] = await em.execute<ReaderRow[]>(`select * from reader where id = ?`, [load.reader_id]);
  const algorithm = init.algorithmId as AlgorithmId;
  const amount = Number(load.amount);
  const dtk = await cardKeyFor(deps, { cardCompanyId: load.context.cardCompanyId!, purpose: 'TAC', keyVersion: init.keyVersion, asn: Buffer.from(load.card_asn!, 'hex'), algorithm });
  const expected = loadTac({ algorithm, tacKey: dtk, newBalance: init.oldBalance + amount, onlineCounter: init.onlineCounter, amount, terminalId: terminalIdOf(reader!), date: init.date, time: init.time });
  return verifyMac(expected, tac);
}
