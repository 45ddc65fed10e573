import { type AlgorithmId, algorithmId } from '../../../cardcrypto/algorithm.js';
import * as apdu from '../apdu.js';
import { SessionError, type SessionRefusal } from '../session.errors.js';

/** Reads a card answer; a card refusing becomes CARD_ERROR, or the refusal its status word names. */
export function cardAnswer<T>(read: () => T, byStatusWord: Record<string, SessionRefusal> = {}): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof apdu.CardAnswerError) throw new SessionError((err.statusWord && byStatusWord[err.statusWord]) || 'CARD_ERROR', err.message).at('card-answers');
    throw err;
  }
}

/** The card's newest transaction log record; an empty log (6A83) is null. */
export function lastRecordOf(answer: string | undefined): apdu.TransactionRecord | null {
  return cardAnswer(() => {
    try {
      return apdu.parseTransactionRecord(apdu.ok(answer, 'READ RECORD'));
    } catch (err) {
      if (err instanceof apdu.CardAnswerError && err.statusWord === apdu.SW_RECORD_NOT_FOUND) return null;
      throw err;
    }
  });
}

/** The algorithm id a card reported, if we implement it; anything else is the card's fault. */
export function supportedAlgorithm(id: number): AlgorithmId {
  try {
    return algorithmId(id);
  } catch {
    throw new SessionError('CARD_ERROR', `unsupported algorithm id ${id}`).at('card-answers');
  }
}
