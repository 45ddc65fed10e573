/**
 * Cards on PC/SC readers (a desk reader on a counter, a contactless pad): list the readers, wait
 * for a card, exchange APDUs, notice its removal. Speaks to the platform's PC/SC service (pcscd
 * from pcsc-lite on Linux, the built-in one on Windows and macOS) through the `smartcard` binding
 * (N-API, so one build serves every Node version), an optional dependency loaded only here:
 * code that never opens a PC/SC reader never needs it.
 *
 * Every command goes through `transmitWhole` (status-words.ts): GET RESPONSE for `61xx`, the Le
 * retry for `6Cxx`, a warning's data fetched, so host code sees one answer whatever the protocol.
 */
import type { CardTransport } from '../cards/card-transport.js';
import { transmitWhole } from './status-words.js';

/** The parts of the `smartcard` binding this module uses (kept here, so the SDK's types never need it). */
interface PcscCardHandle {
  readonly protocol: number;
  transmit(command: Buffer, options?: { maxRecvLength?: number; autoGetResponse?: boolean }): Promise<Buffer>;
  disconnect(disposition?: number): void;
  reconnect(shareMode?: number, protocol?: number, initialization?: number): Promise<number>;
}
interface PcscReaderHandle {
  readonly name: string;
  readonly state: number;
  readonly atr: Buffer | null;
  connect(shareMode?: number, protocol?: number): Promise<PcscCardHandle>;
}
interface PcscReaderState {
  name: string;
  state: number;
  atr: Buffer | null;
}
interface PcscContextHandle {
  listReaders(): PcscReaderHandle[];
  waitForChange(readers?: PcscReaderState[], timeout?: number): Promise<PcscReaderState[] | null>;
  cancel(): void;
  close(): void;
}
interface PcscBinding {
  Context: new () => PcscContextHandle;
  SCARD_SHARE_SHARED: number;
  SCARD_SHARE_EXCLUSIVE: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_LEAVE_CARD: number;
  SCARD_RESET_CARD: number;
  SCARD_STATE_PRESENT: number;
  SCARD_STATE_CHANGED: number;
}

/** PC/SC cannot be used here: the binding is not installed, or no PC/SC service runs. The message says which. */
export class PcscUnavailableError extends Error {
  override readonly name = 'PcscUnavailableError';
}

/** No card came within the time asked, or the reader named is not there. */
export class PcscTimeoutError extends Error {
  override readonly name = 'PcscTimeoutError';
}

async function loadBinding(): Promise<PcscBinding> {
  try {
    const mod = (await import('smartcard')) as unknown as PcscBinding & { default?: PcscBinding };
    return mod.Context ? mod : mod.default!;
  } catch (err) {
    throw new PcscUnavailableError(
      `the PC/SC binding (npm package "smartcard", an optional dependency of @onecard/sdk) is not installed or did not build: on Debian/Ubuntu install libpcsclite-dev and a C++ compiler, then reinstall (${(err as Error).message})`,
    );
  }
}

export interface WaitForCardOptions {
  /** The reader's name as PC/SC lists it, or a part of it; default: any reader. */
  reader?: string;
  /** How long to wait for a card; default: for ever. */
  timeoutMs?: number;
}

/** The PC/SC readers of this machine. */
export class PcscReaders {
  private constructor(
    private readonly pcsc: PcscBinding,
    private readonly context: PcscContextHandle,
  ) {}

  /** Connects to the PC/SC service. */
  static async open(): Promise<PcscReaders> {
    const pcsc = await loadBinding();
    let context: PcscContextHandle;
    try {
      context = new pcsc.Context();
    } catch (err) {
      throw new PcscUnavailableError(`no PC/SC service answers (on Linux: is pcscd running?): ${(err as Error).message}`);
    }
    return new PcscReaders(pcsc, context);
  }

  /** The readers' names, as PC/SC gives them. */
  list(): string[] {
    return this.context.listReaders().map((r) => r.name);
  }

  private matching(name: string | undefined): PcscReaderHandle[] {
    return this.context.listReaders().filter((r) => name === undefined || r.name === name || r.name.includes(name));
  }

  /** Waits until a card is in a reader (the one named, or any), connects to it and returns it. */
  async waitForCard(options: WaitForCardOptions = {}): Promise<PcscCard> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const { SCARD_STATE_PRESENT: PRESENT, SCARD_STATE_CHANGED: CHANGED } = this.pcsc;
    let known: PcscReaderState[] | undefined;
    for (;;) {
      const readers = this.matching(options.reader);
      const present = readers.find((r) => (r.state & PRESENT) !== 0);
      if (present) return this.connect(present);
      const left = deadline - Date.now();
      if (left <= 0) throw new PcscTimeoutError(readers.length === 0 ? `no PC/SC reader ${options.reader ? `named "${options.reader}" ` : ''}is attached` : 'no card was presented in time');
      // Wait for the readers' state to move on from what we last saw (or from "unaware" the first time).
      const watch = readers.length > 0 ? readers.map((r) => ({ name: r.name, state: (known?.find((k) => k.name === r.name)?.state ?? 0) & ~CHANGED, atr: null })) : undefined;
      const changes = await this.context.waitForChange(watch, Math.min(left, 1000));
      if (changes === null) throw new PcscTimeoutError('waiting for a card was cancelled');
      known = changes.length > 0 ? changes : known;
    }
  }

  private async connect(reader: PcscReaderHandle): Promise<PcscCard> {
    const handle = await reader.connect(this.pcsc.SCARD_SHARE_EXCLUSIVE, this.pcsc.SCARD_PROTOCOL_T0 | this.pcsc.SCARD_PROTOCOL_T1);
    return new PcscCard(this.pcsc, this.context, reader.name, Uint8Array.from(reader.atr ?? []), handle);
  }

  /** Stops a wait in progress, and releases the PC/SC context. */
  close(): void {
    try {
      this.context.cancel();
    } catch {
      // nothing was waiting
    }
    this.context.close();
  }
}

/** A card in a PC/SC reader, connected exclusively (no other program talks to it meanwhile). */
export class PcscCard implements CardTransport {
  /** `T=0` (contact cards, byte-oriented: GET RESPONSE matters) or `T=1` (block-oriented; contactless readers present T=1). */
  readonly protocol: 'T=0' | 'T=1';
  private connected = true;

  constructor(
    private readonly pcsc: PcscBinding,
    private readonly context: PcscContextHandle,
    readonly reader: string,
    readonly atr: Uint8Array,
    private readonly handle: PcscCardHandle,
  ) {
    this.protocol = handle.protocol === pcsc.SCARD_PROTOCOL_T0 ? 'T=0' : 'T=1';
  }

  /** One command, its whole answer (data || SW1 SW2). */
  transmit(apdu: Uint8Array): Promise<Uint8Array> {
    if (!this.connected) return Promise.reject(new Error('the card was disconnected'));
    // The binding's own GET RESPONSE is off: ours runs once for every command, whatever the binding does.
    return transmitWhole(async (bytes) => Uint8Array.from(await this.handle.transmit(Buffer.from(bytes), { autoGetResponse: false, maxRecvLength: 258 })), apdu);
  }

  /** Resolves once the card has left the reader. */
  async waitForRemoval(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const { SCARD_STATE_PRESENT: PRESENT, SCARD_STATE_CHANGED: CHANGED } = this.pcsc;
    let state = 0;
    for (;;) {
      const now = this.context.listReaders().find((r) => r.name === this.reader);
      if (!now || (now.state & PRESENT) === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new PcscTimeoutError('the card is still in the reader');
      const changes = await this.context.waitForChange([{ name: this.reader, state: state & ~CHANGED, atr: null }], Math.min(left, 1000));
      if (changes === null) throw new PcscTimeoutError('waiting for the card to leave was cancelled');
      state = changes[0]?.state ?? state;
    }
  }

  /**
   * Resets the card (contactless: the field off and on), keeping the connection: the card forgets
   * whatever it held in RAM: an M1 sector's authentication, a transaction begun.
   */
  async reset(): Promise<void> {
    if (!this.connected) throw new Error('the card was disconnected');
    await this.handle.reconnect(this.pcsc.SCARD_SHARE_EXCLUSIVE, this.pcsc.SCARD_PROTOCOL_T0 | this.pcsc.SCARD_PROTOCOL_T1, this.pcsc.SCARD_RESET_CARD);
  }

  /**
   * Releases the card: left powered, as it is, or with `reset`, reset first so the next program
   * finds it fresh (no file selected, no sector authenticated, no transaction begun).
   */
  disconnect(options: { reset?: boolean } = {}): void {
    if (!this.connected) return;
    this.connected = false;
    this.handle.disconnect(options.reset ? this.pcsc.SCARD_RESET_CARD : this.pcsc.SCARD_LEAVE_CARD);
  }
}
