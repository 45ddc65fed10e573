/**
 * What every batch a terminal uploads passes before its body is read (offline card purchases,
 * QR rides): the same checks in the same order, each refusing the whole batch with its own name.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ReaderRow } from '../readers/readers.service.js';
import { isRegisteredCityCertificate, verifyCityChain } from '../readers/session/checks/chains.js';
import { verifyOfflineBatchSignature } from './offline-batch-signature.js';

/** Why a terminal's batch is refused before its body is read. */
export type TerminalBatchRefusal = 'MALFORMED_BATCH' | 'NOT_A_TERMINAL' | 'UNKNOWN_CA' | 'CERTIFICATE_REVOKED' | 'CERTIFICATE_EXPIRED' | 'CERTIFICATE_NOT_THIS_TERMINAL' | 'TERMINAL_NOT_ACTIVE' | 'BAD_SIGNATURE';

/** A batch as a terminal uploads it: the body and its signature under the terminal's city certificate. */
export interface SignedTerminalBatch {
  terminal: ReaderRow;
  /** The terminal's global id: what it signed. */
  terminalGlobalId: string;
  batchId: string;
  body: string;
  signature: string;
  certificate: string;
}

/**
 * In order: a well-formed batch id; a reader of a card company or a merchant; its city certificate
 * chains to its city's working CA and the root, is valid, not revoked, and is the one registered
 * (the card sessions' check, readers/session/checks/chains.ts); the terminal active; the body signed
 * with that certificate's key. `refuse` makes each refusal the caller's own error.
 */
export async function checkTerminalBatch(em: EntityManager, batch: SignedTerminalBatch, now: Date, refuse: (refusal: TerminalBatchRefusal, message: string) => Error): Promise<void> {
  if (!/^[A-Za-z0-9._:-]{1,100}$/.test(batch.batchId)) throw refuse('MALFORMED_BATCH', 'a batch id is 1 to 100 of A–Z a–z 0–9 . _ : -');
  const { terminal } = batch;
  if (terminal.owner_kind !== 'CARD_COMPANY' && terminal.owner_kind !== 'MERCHANT') throw refuse('NOT_A_TERMINAL', 'only readers of a card company or a merchant upload batches');
  const check = await verifyCityChain(em, terminal, batch.certificate, now);
  if (!check.ok) throw refuse(check.refusal, `the terminal certificate was refused: ${check.reason}`);
  if (!isRegisteredCityCertificate(terminal, check)) throw refuse('CERTIFICATE_NOT_THIS_TERMINAL', 'the certificate is not the one registered for this terminal');
  if (terminal.status !== 'ACTIVE') throw refuse('TERMINAL_NOT_ACTIVE', `the terminal is ${terminal.status}`);
  if (!verifyOfflineBatchSignature(check.publicKeyPem, batch.terminalGlobalId, batch.batchId, batch.body, batch.signature)) throw refuse('BAD_SIGNATURE', 'the terminal signature does not verify');
}
