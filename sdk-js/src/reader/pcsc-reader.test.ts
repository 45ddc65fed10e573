/**
 * The PC/SC transport for real: pcscd with vsmartcard's vpcd reader, the SDK's virtual card in it
 * over vpcd's socket. A contact card speaking T=0 answers `61xx` and `6Cxx`; the transport gathers
 * its answer once for every command, so host code sees what a contactless card would have said.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { T0Card } from '../cards/t0-card.js';
import { T0_ATR, VpcdCard } from '../cards/vpcd-card.js';
import { SELECT_CITY_UNION, hex, vectorCard } from '../cards/cards.test-support.js';
import { PcscReaders, PcscTimeoutError } from './pcsc-reader.js';
import { startPcscd, type TestPcscd } from './pcscd.test-support.js';
import { transmitWhole, withLe } from './status-words.js';

const text = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
/** INITIALIZE FOR LOAD on the reference's vector card: 16 bytes of answer (CARD-PROTOCOL.md §2). */
const INIT_LOAD = '805000020B 01 00001000 001122334455 10';

describe('a T=0 card’s answers gathered once for every command', () => {
  const rawOf = (card: { transmit(a: Uint8Array): Uint8Array | Promise<Uint8Array> }, log: string[] = []) => async (apdu: Uint8Array) => {
    const answer = await card.transmit(apdu);
    log.push(`${text(apdu)}>${text(answer)}`);
    return answer;
  };

  it('a case-4 command answered 61xx: the data comes by GET RESPONSE, and reads as the contactless card’s answer', async () => {
    const whole = vectorCard();
    whole.transmit(hex(SELECT_CITY_UNION));
    const expected = whole.transmit(hex(INIT_LOAD));

    const t0 = new T0Card(vectorCard());
    const log: string[] = [];
    await transmitWhole(rawOf(t0), hex(SELECT_CITY_UNION));
    // What the card says on the wire, without the reader's help: no data, 61 10.
    const answer = await transmitWhole(rawOf(t0, log), hex(INIT_LOAD));
    expect(log[0]).toMatch(/>6110$/);
    expect(log[1]).toMatch(/^00C0000010>/);
    expect(text(answer)).toBe(text(expected));
    expect(text(answer).endsWith('9000')).toBe(true);
  });

  it('a card that hands out its answer in pieces (61xx after 61xx) is asked until it has given all', async () => {
    const t0 = new T0Card(vectorCard(), { chunk: 5 });
    const log: string[] = [];
    await transmitWhole(rawOf(t0), hex(SELECT_CITY_UNION));
    const answer = await transmitWhole(rawOf(t0, log), hex(INIT_LOAD));
    expect(answer).toHaveLength(16 + 2);
    expect(log.filter((l) => l.startsWith('00C0'))).toHaveLength(4); // 5 + 5 + 5 + 1
  });

  it('6Cxx: the command goes again once with the Le the card asked for', async () => {
    const card = vectorCard();
    const log: string[] = [];
    await transmitWhole(rawOf(card), hex(SELECT_CITY_UNION));
    // READ BINARY of the public information file (SFI 15, 28 bytes) asking for 64: the card says 6C 1C.
    const answer = await transmitWhole(rawOf(card, log), hex('00B0950040'));
    expect(log).toHaveLength(2);
    expect(log[0]).toBe('00B0950040>6C1C');
    expect(log[1]).toMatch(/^00B095001C>[0-9A-F]{56}9000$/);
    expect(answer).toHaveLength(28 + 2);
  });

  it('a warning to a case-4 command: its data fetched by GET RESPONSE, the warning kept as the status', async () => {
    const warns = { transmit: (apdu: Uint8Array) => (apdu[1] === 0xb0 ? Uint8Array.of(1, 2, 3, 0x62, 0x82) : Uint8Array.of(0x90, 0x00)) };
    const t0 = new T0Card(warns);
    const answer = await transmitWhole(rawOf(t0), hex('00B0000002 0000 03'));
    expect(text(answer)).toBe('0102036282');
  });

  it('a card that never stops saying 61xx is refused, not followed for ever', async () => {
    const endless = { transmit: () => Uint8Array.of(0xaa, 0x61, 0x01) };
    await expect(transmitWhole(rawOf(endless), hex('00B0000000'))).rejects.toThrow(/61/);
  });

  it('Le is set for each command case', () => {
    expect(text(withLe(hex('805C0002'), 4))).toBe('805C000204');
    expect(text(withLe(hex('805C000208'), 4))).toBe('805C000204');
    expect(text(withLe(hex('00A4040002 3F00'), 0x10))).toBe('00A40400023F0010');
    expect(text(withLe(hex('00A4040002 3F00 00'), 0x10))).toBe('00A40400023F0010');
  });
});

describe('through pcscd and a vpcd reader', () => {
  let pcscd: TestPcscd;
  let readers: PcscReaders;
  beforeAll(async () => {
    pcscd = await startPcscd();
    readers = await PcscReaders.open();
  });
  afterAll(async () => {
    readers?.close();
    await pcscd?.stop();
  });

  it('lists the reader, connects to the card put in it, and notices it taken out', async () => {
    expect(readers.list()).toContain(`${pcscd.readerName} 00 00`);
    await expect(readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 300 })).rejects.toBeInstanceOf(PcscTimeoutError);

    const inserted = await VpcdCard.insert({ port: pcscd.port, card: vectorCard({ balance: 99 }) });
    const card = await readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 30_000 });
    expect(text(await card.transmit(hex(SELECT_CITY_UNION))).endsWith('9000')).toBe(true);
    expect(text(await card.transmit(hex('805C000204')))).toBe('000000639000');
    card.disconnect();

    await inserted.remove();
    await card.waitForRemoval({ timeoutMs: 30_000 });
    await expect(readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 300 })).rejects.toBeInstanceOf(PcscTimeoutError);
  });

  it('a card released with a reset hears the reset, though the program holding it waits on pcscd meanwhile', async () => {
    // PC/SC's disconnect blocks its thread until pcscd has reset the card, and pcscd asks the card
    // for its ATR to finish; the virtual card sits in this same process. It answers from a thread
    // of its own, so this cannot wait for ever (it did when the card shared the test's thread).
    let powerCycles = 0;
    const inserted = await VpcdCard.insert({ port: pcscd.port, card: vectorCard(), onPowerCycle: () => powerCycles++ });
    try {
      const card = await readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 30_000 });
      expect(text(await card.transmit(hex(SELECT_CITY_UNION))).endsWith('9000')).toBe(true);
      const before = powerCycles;
      card.disconnect({ reset: true });
      const again = await readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 30_000 });
      // The card heard the reset before the next command.
      expect(powerCycles).toBeGreaterThan(before);
      again.disconnect();
    } finally {
      await inserted.remove();
    }
  });

  it('a T=0 card answering 61xx through pcscd: the transport returns its whole answer', async () => {
    const whole = vectorCard();
    whole.transmit(hex(SELECT_CITY_UNION));
    const expected = whole.transmit(hex(INIT_LOAD));

    const inserted = await VpcdCard.insert({ port: pcscd.port, card: new T0Card(vectorCard(), { chunk: 7 }), atr: T0_ATR });
    try {
      const card = await readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 30_000 });
      expect(card.atr).toEqual(T0_ATR);
      await card.transmit(hex(SELECT_CITY_UNION));
      expect(text(await card.transmit(hex(INIT_LOAD)))).toBe(text(expected));
      card.disconnect();
      // pcscd saw the card's 61xx: the gathering was ours, over the wire.
      expect(pcscd.log()).toMatch(/61 07/i);
    } finally {
      await inserted.remove();
    }
  });
});

describe('a test blocked in a PC/SC call', () => {
  it('has its pcscd stopped by the watchdog, which frees the call, instead of hanging the run', async () => {
    const pcscd = await startPcscd({ blockedLimitMs: 2000 });
    try {
      expect(pcscd.running()).toBe(true);
      // This thread runs nothing for 5 s, as when a native PC/SC call waits on pcscd for ever.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);
      await pcscd.exited;
      expect(pcscd.running()).toBe(false);
    } finally {
      await pcscd.stop();
    }
  });
});
