import { toGlobalId } from '../../../graphql/global-id.js';
import { verifyReaderSignature } from '../envelope.js';
import type { IncomingMessage, SessionRow } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/** The message is signed by the reader's device key (the hello's city certificate's key) over session, sequence and body. */
export function checkSignature(publicKeyPem: string, session: SessionRow, message: IncomingMessage): void {
  if (!verifyReaderSignature(publicKeyPem, toGlobalId('CardSession', session.id), message.seq, message.body, message.signature)) {
    throw new SessionError('BAD_SIGNATURE', 'the reader signature does not verify').at('signature');
  }
}

/** Every message after the hello: signed with the city certificate's key the hello presented (one key for all, in sessions opened before the split). */
export function checkStepSignature(session: SessionRow, message: IncomingMessage): void {
  checkSignature(session.context.signingKeyPem ?? session.context.publicKeyPem!, session, message);
}
