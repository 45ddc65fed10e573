import { constants, createDecipheriv, createPrivateKey, type KeyObject, privateDecrypt, sign } from 'node:crypto';
import type { CardTransport } from '../cards/card-transport.js';

type Sealed = { wrappedKey: string; iv: string; ciphertext: string; tag: string };

/**
 * A command from the host: a plain APDU, one sealed to this reader's device key, or, for an M1
 * card, a request for its UID or a sealed script (the sector keys inside never leave the reader).
 */
export interface ReaderCommand {
  apdu?: string | null;
  sealed?: Sealed | null;
  readUid?: boolean | null;
  sealedScript?: Sealed | null;
}

/** One step of an M1 script and what the reader answers for it. */
export type M1ScriptOp =
  | { op: 'auth'; block: number; keyType: 'A' | 'B'; key: string }
  | { op: 'read'; block: number }
  | { op: 'write'; block: number; data: string }
  | { op: 'increment' | 'decrement'; block: number; value: number }
  | { op: 'transfer'; block: number };
export interface M1ScriptResult {
  ok: boolean;
  data?: string;
  error?: string;
}

/** What the reader needs of an M1 card (a VirtualM1Card has it; so would a PC/SC driver). */
export interface M1Card {
  readonly uid: string;
  authenticate(block: number, keyType: 'A' | 'B', key: Uint8Array): void;
  read(block: number): Uint8Array;
  write(block: number, data: Uint8Array): void;
  increment(block: number, value: number): void;
  decrement(block: number, value: number): void;
  transfer(block: number): void;
}

/** Runs a script step by step; the first failure ends it (what is done stays done, as on a card). */
export function runM1Script(card: M1Card, script: M1ScriptOp[]): M1ScriptResult[] {
  const results: M1ScriptResult[] = [];
  for (const step of script) {
    try {
      if (step.op === 'auth') card.authenticate(step.block, step.keyType, Buffer.from(step.key, 'hex'));
      else if (step.op === 'read') {
        results.push({ ok: true, data: Buffer.from(card.read(step.block)).toString('hex').toUpperCase() });
        continue;
      } else if (step.op === 'write') card.write(step.block, Buffer.from(step.data, 'hex'));
      else if (step.op === 'transfer') card.transfer(step.block);
      else card[step.op](step.block, step.value);
      results.push({ ok: true });
    } catch (err) {
      results.push({ ok: false, error: (err as { code?: string }).code ?? (err instanceof Error ? err.message : String(err)) });
      break;
    }
  }
  return results;
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
  /** A CPU card's transport (APDUs). */
  transport?: CardTransport;
  /** An M1 card, for sessions that drive one by scripts. */
  m1?: M1Card;
  send: SendMessage;
}

/** The GraphQL mutation a `send` built on the SDK client uses. */
export const CARD_SESSION_MESSAGE = `mutation CardSessionMessage($input: CardSessionMessageInput!) {
  cardSessionMessage(input: $input) {
    session { id state challenge nextSeq result refusal }
    commands { apdu sealed { wrappedKey iv ciphertext tag } readUid sealedScript { wrappedKey iv ciphertext tag } }
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

  private async execute(command: ReaderCommand, associated: string): Promise<string> {
    if (command.readUid || command.sealedScript) {
      if (!this.opts.m1) throw new Error('this session needs an M1 card');
      if (command.readUid) return this.opts.m1.uid.toUpperCase();
      const script = JSON.parse(Buffer.from(this.open(command.sealedScript!, associated)).toString('utf8')) as M1ScriptOp[];
      return JSON.stringify(runM1Script(this.opts.m1, script));
    }
    if (!this.opts.transport) throw new Error('this session needs a CPU card transport');
    const apdu = command.sealed ? this.open(command.sealed, associated) : Buffer.from(command.apdu ?? '', 'hex');
    return Buffer.from(await this.opts.transport.transmit(apdu)).toString('hex').toUpperCase();
  }

  /** Runs a session the app opened, to its end; returns the final session (COMPLETED or FAILED). */
  async run(session: { id: string; challenge: string }): Promise<CardSessionView> {
    let seq = 0;
    let reply = await this.message(session.id, seq, { challenge: session.challenge, nationalCertificate: this.opts.nationalCertificatePem, cityCertificate: this.opts.cityCertificatePem });
    while (reply.session && reply.commands.length > 0 && reply.userErrors.length === 0) {
      seq += 1;
      const responses: string[] = [];
      for (const command of reply.commands) responses.push(await this.execute(command, `${session.id}:${seq}`));
      reply = await this.message(session.id, seq, { responses });
    }
    if (!reply.session) throw new Error(reply.userErrors.map((e) => e.message).join('; ') || 'the session is gone');
    return reply.session;
  }
}
