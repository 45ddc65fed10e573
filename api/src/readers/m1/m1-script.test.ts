import { describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../../../sdk-js/src/cards/virtual-m1-card.js';
import { runM1Script } from '../../../../sdk-js/src/reader/reader-agent.js';
import { changePurseScript, M1_PURSE, M1AnswerError, m1SectorKeyB, purseValue, readPurseScript } from './m1-script.js';

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
    const credited = await runM1Script(card, changePurseScript(key, 'increment', 250, 750));
    expect(purseValue(credited.at(-1))).toBe(750);
    const debited = await runM1Script(card, changePurseScript(key, 'decrement', 700, 50));
    expect(purseValue(debited.at(-1))).toBe(50);
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
});
