import { ALG_3DES, ALG_SM4, type AlgorithmId } from '../../cardcrypto/algorithm.js';
import { purchaseSessionKey } from '../../cardcrypto/epurse.js';
import type { KeyPurpose } from '../key-store.js';
import type { PurchaseInit } from './session.model.js';
import type { SessionDeps } from './step.js';
import { SessionError } from './session.errors.js';

/**
 * The card's key for one purpose, diversified by its ASN. The card says which algorithm it
 * computes with; the card company's master key says which it was issued with: they must agree,
 * or the host would compute MACs for a card under the wrong cipher.
 */
export async function cardKeyFor(deps: Pick<SessionDeps, 'keyStore'>, req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asn: Buffer; algorithm: AlgorithmId }): Promise<Buffer> {
  const { key, algorithm } = await deps.keyStore.cardKey(req);
  if ((algorithm === 'SM4' ? ALG_SM4 : ALG_3DES) !== req.algorithm) throw new SessionError('CARD_ERROR', `the card reports algorithm id ${req.algorithm}, its card company's keys are ${algorithm}`).at('card-answers');
  return key;
}

/** SESPK, derived from DPK each time it is needed: no session key is ever stored. */
export async function purchaseKeyFor(deps: Pick<SessionDeps, 'keyStore'>, cardCompanyId: string, asn: Buffer, p: PurchaseInit): Promise<Buffer> {
  const algorithm = p.algorithmId as AlgorithmId;
  const dpk = await cardKeyFor(deps, { cardCompanyId, purpose: 'PURCHASE', keyVersion: p.keyVersion, asn, algorithm });
  return purchaseSessionKey({ algorithm, purchaseKey: dpk, random: Buffer.from(p.random, 'hex'), offlineCounter: p.offlineCounter, terminalSerial: p.terminalSerial });
}
