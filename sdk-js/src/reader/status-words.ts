/**
 * What a reader does with the status words that are about the exchange rather than the command,
 * once, for every command (ISO/IEC 7816-3 §10.3.3 and 7816-4 §5.1.3, EMV Book 1 §9.3.1): a contact
 * card speaking T=0 cannot send a command's data and its answer in one exchange, so it says `61xx`
 * (xx bytes are waiting: GET RESPONSE fetches them), `6Cxx` (wrong Le: send the command again with
 * Le = xx), or a warning `62xx`/`63xx` with the data still held back. Host code then sees one
 * answer, data || SW1 SW2, whatever the reader and protocol, as a contactless (T=1/T=CL) card gives it.
 */
import type { CardTransport } from '../cards/card-transport.js';

/** One exchange as the reader's driver does it: bytes out, bytes back, no status word handled. */
export type RawTransmit = (apdu: Uint8Array) => Promise<Uint8Array>;

/** A card that keeps answering `61xx` is broken (or hostile): a response APDU is at most 65,536 bytes. */
const MAX_GET_RESPONSES = 256;

/** The card's answer could not be gathered into one response. */
export class CardExchangeError extends Error {
  override readonly name = 'CardExchangeError';
}

const statusOf = (response: Uint8Array): { sw1: number; sw2: number } => {
  if (response.length < 2) throw new CardExchangeError(`a response APDU ends with SW1 SW2; the reader returned ${response.length} byte(s)`);
  return { sw1: response[response.length - 2]!, sw2: response[response.length - 1]! };
};

/** The command with its Le set to `le` (short APDUs: 7816-4 §5.1, cases 1–4). */
export function withLe(apdu: Uint8Array, le: number): Uint8Array {
  if (apdu.length < 4) throw new CardExchangeError('a command APDU has at least CLA INS P1 P2');
  const header = apdu.subarray(0, 4);
  if (apdu.length === 4) return Uint8Array.of(...header, le); // case 1 → case 2
  if (apdu.length === 5) return Uint8Array.of(...header, le); // case 2: replace Le
  const lc = apdu[4]!;
  const body = apdu.subarray(0, 5 + lc);
  return Uint8Array.of(...body, le); // case 3 → case 4, or case 4: replace Le
}

/** Case 4: the command carries data (Lc) and expects data back (Le). */
const isCase4 = (apdu: Uint8Array) => apdu.length > 5 && apdu.length === 5 + apdu[4]! + 1;

const getResponse = (le: number) => Uint8Array.of(0x00, 0xc0, 0x00, 0x00, le);

/**
 * Sends one command and returns the card's whole answer: `6Cxx` → the command again with Le = xx
 * (once); `61xx` → GET RESPONSE until the card has no more; a warning (`62xx`/`63xx`) without data
 * to a case-4 command → one GET RESPONSE, and the data it yields comes back under the warning.
 */
export async function transmitWhole(raw: RawTransmit, apdu: Uint8Array): Promise<Uint8Array> {
  let response = await raw(apdu);
  let { sw1, sw2 } = statusOf(response);
  if (sw1 === 0x6c) {
    response = await raw(withLe(apdu, sw2));
    ({ sw1, sw2 } = statusOf(response));
  }
  if ((sw1 === 0x62 || sw1 === 0x63) && response.length === 2 && isCase4(apdu)) {
    // EMV Book 1 §9.3.1.1.4: the data may still be waiting behind a warning; the warning is the command's status.
    const fetched = await gather(raw, await fetch(raw, 0x00));
    const rest = statusOf(fetched);
    if (rest.sw1 === 0x90 && rest.sw2 === 0x00 && fetched.length > 2) return Uint8Array.of(...fetched.subarray(0, -2), sw1, sw2);
    return response;
  }
  return gather(raw, response);
}

/** GET RESPONSE for `le` bytes; a `6Cxx` (fewer are waiting) asks again for xx. */
async function fetch(raw: RawTransmit, le: number): Promise<Uint8Array> {
  const response = await raw(getResponse(le));
  const { sw1, sw2 } = statusOf(response);
  return sw1 === 0x6c ? raw(getResponse(sw2)) : response;
}

/** Follows `61xx` with GET RESPONSE, joining the pieces. */
async function gather(raw: RawTransmit, first: Uint8Array): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let response = first;
  for (let round = 0; ; round++) {
    const { sw1, sw2 } = statusOf(response);
    if (sw1 !== 0x61) {
      pieces.push(response);
      break;
    }
    if (round >= MAX_GET_RESPONSES) throw new CardExchangeError(`the card still says 61${sw2.toString(16).padStart(2, '0')} after ${MAX_GET_RESPONSES} GET RESPONSEs`);
    pieces.push(response.subarray(0, -2));
    response = await fetch(raw, sw2);
  }
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A transport whose every command goes through {@link transmitWhole}: any raw channel (a PC/SC reader, a socket) made whole. */
export function wholeResponses(raw: RawTransmit): CardTransport {
  return { transmit: (apdu) => transmitWhole(raw, apdu) };
}
