import type { EntityManager } from '@mikro-orm/postgresql';
import type { AlgorithmId } from '../../../cardcrypto/algorithm.js';
import { loadTacMessage, purchaseMac2Message, purchaseTacMessage, verifyMac } from '../../../cardcrypto/epurse.js';
import type { ReaderRow } from '../../readers.service.js';
import { purchaseMacsFor, tacFor } from '../card-keys.js';
import type { SessionRow } from '../session.model.js';
import type { SessionDeps } from '../step.js';
import { terminalIdOf } from '../terminal.js';

/**
 * Does MAC2 || TAC from GET TRANSACTION PROVE prove this unanswered transaction? The TAC is under the
 * card's DTK, which only the card and the host hold, so a reader cannot make one for a transaction
 * the card did not do. It refuses nothing: a proof that does not verify books nothing.
 */

async function readerOf(em: EntityManager, session: SessionRow): Promise<ReaderRow> {
  const [reader] = await em.execute<ReaderRow[]>(`select * from reader where id = ?`, [session.reader_id]);
  return reader!;
}

/** A load: new balance = old + amount, the counter INITIALIZE gave, the amount, the load session's terminal, and the date and time its MAC2 bound. */
export async function checkLoadProof(deps: Pick<SessionDeps, 'keyStore'>, em: EntityManager, load: SessionRow, proof: { mac2: Buffer; tac: Buffer }): Promise<boolean> {
  const init = load.context.init!;
  const algorithm = init.algorithmId as AlgorithmId;
  const amount = Number(load.amount);
  const message = loadTacMessage({ newBalance: init.oldBalance + amount, onlineCounter: init.onlineCounter, amount, terminalId: terminalIdOf(await readerOf(em, load)), date: init.date, time: init.time });
  const expected = await tacFor(deps, { cardCompanyId: load.context.cardCompanyId!, keyVersion: init.keyVersion, asn: Buffer.from(load.card_asn!, 'hex'), algorithm, message });
  return verifyMac(expected, proof.tac);
}

/** A purchase: MAC2 under that session's SESPK, and the TAC over its amount, terminal, terminal serial, date and time. */
export async function checkPurchaseProof(deps: SessionDeps, em: EntityManager, purchase: SessionRow, proof: { mac2: Buffer; tac: Buffer }): Promise<boolean> {
  const p = purchase.context.purchase!;
  const algorithm = p.algorithmId as AlgorithmId;
  const amount = Number(purchase.amount);
  const asn = Buffer.from(purchase.card_asn!, 'hex');
  const [mac2] = await purchaseMacsFor(deps, purchase.context.cardCompanyId!, asn, p, [purchaseMac2Message({ amount })]);
  if (!verifyMac(mac2!, proof.mac2)) return false;
  const message = purchaseTacMessage({ amount, terminalId: terminalIdOf(await readerOf(em, purchase)), terminalSerial: p.terminalSerial, date: p.date, time: p.time });
  const expected = await tacFor(deps, { cardCompanyId: purchase.context.cardCompanyId!, keyVersion: p.keyVersion, asn, algorithm, message });
  return verifyMac(expected, proof.tac);
}
