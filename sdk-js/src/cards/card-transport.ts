/**
 * How a reader talks to a card: one APDU out, one response back. The reader agent and the reader
 * simulator speak to a `CardTransport`; a virtual card plugs in through {@link VirtualCardTransport},
 * a PC/SC reader (physical card) can plug in later behind the same interface.
 */
import type { VirtualCpuCard } from './virtual-cpu-card.js';

/** A channel to one card: sends a command APDU, resolves with the response APDU (data || SW1 SW2). */
export interface CardTransport {
  transmit(apdu: Uint8Array): Promise<Uint8Array>;
}

/** A response APDU split into its data and its status word. */
export interface CardResponse {
  data: Uint8Array;
  /** SW1 SW2 as one number, e.g. `0x9000`. */
  sw: number;
}

/** Splits a response APDU; throws RangeError if it is shorter than a status word. */
export function splitResponse(response: Uint8Array): CardResponse {
  if (response.length < 2) throw new RangeError('a response APDU ends with SW1 SW2');
  const n = response.length;
  return { data: response.slice(0, n - 2), sw: (response[n - 2]! << 8) | response[n - 1]! };
}

/** Options of a {@link VirtualCardTransport}. */
export interface VirtualCardTransportOptions {
  /** Called after each exchange, e.g. to print an APDU trace in the demo. */
  onExchange?: (apdu: Uint8Array, response: Uint8Array) => void;
}

/** A transport to a virtual CPU card held in memory. */
export class VirtualCardTransport implements CardTransport {
  constructor(
    readonly card: VirtualCpuCard,
    private readonly options: VirtualCardTransportOptions = {},
  ) {}

  async transmit(apdu: Uint8Array): Promise<Uint8Array> {
    // Copies both ways, as a wire would: neither side keeps a view into the other's buffer.
    const response = this.card.transmit(Uint8Array.from(apdu));
    this.options.onExchange?.(Uint8Array.from(apdu), Uint8Array.from(response));
    return Uint8Array.from(response);
  }
}
