/**
 * A virtual card in a virtual PC/SC reader: vsmartcard's `vpcd` is a pcscd reader driver that
 * listens on a TCP port (35963 by default, see /etc/reader.conf.d/vpcd) for a card to connect.
 * While the socket is open the reader has a card in it; closing it is taking the card out. So a
 * program using PC/SC (the SDK's `PcscReaders`, or any other) talks to the virtual card exactly as
 * to a card on a desk reader, through pcscd.
 *
 * The socket protocol (vsmartcard, vpcd/src/vpcd.h): every message is a 2-byte big-endian length
 * and that many bytes. A 1-byte message is a control — 00 power off, 01 power on, 02 reset,
 * 04 "send your ATR" —, anything longer is a command APDU. The card answers the ATR request and
 * each APDU with one message; power and reset get no answer.
 */
import net from 'node:net';
import type { ApduCard } from './t0-card.js';

export const VPCD_DEFAULT_PORT = 35963;

/**
 * An ATR offering T=1 (`3B 80 01 81`: T0 = 80, TD1 = 01, TCK): what a contactless card looks like
 * through a PC/SC reader. A T=0 contact card would send `3B 00`.
 */
export const T1_ATR = Uint8Array.of(0x3b, 0x80, 0x01, 0x81);
export const T0_ATR = Uint8Array.of(0x3b, 0x00);

const CONTROL = { POWER_OFF: 0x00, POWER_ON: 0x01, RESET: 0x02, ATR: 0x04 } as const;

export interface VpcdCardOptions {
  card: ApduCard;
  /** Default {@link T1_ATR}. */
  atr?: Uint8Array;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default {@link VPCD_DEFAULT_PORT}. */
  port?: number;
  /** Power off or reset: a real card loses what it held in RAM (a transaction begun, the file selected). */
  onPowerCycle?: () => void;
  /** Called after each APDU exchange (an APDU trace). */
  onExchange?: (apdu: Uint8Array, response: Uint8Array) => void;
}

/** A card held in vpcd's reader; {@link VpcdCard.remove} takes it out. */
export class VpcdCard {
  private buffered = Buffer.alloc(0);
  /** Messages are answered one after another, in order, even when the card answers asynchronously. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly socket: net.Socket,
    private readonly options: VpcdCardOptions,
  ) {
    socket.on('data', (chunk) => this.receive(chunk));
  }

  /** Puts the card into the reader: connects to vpcd; resolves once the reader has it. */
  static insert(options: VpcdCardOptions): Promise<VpcdCard> {
    const port = options.port ?? VPCD_DEFAULT_PORT;
    const host = options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      socket.once('error', (err) =>
        reject(Object.assign(new Error(`no virtual PC/SC reader (vpcd) listens on ${host}:${port}: is pcscd running with vsmartcard-vpcd installed? (${err.message})`), { cause: err })),
      );
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        // A card removed mid-exchange is the reader's problem, not a crash of the card's process.
        socket.on('error', () => undefined);
        resolve(new VpcdCard(socket, options));
      });
    });
  }

  /** Takes the card out of the reader. */
  remove(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private receive(chunk: Buffer) {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 2) {
      const length = this.buffered.readUInt16BE(0);
      if (this.buffered.length < 2 + length) break;
      const message = Uint8Array.from(this.buffered.subarray(2, 2 + length));
      this.buffered = this.buffered.subarray(2 + length);
      this.queue = this.queue.then(() => this.answer(message)).catch(() => undefined);
    }
  }

  private async answer(message: Uint8Array) {
    if (message.length === 1) {
      if (message[0] === CONTROL.ATR) this.send(this.options.atr ?? T1_ATR);
      else if (message[0] === CONTROL.POWER_OFF || message[0] === CONTROL.RESET) this.options.onPowerCycle?.();
      return;
    }
    let response: Uint8Array;
    try {
      response = await this.options.card.transmit(message);
    } catch {
      response = Uint8Array.of(0x6f, 0x00); // no precise diagnosis, as a card whose firmware faulted
    }
    this.options.onExchange?.(message, response);
    this.send(response);
  }

  private send(bytes: Uint8Array) {
    if (this.socket.destroyed) return;
    const header = Buffer.alloc(2);
    header.writeUInt16BE(bytes.length);
    this.socket.write(Buffer.concat([header, bytes]));
  }
}
