import { describe, expect, it } from 'vitest';
import { vectorCard } from '../cards/cards.test-support.js';
import { CITY_UNION_AID } from '../cards/virtual-cpu-card.js';
import { selectApplication } from './reader-agent.js';

/** The reader's side of a card profile's selection order (docs/readers.md, `select`). */

const T_UNION_AID = 'A000000632010105';
const PSE = { kind: 'PSE' as const, name: '1PAY.SYS.DDF01' };

/** A virtual card behind a transmit function that keeps every command it was sent (hex). */
function wire(aid?: string) {
  const card = vectorCard(aid ? { aid } : {});
  const sent: string[] = [];
  const transmit = async (apdu: Uint8Array) => {
    sent.push(Buffer.from(apdu).toString('hex').toUpperCase());
    return Buffer.from(card.transmit(apdu)).toString('hex').toUpperCase();
  };
  return { card, sent, transmit };
}

describe('selectApplication follows the host’s order', () => {
  it('a T-Union card: the city-union AID is refused, the T-Union AID answers its FCI', async () => {
    const { sent, transmit } = wire(T_UNION_AID);
    const answer = await selectApplication(transmit, [{ kind: 'AID', aid: CITY_UNION_AID }, { kind: 'AID', aid: T_UNION_AID }]);
    expect(sent).toEqual([`00A4040009${CITY_UNION_AID}`, `00A4040008${T_UNION_AID}`]);
    expect(answer.endsWith('9000')).toBe(true);
    expect(answer).toContain(`8408${T_UNION_AID}`);
  });

  it('stops at the first way the card accepts: a city-union card is never sent the others', async () => {
    const { sent, transmit } = wire();
    await selectApplication(transmit, [{ kind: 'AID', aid: CITY_UNION_AID }, { kind: 'AID', aid: T_UNION_AID }, PSE]);
    expect(sent).toEqual([`00A4040009${CITY_UNION_AID}`]);
  });

  it('PSE discovery: the directory’s AID is selected, so a card whose AID the profile does not name is still found', async () => {
    const { sent, transmit } = wire(T_UNION_AID);
    const answer = await selectApplication(transmit, [PSE]);
    expect(sent).toEqual([`00A404000E${Buffer.from('1PAY.SYS.DDF01').toString('hex').toUpperCase()}`, '00B2010C00', '00B2020C00', `00A4040008${T_UNION_AID}`]);
    expect(answer).toContain(`8408${T_UNION_AID}`);
    expect(answer.endsWith('9000')).toBe(true);
  });

  it('the legacy path 3F00 then 1001 when no AID answers; then the card reads its balance in that application', async () => {
    const { card, sent, transmit } = wire(T_UNION_AID);
    const answer = await selectApplication(transmit, [{ kind: 'AID', aid: CITY_UNION_AID }, { kind: 'PATH', path: ['3F00', '1001'] }]);
    expect(sent).toEqual([`00A4040009${CITY_UNION_AID}`, '00A40000023F00', '00A40000021001']);
    expect(answer.endsWith('9000')).toBe(true);
    expect(Buffer.from(card.transmit(Buffer.from('805C000204', 'hex'))).toString('hex').toUpperCase().endsWith('9000')).toBe(true);
  });

  it('answers the last refusal when no way works, for the host to refuse the card', async () => {
    const { transmit } = wire(T_UNION_AID);
    expect(await selectApplication(transmit, [{ kind: 'AID', aid: CITY_UNION_AID }, { kind: 'AID', aid: 'A0000006320101' }])).toBe('6A82');
  });
});
