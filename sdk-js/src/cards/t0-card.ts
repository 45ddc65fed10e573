/**
 * A card as a contact reader sees it over T=0 (ISO/IEC 7816-3 §10.3.3): no answer carries data
 * directly. The card says `61xx` (xx bytes waiting) and hands them out on GET RESPONSE
 * (`00 C0 00 00 Le`); a warning (`62xx`/`63xx`) comes alone and its data on GET RESPONSE after it
 * (EMV Book 1 §9.3.1.1.4). Wraps any card that answers whole, so tests can prove a reader gathers
 * what such a card says (`reader/status-words.ts`).
 */

/** Whatever answers APDUs: a virtual CPU or M1 card, or another wrapper. */
export interface ApduCard {
  transmit(apdu: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

export interface T0CardOptions {
  /** At most this many bytes per GET RESPONSE, to make the reader ask again (`61xx` chains). Default 256. */
  chunk?: number;
}

const isGetResponse = (apdu: Uint8Array) => apdu.length === 5 && apdu[1] === 0xc0 && apdu[2] === 0 && apdu[3] === 0;

export class T0Card implements ApduCard {
  /** The answer held back: its data still to hand out, and the status word that ends it. */
  private pending: { data: Uint8Array; sw1: number; sw2: number } | undefined;
  private readonly chunk: number;

  constructor(
    private readonly card: ApduCard,
    options: T0CardOptions = {},
  ) {
    this.chunk = Math.min(256, Math.max(1, options.chunk ?? 256));
  }

  async transmit(apdu: Uint8Array): Promise<Uint8Array> {
    if (isGetResponse(apdu)) return this.handOut(apdu[4]!);
    // Any other command drops what was waiting, as the card's buffer would.
    this.pending = undefined;
    const answer = await this.card.transmit(apdu);
    if (answer.length <= 2) return answer;
    const [sw1, sw2] = [answer[answer.length - 2]!, answer[answer.length - 1]!];
    const data = answer.slice(0, -2);
    if (sw1 === 0x62 || sw1 === 0x63) {
      this.pending = { data, sw1: 0x90, sw2: 0x00 };
      return Uint8Array.of(sw1, sw2);
    }
    this.pending = { data, sw1, sw2 };
    return this.waiting();
  }

  private waiting(): Uint8Array {
    return Uint8Array.of(0x61, Math.min(this.pending!.data.length, this.chunk) & 0xff);
  }

  private handOut(le: number): Uint8Array {
    const p = this.pending;
    if (!p) return Uint8Array.of(0x69, 0x85); // nothing waiting: conditions of use not satisfied
    const wanted = le === 0 ? 256 : le;
    const available = Math.min(p.data.length, this.chunk);
    if (wanted > available) return Uint8Array.of(0x6c, available & 0xff);
    const part = p.data.subarray(0, wanted);
    p.data = p.data.subarray(wanted);
    if (p.data.length > 0) return Uint8Array.of(...part, ...this.waiting());
    this.pending = undefined;
    return Uint8Array.of(...part, p.sw1, p.sw2);
  }
}
