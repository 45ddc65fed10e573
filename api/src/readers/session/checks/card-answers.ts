import type { AlgorithmId } from '../../../cardcrypto/algorithm.js';
import { acceptedCipher, type CardProfile } from '../card-profile.js';
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
export function lastRecordOf(answer: string | undefined, tolerated: readonly string[] = []): apdu.TransactionRecord | null {
  return cardAnswer(() => {
    try {
      return apdu.parseTransactionRecord(apdu.ok(answer, 'READ RECORD', tolerated));
    } catch (err) {
      if (err instanceof apdu.CardAnswerError && err.statusWord === apdu.SW_RECORD_NOT_FOUND) return null;
      throw err;
    }
  });
}

/**
 * The cipher of the algorithm id a card reported, if its card profile accepts that id; otherwise
 * the card is refused before any cryptogram leaves the host (no MAC2 for a load, no MAC1 for a purchase).
 */
export function acceptedAlgorithm(profile: Pick<CardProfile, 'algorithmIds'>, id: number): AlgorithmId {
  const cipher = acceptedCipher(profile, id);
  if (cipher === null) {
    const hexId = id.toString(16).padStart(2, '0').toUpperCase();
    throw new SessionError('ALGORITHM_NOT_ACCEPTED', `the card answers algorithm id ${hexId}, which its card profile does not accept (it accepts ${profile.algorithmIds.map((a) => a.toString(16).padStart(2, '0').toUpperCase()).join(', ')})`).at('card-answers');
  }
  return cipher;
}
