import { describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../../../sdk-js/src/cards/virtual-m1-card.js';
import { runM1Script } from '../../../../sdk-js/src/reader/reader-agent.js';
import { M1_PURSE, M1AnswerError, m1SectorKeyB, purseValue, readPurseScript, writePurseScript } from './m1-script.js';

const master = Buffer.from('00112233445566778899AABBCCDDEEFF', 'hex');
const uid = Buffer.from('A1B2C3D4', 'hex');

/** A card personalised by the card company: its purse sector keyed from its UID. */
function personalised(balance: number) {
  const card = VirtualM1Card.create({ uid: uid.toString('hex'), sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(master, Buffer.from(u), sector) }) });
  card.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(master, uid, M1_PURSE.sector));
  formatM1Purse(card, { sector: 1, valueBlock: 0, backupBlock: 1 }, balance);
  return card;
}

describe('M1 scripts', () => {
  it('sector keys depend on the UID and the sector', () => {
    expect(m1SectorKeyB(master, uid, 1)).toHaveLength(6);
    expect(m1SectorKeyB(master, uid, 1).equals(m1SectorKeyB(master, uid, 2))).toBe(false);
    expect(m1SectorKeyB(master, uid, 1).equals(m1SectorKeyB(master, Buffer.from('A1B2C3D5', 'hex'), 1))).toBe(false);
  });

  it('reads, credits and debits the purse of a virtual M1 card, keeping the backup in step', async () => {
    const card = personalised(500);
    const key = m1SectorKeyB(master, uid, M1_PURSE.sector);
    const [, value, backup] = await runM1Script(card, readPurseScript(key));
    expect(purseValue(value, backup)).toBe(500);
    const u = uid.toString('hex').toUpperCase();
    const credited = await runM1Script(card, writePurseScript({ uid: u, keyB: key, operation: 'increment', amount: 250, oldValue: 500, newValue: 750 }));
    expect(purseValue(credited.at(-2), credited.at(-1))).toBe(750);
    const debited = await runM1Script(card, writePurseScript({ uid: u, keyB: key, operation: 'decrement', amount: 700, oldValue: 750, newValue: 50 }));
    expect(purseValue(debited.at(-2), debited.at(-1))).toBe(50);
    const [, v, b] = await runM1Script(card, readPurseScript(key));
    expect(purseValue(v, b)).toBe(50);
  });

  it('a wrong key fails at authentication; a purse and backup that disagree are refused', async () => {
    const card = personalised(500);
    const results = await runM1Script(card, readPurseScript(Buffer.alloc(6, 0x11)));
    expect(results).toEqual([{ ok: false, error: 'AUTH_FAILED' }]);
    const key = m1SectorKeyB(master, uid, M1_PURSE.sector);
    await runM1Script(card, [{ op: 'auth', block: M1_PURSE.valueBlock, keyType: 'B', key: key.toString('hex') }, { op: 'increment', block: M1_PURSE.valueBlock, value: 1 }, { op: 'transfer', block: M1_PURSE.valueBlock }]);
    const [, value, backup] = await runM1Script(card, readPurseScript(key));
    expect(() => purseValue(value, backup)).toThrow(M1AnswerError);
    expect(() => purseValue(value, backup)).toThrow(/disagree/);
  });

  it('a write script runs only on the card and the value it was written for: replayed elsewhere it stops before writing', async () => {
    const card = personalised(500);
    const key = m1SectorKeyB(master, uid, M1_PURSE.sector);
    const script = writePurseScript({ uid: uid.toString('hex').toUpperCase(), keyB: key, operation: 'increment', amount: 250, oldValue: 500, newValue: 750 });
    expect((await runM1Script(card, script)).every((r) => r.ok)).toBe(true);
    // The same script again: the card's value moved (750), so it stops at the compare.
    expect((await runM1Script(card, script)).at(-1)).toEqual({ ok: false, error: 'VALUE_MISMATCH' });
    // Onto another card that happens to hold 500: it stops at the UID.
    const other = VirtualM1Card.create({ uid: 'A1B2C3D5', sectorKeys: () => ({ keyA: 'A0A1A2A3A4A5', keyB: key }) });
    other.authenticate(M1_PURSE.valueBlock, 'B', key);
    formatM1Purse(other, { sector: 1, valueBlock: 0, backupBlock: 1 }, 500);
    expect(await runM1Script(other, script)).toEqual([{ ok: false, error: 'UID_MISMATCH' }]);
    const [, v, b] = await runM1Script(card, readPurseScript(key));
    expect(purseValue(v, b)).toBe(750);
    const [, ov, ob] = await runM1Script(other, readPurseScript(key));
    expect(purseValue(ov, ob)).toBe(500);
  });
});
