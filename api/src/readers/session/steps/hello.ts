import type { ReaderRow } from '../../readers.service.js';
import * as apdu from '../apdu.js';
import { checkChains } from '../checks/chains.js';
import { checkChallenge } from '../checks/challenge.js';
import { checkRegistration } from '../checks/registration.js';
import { checkSignature } from '../checks/signature.js';
import { hex, type ReaderCommand, type SessionRow } from '../session.model.js';
import type { Step } from '../step.js';
import { terminalIdOf } from '../terminal.js';

/** The key index of the load and purchase keys the host asks the card to use. */
const KEY_INDEX = 1;

/**
 * Message 0: the reader proves itself with its chains and, with the national certificate's key, a
 * signature over the challenge (access). Its later messages are signed with the city certificate's
 * key; what is sealed to it goes to the encryption certificate's (DESIGN.md §6). A SINGLE_KEY reader
 * (registered before the split) has one key in all three roles.
 */
export const hello: Step = async ({ em, now, session, reader, message, body }) => {
  const pems = checkChallenge(session, body, reader.key_scheme);
  const chains = await checkChains(em, reader, pems, now);
  checkRegistration(reader, chains);
  checkSignature(chains.national.publicKeyPem, session, message);
  const signingKeyPem = chains.city.publicKeyPem;
  // The steps seal to `publicKeyPem`.
  const publicKeyPem = chains.encryption ? chains.encryption.publicKeyPem : signingKeyPem;
  // An M1 card first tells its UID (its sector keys derive from it); a CPU card answers APDUs.
  const commands: ReaderCommand[] = session.card_type === 'M1' ? [{ readUid: true }] : firstCommands(session, reader).map((c) => ({ apdu: hex(c) }));
  return { state: 'AUTHENTICATED', context: { ...session.context, publicKeyPem, signingKeyPem }, commands };
};

/** SELECT, the card's identity (SFI 0x15), then what the operation asks first (again after a proof round, steps/cpu.ts). */
export function firstCommands(session: SessionRow, reader: ReaderRow): Buffer[] {
  const amount = Number(session.amount);
  const rest = {
    BALANCE: () => [apdu.getBalance()],
    // Loads and purchases also read the card's newest log record: it settles an operation whose answer was lost (CARD-PROTOCOL.md §8).
    LOAD: () => [apdu.readLastTransaction(), apdu.initializeForLoad(KEY_INDEX, amount, terminalIdOf(reader))],
    PURCHASE: () => [apdu.readLastTransaction(), apdu.initializeForPurchase(KEY_INDEX, amount, terminalIdOf(reader))],
  }[session.operation];
  return [apdu.selectApplication(), apdu.readPublicData(), ...rest()];
}
