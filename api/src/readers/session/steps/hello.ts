import type { ReaderRow } from '../../readers.service.js';
import * as apdu from '../apdu.js';
import { checkChains } from '../checks/chains.js';
import { checkChallenge } from '../checks/challenge.js';
import { checkRegistration } from '../checks/registration.js';
import { checkSignature } from '../checks/signature.js';
import type { CardProfile } from '../card-profile.js';
import { profileForReaderCity } from '../card-profile.service.js';
import { hex, type ReaderCommand, type SessionRow } from '../session.model.js';
import type { Step } from '../step.js';
import { terminalIdOf } from '../terminal.js';

/**
 * Message 0: the reader proves itself with its chains and, with the national certificate's key, a
 * signature over the challenge (access). Its later messages are signed with the city certificate's
 * key; what is sealed to it goes to the encryption certificate's (DESIGN.md §6). A SINGLE_KEY reader
 * (registered before the split) has one key in all three roles.
 */
export const hello: Step = async ({ em, deps, now, session, reader, message, body }) => {
  const pems = checkChallenge(session, body, reader.key_scheme);
  const chains = await checkChains(em, reader, pems, now);
  checkRegistration(reader, chains);
  checkSignature(chains.national.publicKeyPem, session, message);
  const signingKeyPem = chains.city.publicKeyPem;
  // The steps seal to `publicKeyPem`.
  const publicKeyPem = chains.encryption ? chains.encryption.publicKeyPem : signingKeyPem;
  // The card is not known yet: the reader's city's card profile (selecting its neighbours' cards too) builds the first batch.
  const profile = await profileForReaderCity(em, reader.city_id, deps.reads);
  // An M1 card first tells its UID (its sector keys derive from it); a CPU card answers APDUs.
  const commands: ReaderCommand[] = session.card_type === 'M1' ? [{ readUid: true }] : firstCommands(session, reader, profile);
  return { state: 'AUTHENTICATED', context: { ...session.context, publicKeyPem, signingKeyPem, profile }, commands };
};

/**
 * SELECT, the card's identity (public data), then what the operation asks first (again after a
 * proof round or a change of profile, steps/cpu.ts), all as the profile says: its selection order,
 * files and key indexes. One way in is a plain SELECT; several are a `select` the reader tries in order.
 */
export function firstCommands(session: SessionRow, reader: ReaderRow, profile: CardProfile): ReaderCommand[] {
  const amount = Number(session.amount);
  const rest = {
    BALANCE: () => [apdu.getBalance()],
    // Loads and purchases also read the card's newest log record: it settles an operation whose answer was lost (CARD-PROTOCOL.md §8).
    LOAD: () => [apdu.readLastTransaction(profile.transactionLogSfi), apdu.initializeForLoad(profile.loadKeyIndex, amount, terminalIdOf(reader))],
    PURCHASE: () => [apdu.readLastTransaction(profile.transactionLogSfi), apdu.initializeForPurchase(profile.purchaseKeyIndex, amount, terminalIdOf(reader))],
  }[session.operation];
  const [first] = profile.selection;
  const select: ReaderCommand = { apdu: hex(apdu.selectCommand(first!)), ...(profile.selection.length > 1 || first!.kind !== 'AID' ? { select: profile.selection } : {}) };
  return [select, ...[apdu.readPublicData(profile.publicDataSfi), ...rest()].map((c) => ({ apdu: hex(c) }))];
}
