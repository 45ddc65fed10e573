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
import { Worker } from 'node:worker_threads';
import type { ApduCard } from './t0-card.js';

export const VPCD_DEFAULT_PORT = 35963;

/**
 * An ATR offering T=1 (`3B 80 01 81`: T0 = 80, TD1 = 01, TCK): what a contactless card looks like
 * through a PC/SC reader. A T=0 contact card would send `3B 00`.
 */
export const T1_ATR = Uint8Array.of(0x3b, 0x80, 0x01, 0x81);
export const T0_ATR = Uint8Array.of(0x3b, 0x00);

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

/** What the socket's thread tells the card's: in the order vpcd sent it. */
type FromSocket =
  | { kind: 'connected' }
  | { kind: 'refused'; message: string }
  | { kind: 'apdu'; apdu: Uint8Array }
  | { kind: 'power-cycle' }
  | { kind: 'closed' };

/**
 * The socket's end, on a thread of its own. vpcd asks for the ATR to learn whether the card is
 * still there (pcscd polls), and pcscd holds its reader's lock meanwhile; a program that has the
 * card in the same process as its PC/SC calls (a test, a simulator) can be inside a PC/SC call
 * that waits for that lock (they block their thread). If the card's answers needed that thread, each
 * would wait for the other for ever. So this thread answers vpcd's controls itself and passes on
 * only the APDUs, which come from the program's own (asynchronous) transmits.
 * Plain JavaScript evaluated in the worker: it runs the same from the SDK's sources and its build.
 */
const SOCKET_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { host, port, atr } = workerData;
const CONTROL = { POWER_OFF: 0x00, POWER_ON: 0x01, RESET: 0x02, ATR: 0x04 };
const socket = net.connect({ host, port });
socket.setNoDelay(true);
let connected = false;
const send = (bytes) => {
  if (socket.destroyed) return;
  const header = Buffer.alloc(2);
  header.writeUInt16BE(bytes.length);
  socket.write(Buffer.concat([header, Buffer.from(bytes)]));
};
socket.on('error', (err) => {
  // A card removed mid-exchange is the reader's problem, not a crash of the card's process.
  if (!connected) parentPort.postMessage({ kind: 'refused', message: err.message });
});
socket.on('connect', () => {
  connected = true;
  parentPort.postMessage({ kind: 'connected' });
});
socket.on('close', () => {
  parentPort.postMessage({ kind: 'closed' });
  parentPort.close();
});
let buffered = Buffer.alloc(0);
socket.on('data', (chunk) => {
  buffered = Buffer.concat([buffered, chunk]);
  while (buffered.length >= 2) {
    const length = buffered.readUInt16BE(0);
    if (buffered.length < 2 + length) break;
    const message = Uint8Array.from(buffered.subarray(2, 2 + length));
    buffered = buffered.subarray(2 + length);
    if (message.length === 1) {
      if (message[0] === CONTROL.ATR) send(atr);
      else if (message[0] === CONTROL.POWER_OFF || message[0] === CONTROL.RESET) parentPort.postMessage({ kind: 'power-cycle' });
    } else parentPort.postMessage({ kind: 'apdu', apdu: message });
  }
});
parentPort.on('message', (message) => {
  if (message.kind === 'answer') send(message.response);
  else if (message.kind === 'remove') socket.end();
});
`;

/** A card held in vpcd's reader; {@link VpcdCard.remove} takes it out. */
export class VpcdCard {
  /** APDUs are answered one after another, in order, even when the card answers asynchronously. */
  private queue: Promise<void> = Promise.resolve();
  private readonly closed: Promise<void>;

  private constructor(
    private readonly socketThread: Worker,
    private readonly options: VpcdCardOptions,
  ) {
    this.closed = new Promise((resolve) => socketThread.once('exit', () => resolve()));
    socketThread.on('message', (message: FromSocket) => {
      if (message.kind === 'apdu') this.queue = this.queue.then(() => this.answer(message.apdu)).catch(() => undefined);
      // After the APDUs before it: the card forgets its RAM between them and the next.
      else if (message.kind === 'power-cycle') this.queue = this.queue.then(() => this.options.onPowerCycle?.()).catch(() => undefined);
    });
  }

  /** Puts the card into the reader: connects to vpcd; resolves once the reader has it. */
  static insert(options: VpcdCardOptions): Promise<VpcdCard> {
    const port = options.port ?? VPCD_DEFAULT_PORT;
    const host = options.host ?? '127.0.0.1';
    const socketThread = new Worker(SOCKET_THREAD, { eval: true, workerData: { host, port, atr: options.atr ?? T1_ATR } });
    return new Promise((resolve, reject) => {
      const first = (message: FromSocket) => {
        socketThread.off('message', first);
        if (message.kind === 'connected') return resolve(new VpcdCard(socketThread, options));
        void socketThread.terminate();
        reject(new Error(`no virtual PC/SC reader (vpcd) listens on ${host}:${port}: is pcscd running with vsmartcard-vpcd installed? (${message.kind === 'refused' ? message.message : message.kind})`));
      };
      socketThread.on('message', first);
      socketThread.once('error', reject);
    });
  }

  /** Takes the card out of the reader. */
  async remove(): Promise<void> {
    this.socketThread.postMessage({ kind: 'remove' });
    await this.closed;
  }

  private async answer(apdu: Uint8Array) {
    let response: Uint8Array;
    try {
      response = await this.options.card.transmit(apdu);
    } catch {
      response = Uint8Array.of(0x6f, 0x00); // no precise diagnosis, as a card whose firmware faulted
    }
    this.options.onExchange?.(apdu, response);
    this.socketThread.postMessage({ kind: 'answer', response });
  }
}
