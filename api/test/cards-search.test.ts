/**
 * Finding a card by the number printed on it (`cards(number:)`, for the console's card search): a
 * search inside what the caller may see, never a way to learn of another card company's cards.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { apiClient, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let gzIssuer: OneCardClient;
let szIssuer: OneCardClient;
let gzNumber: string;

const SEARCH = 'query($number: String) { cards(number: $number, first: 5) { edges { node { number status } } pageInfo { hasNextPage } } }';
type Found = { cards: { edges: { node: { number: string; status: string } }[]; pageInfo: { hasNextPage: boolean } } };

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  gzNumber = testCardNumber('623177200000');
  const cards = [
    { company: world.gz.cardCompanyId, number: gzNumber, asn: '58100000000000000101' },
    { company: world.gz.cardCompanyId, number: testCardNumber('623177200001'), asn: '58100000000000000102' },
    { company: world.sz.cardCompanyId, number: testCardNumber('623177300000'), asn: '58400000000000000101' },
  ];
  for (const c of cards) await registerCard(em, c.company, { cardNumber: c.number, asn: c.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01' });
  gzIssuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read']);
  szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['cards:read']);
});

describe('cards(number:)', () => {
  it('finds the card company’s own card by its number, spaces as printed on the card ignored', async () => {
    const spaced = gzNumber.replace(/(\d{4})/g, '$1 ').trim();
    for (const number of [gzNumber, spaced]) {
      const found = await gzIssuer.request<Found>(SEARCH, { number });
      expect(found.cards.edges.map((e) => e.node.number)).toEqual([gzNumber]);
      expect(found.cards.pageInfo.hasNextPage).toBe(false);
    }
  });

  it('another card company’s card is not found, exactly like a number nobody issued', async () => {
    expect((await szIssuer.request<Found>(SEARCH, { number: gzNumber })).cards.edges).toEqual([]);
    expect((await gzIssuer.request<Found>(SEARCH, { number: testCardNumber('623177999999') })).cards.edges).toEqual([]);
  });

  it('without a number, the list is what it was: every card the caller may see', async () => {
    expect((await gzIssuer.request<Found>(SEARCH, {})).cards.edges).toHaveLength(2);
  });
});
