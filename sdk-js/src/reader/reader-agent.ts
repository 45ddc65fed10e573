import { constants, createDecipheriv, createPrivateKey, type KeyObject, privateDecrypt, sign, verify, X509Certificate } from 'node:crypto';
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
  /** The ways to select the card's application, in the order the host's card profile gives (see `selectApplication`). */
  select?: SelectionStep[] | null;
}

/** One way to select a CPU card's e-purse application, as the host's card profile lists them. */
export type SelectionStep = { kind: 'AID'; aid: string } | { kind: 'PSE'; name: string } | { kind: 'PATH'; path: string[] };

/** Status words after which a SELECT has selected (9000, or a warning the host judges by its profile). */
const selected = (sw: string) => sw === '9000' || /^6[23]/.test(sw);
const swOf = (answer: string) => answer.slice(-4);

/** The application identifiers (tag 4F) of one PSE directory record (70 → 61 → 4F), in order. */
function directoryAids(record: Buffer): string[] {
  const aids: string[] = [];
  const walk = (bytes: Buffer) => {
    let i = 0;
    while (i + 2 <= bytes.length) {
      const tag = bytes[i]!;
      const length = bytes[i + 1]!;
      const value = bytes.subarray(i + 2, i + 2 + length);
      if (tag === 0x70 || tag === 0x61) walk(value);
      else if (tag === 0x4f) aids.push(value.toString('hex').toUpperCase());
      i += 2 + length;
    }
  };
  walk(record);
  return aids;
}

/** The SFI of the PSE's directory (tag 88 in its FCI), 1 when it does not say. */
function directorySfi(fci: Buffer): number {
  const at = fci.indexOf(Buffer.from([0x88, 0x01]));
  return at >= 0 && at + 2 < fci.length ? fci[at + 2]! : 1;
}

/**
 * Selects the e-purse application the first way the card accepts, in the host's order: by AID;
 * through the PSE (its directory's AIDs, in order); or by path (each file id in turn). Answers that
 * SELECT's answer (FCI and status word, hex), or the last refusal when no way works: the host reads
 * which application answered from the FCI and refuses a card it cannot use.
 */
export async function selectApplication(transmit: (apdu: Uint8Array) => Promise<string>, steps: SelectionStep[]): Promise<string> {
  const select = (p1: number, name: Buffer) => transmit(Buffer.concat([Buffer.from([0x00, 0xa4, p1, 0x00, name.length]), name]));
  let last = '6A82';
  for (const step of steps) {
    if (step.kind === 'AID') {
      last = await select(0x04, Buffer.from(step.aid, 'hex'));
      if (selected(swOf(last))) return last;
    } else if (step.kind === 'PATH') {
      for (const file of step.path) {
        last = await select(0x00, Buffer.from(file, 'hex'));
        if (!selected(swOf(last))) break;
      }
      if (selected(swOf(last))) return last;
    } else {
      const pse = await select(0x04, Buffer.from(step.name, 'ascii'));
      if (!selected(swOf(pse))) {
        last = pse;
        continue;
      }
      const sfi = directorySfi(Buffer.from(pse.slice(0, -4), 'hex'));
      const aids: string[] = [];
      for (let record = 1; record <= 16; record += 1) {
        const answer = await transmit(Buffer.from([0x00, 0xb2, record, (sfi << 3) | 0x04, 0x00]));
        if (swOf(answer) !== '9000') break;
        aids.push(...directoryAids(Buffer.from(answer.slice(0, -4), 'hex')));
      }
      for (const aid of aids) {
        last = await select(0x04, Buffer.from(aid, 'hex'));
        if (selected(swOf(last))) return last;
      }
    }
  }
  return last;
}

/** One step of an M1 script and what the reader answers for it. */
export type M1ScriptOp =
  | { op: 'auth'; block: number; keyType: 'A' | 'B'; key: string }
  | { op: 'read'; block: number }
  | { op: 'write'; block: number; data: string }
  | { op: 'increment' | 'decrement'; block: number; value: number }
  | { op: 'transfer'; block: number }
  /** The script is for this card only: any other UID ends it before anything is written. */
  | { op: 'uid'; uid: string }
  /** The value block must hold this value now (the value the host bound the write to), or the script ends. */
  | { op: 'compare'; block: number; value: number };
export interface M1ScriptResult {
  ok: boolean;
  data?: string;
  error?: string;
}

/**
 * What the reader needs of an M1 card: a VirtualM1Card has it (answering at once), the PC/SC driver
 * `PcscM1Card` too (answering through the reader, asynchronously).
 */
export interface M1Card {
  readonly uid: string;
  authenticate(block: number, keyType: 'A' | 'B', key: Uint8Array): void | Promise<void>;
  read(block: number): Uint8Array | Promise<Uint8Array>;
  write(block: number, data: Uint8Array): void | Promise<void>;
  increment(block: number, value: number): void | Promise<void>;
  decrement(block: number, value: number): void | Promise<void>;
  transfer(block: number): void | Promise<void>;
  /** HALT: ends the authentication, so no sector stays open for whatever comes next. */
  halt(): void | Promise<void>;
}

/** A script step the card itself would not refuse, refused by the reader: the card is not the one, or not as the host saw it. */
class M1BindingError extends Error {
  constructor(readonly code: 'UID_MISMATCH' | 'VALUE_MISMATCH', message: string) {
    super(message);
  }
}

/** The value of a 16-byte value block (value, NOT value, value, little-endian), or null when it is not one. */
function valueOfBlock(block: Uint8Array): number | null {
  if (block.length !== 16) return null;
  const b = Buffer.from(block);
  const value = b.readInt32LE(0);
  return b.readInt32LE(4) === ~value && b.readInt32LE(8) === value ? value : null;
}

/**
 * Runs a script step by step; the first failure ends it (what is done stays done, as on a card).
 * A host write script starts with `uid` and `compare`: replayed onto another card, or onto this
 * card after its value moved, it ends there, before any write.
 */
export async function runM1Script(card: M1Card, script: M1ScriptOp[]): Promise<M1ScriptResult[]> {
  const results: M1ScriptResult[] = [];
  for (const step of script) {
    try {
      if (step.op === 'uid') {
        if (card.uid.toUpperCase() !== step.uid.toUpperCase()) throw new M1BindingError('UID_MISMATCH', `the script is for card ${step.uid}, not ${card.uid}`);
      } else if (step.op === 'compare') {
        const value = valueOfBlock(await card.read(step.block));
        if (value !== step.value) throw new M1BindingError('VALUE_MISMATCH', `block ${step.block} holds ${value ?? 'no value'}, the script was written for ${step.value}`);
      } else if (step.op === 'auth') await card.authenticate(step.block, step.keyType, Buffer.from(step.key, 'hex'));
      else if (step.op === 'read') {
        results.push({ ok: true, data: Buffer.from(await card.read(step.block)).toString('hex').toUpperCase() });
        continue;
      } else if (step.op === 'write') await card.write(step.block, Buffer.from(step.data, 'hex'));
      else if (step.op === 'transfer') await card.transfer(step.block);
      else await card[step.op](step.block, step.value);
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

/** What the host signed for the reader: the only commands the reader runs. */
export interface HostMessage {
  payload: string;
  signature: string;
  certificateChain: string[];
}

export interface SessionReply {
  session: CardSessionView | null;
  /** The commands as GraphQL fields, for display: the reader runs those in `hostMessage` only. */
  commands: ReaderCommand[];
  hostMessage?: HostMessage | null;
  userErrors: { code: string; message: string }[];
}

/** Why the reader refused a host message (and ran none of it). */
export type HostMessageRefusal = 'UNSIGNED' | 'UNTRUSTED_CERTIFICATE' | 'BAD_SIGNATURE' | 'MALFORMED' | 'WRONG_SESSION' | 'WRONG_READER' | 'WRONG_SEQUENCE' | 'EXPIRED';

/**
 * The reader refused what came back as the host's message: nothing of it reached the card. The
 * reader told the host so in its next message (when the relay carried it, the host audits
 * HOST_MESSAGE_REFUSED and ends the session).
 */
export class HostMessageRefusedError extends Error {
  constructor(
    readonly code: HostMessageRefusal,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'HostMessageRefusedError';
  }
}

interface SignedHostMessage {
  protocol: string;
  session: string;
  reader: string;
  seq: number;
  state: string;
  commands: ReaderCommand[];
  result: Record<string, unknown> | null;
  /** The session's expiry (ISO 8601): nothing of the message is run after it. */
  expiresAt?: string;
}

/** Sends one signed message to the API (through the app that holds the OAuth token). */
export type SendMessage = (message: { session: string; seq: number; body: string; signature: string }) => Promise<SessionReply>;

export interface ReaderAgentOptions {
  /**
   * The city certificate's key (PEM or KeyObject): it signs every message after the hello. A reader
   * registered before the key split has one key for everything: give it here alone.
   */
  deviceKey: string | KeyObject;
  /** The national certificate's key: it signs the hello (access). Default: `deviceKey`. */
  nationalKey?: string | KeyObject;
  /** The encryption certificate's key: it opens what the host sealed to the reader. Default: `deviceKey`. */
  encryptionKey?: string | KeyObject;
  nationalCertificatePem: string;
  cityCertificatePem: string;
  /** The encryption certificate (keyUsage keyEncipherment), presented in the hello with the other two. */
  encryptionCertificatePem?: string;
  /**
   * The CA certificates the reader pins (PEM): the root, or its city working CA. A host message is
   * run only when signed by a host certificate its city working CA issued (the CA that issued this
   * reader's city certificate), chaining to one of these.
   */
  trustedCertificatesPem: string[];
  /** A CPU card's transport (APDUs). */
  transport?: CardTransport;
  /** An M1 card, for sessions that drive one by scripts. */
  m1?: M1Card;
  send: SendMessage;
  /**
   * The reader's clock (ms since the epoch; default `Date.now`). A host message carrying commands is
   * run only up to the session expiry it is signed with: a script a relay held back goes stale. The
   * host settles an unanswered M1 write from the card's value only a minute after that expiry, so a
   * reader clock up to a minute behind the host's is safe; keep it synchronised (NTP).
   */
  clock?: () => number;
}

/** The GraphQL mutation a `send` built on the SDK client uses. */
export const CARD_SESSION_MESSAGE = `mutation CardSessionMessage($input: CardSessionMessageInput!) {
  cardSessionMessage(input: $input) {
    session { id state challenge nextSeq result refusal }
    commands { apdu sealed { wrappedKey iv ciphertext tag } readUid sealedScript { wrappedKey iv ciphertext tag } }
    hostMessage { payload signature certificateChain }
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
  private readonly nationalKey: KeyObject;
  private readonly encryptionKey: KeyObject;
  private readonly cityCertificate: X509Certificate;
  private readonly serial: string;
  private readonly anchors: X509Certificate[];
  /** Host chains already checked (by their PEM), with the host key they certify: a session sends the same one each time. */
  private readonly hostKeys = new Map<string, { key: KeyObject; notAfter: number }>();

  constructor(private readonly opts: ReaderAgentOptions) {
    const keyOf = (k: string | KeyObject) => (typeof k === 'string' ? createPrivateKey(k) : k);
    this.key = keyOf(opts.deviceKey);
    this.nationalKey = opts.nationalKey ? keyOf(opts.nationalKey) : this.key;
    this.encryptionKey = opts.encryptionKey ? keyOf(opts.encryptionKey) : this.key;
    this.cityCertificate = new X509Certificate(opts.cityCertificatePem);
    // The host binds its messages to the reader's serial, the CN of its certificates.
    this.serial = /^CN=(.*)$/m.exec(this.cityCertificate.subject)?.[1] ?? '';
    if (!opts.trustedCertificatesPem?.length) throw new Error('a reader pins the CA certificates host messages must chain to (trustedCertificatesPem)');
    this.anchors = opts.trustedCertificatesPem.map((pem) => new X509Certificate(pem));
  }

  /**
   * The host key of a chain [host, city CA]: the city CA is the one that issued this reader's city
   * certificate and is pinned or issued by a pinned CA; the host certificate is a server
   * certificate it issued; both are valid now. Refuses otherwise.
   */
  private hostKeyOf(chain: string[], now: number): KeyObject {
    const key = chain.join('\n');
    const known = this.hostKeys.get(key);
    if (known && now <= known.notAfter) return known.key;
    const refuse = (why: string) => new HostMessageRefusedError('UNTRUSTED_CERTIFICATE', why);
    let host: X509Certificate, ca: X509Certificate;
    try {
      [host, ca] = [new X509Certificate(chain[0]!), new X509Certificate(chain[1]!)];
    } catch {
      throw refuse('the host certificate chain is unreadable');
    }
    const valid = (c: X509Certificate) => now >= Date.parse(c.validFrom) && now <= Date.parse(c.validTo);
    const issued = (child: X509Certificate, parent: X509Certificate) => child.checkIssued(parent) && child.verify(parent.publicKey);
    if (!ca.ca || !issued(this.cityCertificate, ca)) throw refuse('the host certificate is not from this reader’s city CA');
    if (!this.anchors.some((anchor) => anchor.fingerprint256 === ca.fingerprint256 || (anchor.ca && issued(ca, anchor)))) throw refuse('the city CA does not chain to a pinned CA');
    if (host.ca || !issued(host, ca)) throw refuse('the host certificate is not issued by the city CA');
    if (!(host.keyUsage ?? []).includes('1.3.6.1.5.5.7.3.1')) throw refuse('the host certificate is not a server certificate');
    if (!valid(host) || !valid(ca)) throw refuse('the host certificate or its CA is not valid now');
    this.hostKeys.set(key, { key: host.publicKey, notAfter: Math.min(Date.parse(host.validTo), Date.parse(ca.validTo)) });
    return host.publicKey;
  }

  /** The host's signed message answering message `seq` of this session, or a refusal: nothing unverified reaches the card. */
  verifyHostMessage(reply: SessionReply, sessionId: string, seq: number): SignedHostMessage {
    const signed = reply.hostMessage;
    if (!signed?.payload || !signed.signature || !Array.isArray(signed.certificateChain) || signed.certificateChain.length < 2) throw new HostMessageRefusedError('UNSIGNED', 'the host message is not signed');
    const now = this.opts.clock?.() ?? Date.now();
    const hostKey = this.hostKeyOf(signed.certificateChain, now);
    let ok = false;
    try {
      ok = verify('sha256', Buffer.from(signed.payload, 'utf8'), hostKey, Buffer.from(signed.signature, 'base64'));
    } catch {
      ok = false;
    }
    if (!ok) throw new HostMessageRefusedError('BAD_SIGNATURE', 'the host signature does not verify');
    let message: SignedHostMessage;
    try {
      message = JSON.parse(signed.payload) as SignedHostMessage;
    } catch {
      throw new HostMessageRefusedError('MALFORMED', 'the host payload is not JSON');
    }
    if (message.protocol !== 'onecard-host-v1' || !Array.isArray(message.commands)) throw new HostMessageRefusedError('MALFORMED', 'not a onecard-host-v1 message');
    if (message.session !== sessionId) throw new HostMessageRefusedError('WRONG_SESSION', 'the host message is for another session');
    if (message.reader !== this.serial) throw new HostMessageRefusedError('WRONG_READER', 'the host message is for another reader');
    if (message.seq !== seq) throw new HostMessageRefusedError('WRONG_SEQUENCE', `the host message answers message ${message.seq}, not ${seq}`);
    // Commands run only within the session they belong to: a script delivered late may already be
    // taken as not run by the host (an M1 write settled from a value read elsewhere).
    if (message.commands.length > 0) {
      const expiresAt = typeof message.expiresAt === 'string' ? Date.parse(message.expiresAt) : Number.NaN;
      if (Number.isNaN(expiresAt)) throw new HostMessageRefusedError('MALFORMED', 'the host message carries commands but no session expiry');
      if (now > expiresAt) throw new HostMessageRefusedError('EXPIRED', `the session expired at ${message.expiresAt}: its commands are not run`);
    }
    return message;
  }

  /** The signature the host checks: RSA-SHA256 over domain, session, sequence and body; the hello (seq 0) by the national key, the rest by the city key. */
  sign(sessionId: string, seq: number, body: string): string {
    return sign('sha256', Buffer.from(`onecard-card-session-v1\n${sessionId}\n${seq}\n${body}`, 'utf8'), seq === 0 ? this.nationalKey : this.key).toString('base64');
  }

  private open(sealed: NonNullable<ReaderCommand['sealed']>, associated: string): Uint8Array {
    const aesKey = privateDecrypt({ key: this.encryptionKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(sealed.wrappedKey, 'base64'));
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
      try {
        return JSON.stringify(await runM1Script(this.opts.m1, script));
      } finally {
        // No sector a script authenticated stays open for whatever comes next.
        await this.opts.m1.halt();
      }
    }
    if (!this.opts.transport) throw new Error('this session needs a CPU card transport');
    if (command.select?.length) {
      const transport = this.opts.transport;
      return selectApplication(async (apdu) => Buffer.from(await transport.transmit(apdu)).toString('hex').toUpperCase(), command.select);
    }
    const apdu = command.sealed ? this.open(command.sealed, associated) : Buffer.from(command.apdu ?? '', 'hex');
    return Buffer.from(await this.opts.transport.transmit(apdu)).toString('hex').toUpperCase();
  }

  /**
   * Runs a session the app opened, to its end; returns the final session (COMPLETED or FAILED).
   * Every host message is verified before any of it reaches the card; a refused one ends the run
   * with a HostMessageRefusedError, after telling the host.
   */
  async run(session: { id: string; challenge: string }): Promise<CardSessionView> {
    let seq = 0;
    let reply = await this.message(session.id, seq, {
      challenge: session.challenge,
      nationalCertificate: this.opts.nationalCertificatePem,
      cityCertificate: this.opts.cityCertificatePem,
      ...(this.opts.encryptionCertificatePem ? { encryptionCertificate: this.opts.encryptionCertificatePem } : {}),
    });
    for (;;) {
      if (!reply.session) throw new Error(reply.userErrors.map((e) => e.message).join('; ') || 'the session is gone');
      // A refusal carries no command: nothing to verify, nothing to run.
      if (reply.userErrors.length > 0) return reply.session;
      let signed: SignedHostMessage;
      try {
        signed = this.verifyHostMessage(reply, session.id, seq);
      } catch (err) {
        if (err instanceof HostMessageRefusedError) await this.message(session.id, seq + 1, { refusedHostMessage: err.message }).catch(() => undefined);
        throw err;
      }
      // The outcome the host signed, not what the relay says.
      if (signed.commands.length === 0) return { ...reply.session, state: signed.state, result: signed.result };
      seq += 1;
      const responses: string[] = [];
      for (const command of signed.commands) responses.push(await this.execute(command, `${session.id}:${seq}`));
      reply = await this.message(session.id, seq, { responses });
    }
  }
}
