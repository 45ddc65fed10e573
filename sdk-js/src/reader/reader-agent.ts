import { constants, createDecipheriv, createPrivateKey, type KeyObject, privateDecrypt, sign } from 'node:crypto';
import type { CardTransport } from '../cards/card-transport.js';

/** A command from the host: a plain APDU, or one sealed to this reader's device key. */
export interface ReaderCommand {
  apdu?: string | null;
  sealed?: { wrappedKey: string; iv: string; ciphertext: string; tag: string } | null;
}

export interface CardSessionView {
  id: string;
  state: string;
  challenge: string;
  nextSeq: number;
  result?: Record<string, unknown> | null;
  refusal?: string | null;
}

export interface SessionReply {
  session: CardSessionView | null;
  commands: ReaderCommand[];
  userErrors: { code: string; message: string }[];
}

/** Sends one signed message to the API (through the app that holds the OAuth token). */
export type SendMessage = (message: { session: string; seq: number; body: string; signature: string }) => Promise<SessionReply>;

export interface ReaderAgentOptions {
  /** The device key (PEM or KeyObject). It signs every message and opens sealed commands; it never leaves the reader. */
  deviceKey: string | KeyObject;
  nationalCertificatePem: string;
  cityCertificatePem: string;
  transport: CardTransport;
  send: SendMessage;
}

/** The GraphQL mutation a `send` built on the SDK client uses. */
export const CARD_SESSION_MESSAGE = `mutation CardSessionMessage($input: CardSessionMessageInput!) {
  cardSessionMessage(input: $input) {
    session { id state challenge nextSeq result refusal }
    commands { apdu sealed { wrappedKey iv ciphertext tag } }
    userErrors { code message }
  }
}`;

/**
 * A certified reader's side of a card session (docs/readers.md): it answers the challenge with both
 * certificates and a signature, then runs each batch of host commands on the card and returns the
 * card's answers, every message signed with the device key and numbered in order.
 */
export class ReaderAgent {
  private readonly key: KeyObject;

  constructor(private readonly opts: ReaderAgentOptions) {
    this.key = typeof opts.deviceKey === 'string' ? createPrivateKey(opts.deviceKey) : opts.deviceKey;
  }

  /** The signature the host checks: RSA-SHA256 over domain, session, sequence and body. */
  sign(sessionId: string, seq: number, body: string): string {
    return sign('sha256', Buffer.from(`onecard-card-session-v1\n${sessionId}\n${seq}\n${body}`, 'utf8'), this.key).toString('base64');
  }

  private open(sealed: NonNullable<ReaderCommand['sealed']>, associated: string): Uint8Array {
    const aesKey = privateDecrypt({ key: this.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(sealed.wrappedKey, 'base64'));
    const decipher = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(sealed.iv, 'base64')).setAAD(Buffer.from(associated));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  }

  private async message(sessionId: string, seq: number, body: unknown): Promise<SessionReply> {
    const text = JSON.stringify(body);
    return this.opts.send({ session: sessionId, seq, body: text, signature: this.sign(sessionId, seq, text) });
  }

  /** Runs a session the app opened, to its end; returns the final session (COMPLETED or FAILED). */
  async run(session: { id: string; challenge: string }): Promise<CardSessionView> {
    let seq = 0;
    let reply = await this.message(session.id, seq, { challenge: session.challenge, nationalCertificate: this.opts.nationalCertificatePem, cityCertificate: this.opts.cityCertificatePem });
    while (reply.session && reply.commands.length > 0 && reply.userErrors.length === 0) {
      seq += 1;
      const responses: string[] = [];
      for (const command of reply.commands) {
        const apdu = command.sealed ? this.open(command.sealed, `${session.id}:${seq}`) : Buffer.from(command.apdu ?? '', 'hex');
        responses.push(Buffer.from(await this.opts.transport.transmit(apdu)).toString('hex').toUpperCase());
      }
      reply = await this.message(session.id, seq, { responses });
    }
    if (!reply.session) throw new Error(reply.userErrors.map((e) => e.message).join('; ') || 'the session is gone');
    return reply.session;
  }
}
