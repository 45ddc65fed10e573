import { describe, expect, it } from 'vitest';
import { blacklistEffect, CARD_TRANSITIONS, type CardStatus } from './cards.service.js';

const STATUSES = Object.keys(CARD_TRANSITIONS) as CardStatus[];

// Every legal move and what it does to the list terminals keep. A card terminals must refuse
// (lost, blocked, or replaced while still usable) is added; one usable again is removed.
const EXPECTED: Record<string, 'ADD' | 'REMOVE' | null> = {
  'ACTIVE>LOST': 'ADD',
  'ACTIVE>BLOCKED': 'ADD',
  'ACTIVE>REPLACED': 'ADD',
  'ACTIVE>EXPIRED': null,
  'LOST>ACTIVE': 'REMOVE',
  'LOST>REPLACED': null, // already listed, and stays so
  'BLOCKED>ACTIVE': 'REMOVE',
  'BLOCKED>REPLACED': null, // already listed, and stays so
};

describe('blacklistEffect', () => {
  it('covers every legal transition, and nothing else', () => {
    const legal = STATUSES.flatMap((from) => CARD_TRANSITIONS[from].map((to) => `${from}>${to}`));
    expect(legal.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s → %s', (move, effect) => {
    const [from, to] = move.split('>') as [CardStatus, CardStatus];
    expect(blacklistEffect(from, to)).toBe(effect);
  });
});
