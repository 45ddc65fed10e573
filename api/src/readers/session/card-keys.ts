import type { AlgorithmId } from '../../cardcrypto/algorithm.js';
import { purchaseSessionInput } from '../../cardcrypto/epurse.js';
import { algorithmIdOf, type CardAlgorithm, type CardKeyRequest } from '../key-store.js';
import type { PurchaseInit } from './session.model.js';
import type { SessionDeps } from './step.js';
import { SessionError } from './session.errors.js';

/**
 * The card says which algorithm it computes with; the card company's master key says which it was
 * issued with: they must agree, or the host would compute MACs for a card under the wrong cipher.
 */
function requireSameAlgorithm(card: AlgorithmId, keys: CardAlgorithm): void {
  if (algorithmIdOf(keys) !== card) throw new SessionError('CARD_ERROR', `the card reports algorithm id ${card}, its card company's keys are ${keys}`).at('card-answers');
}

/**
 * MACs under the card's session key for one load or purchase, computed by the key store (inside the
 * HSM where it can): neither the card's key nor the session key is handed to the engine.
 */
export async function sessionMacsFor(deps: Pick<SessionDeps, 'keyStore'>, req: CardKeyRequest & { purpose: 'LOAD' | 'PURCHASE'; algorithm: AlgorithmId; sessionInput: Buffer; messages: Buffer[] }): Promise<Buffer[]> {
  const { algorithm, macs } = await deps.keyStore.sessionMacs(req);
  requireSameAlgorithm(req.algorithm, algorithm);
  return macs;
}

/** MACs under SESPK, derived from DPK each time they are needed: no session key is ever stored. */
export function purchaseMacsFor(deps: Pick<SessionDeps, 'keyStore'>, cardCompanyId: string, asn: Buffer, p: PurchaseInit, messages: Buffer[]): Promise<Buffer[]> {
  const sessionInput = purchaseSessionInput({ random: Buffer.from(p.random, 'hex'), offlineCounter: p.offlineCounter, terminalSerial: p.terminalSerial });
  return sessionMacsFor(deps, { cardCompanyId, purpose: 'PURCHASE', keyVersion: p.keyVersion, asn, algorithm: p.algorithmId as AlgorithmId, sessionInput, messages });
}

/** The TAC the card should have answered, under its DTK. */
export async function tacFor(deps: Pick<SessionDeps, 'keyStore'>, req: Omit<CardKeyRequest, 'purpose'> & { algorithm: AlgorithmId; message: Buffer }): Promise<Buffer> {
  const { algorithm, tac } = await deps.keyStore.tac(req);
  requireSameAlgorithm(req.algorithm, algorithm);
  return tac;
}
