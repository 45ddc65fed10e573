import { describe, expect, it } from 'vitest';
import { SELECT_CITY_UNION, hex, vectorCard } from './cards.test-support.js';
import { VirtualCardTransport, splitResponse, type CardTransport } from './card-transport.js';

describe('a virtual card behind a CardTransport', () => {
  it('answers the same APDUs asynchronously, and reports each exchange', async () => {
    const exchanges: string[] = [];
    const transport: CardTransport = new VirtualCardTransport(vectorCard({ balance: 99 }), {
      onExchange: (apdu, response) => exchanges.push(`${Buffer.from(apdu).toString('hex')} → ${Buffer.from(response).toString('hex')}`),
    });
    expect(splitResponse(await transport.transmit(hex(SELECT_CITY_UNION))).sw).toBe(0x9000);
    const balance = splitResponse(await transport.transmit(hex('805C000204')));
    expect(balance).toEqual({ data: Uint8Array.from([0, 0, 0, 99]), sw: 0x9000 });
    expect(exchanges).toHaveLength(2);
    expect(exchanges[1]).toBe('805c000204 → 000000639000');
  });

  it('a response shorter than a status word is not a response', () => {
    expect(() => splitResponse(Uint8Array.of(0x90))).toThrow(RangeError);
  });
});
