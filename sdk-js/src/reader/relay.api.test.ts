/**
 * The reader agent relaying through the typed client: a card company loads value onto a virtual
 * CPU card at its counter reader, the session opened with OpenCardSessionDocument and every signed
 * message sent by cardSessionRelay.
 */
import { describe, expect, it } from 'vitest';
import { apiClient, balanceOnCard, issueCard, newReader, useCardSessionWorld } from '../../../api/test/support/card-sessions.js';
import { OpenCardSessionDocument, ReaderAgent, VirtualCardTransport, cardSessionRelay } from '../index.js';

const world = useCardSessionWorld();

describe('cardSessionRelay', () => {
  it('drives a LOAD session to COMPLETED, then reads the balance', async () => {
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
    const counter = await newReader(world, 'SDK-COUNTER-1', world.gz);
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const agent = new ReaderAgent({
      deviceKey: counter.deviceKeyPem,
      nationalCertificatePem: counter.nationalPem,
      cityCertificatePem: counter.cityPem,
      trustedCertificatesPem: counter.trustedCertificatesPem, nationalKey: counter.nationalKeyPem, encryptionKey: counter.encryptionKeyPem, encryptionCertificatePem: counter.encryptionPem,
      transport: new VirtualCardTransport(card),
      send: cardSessionRelay(issuer),
    });

    const load = await issuer.mutate(OpenCardSessionDocument, { input: { reader: counter.id, operation: 'LOAD', amount: 1_500 } });
    if (!load.ok) expect.unreachable(JSON.stringify(load.userErrors));
    const session = load.data.openCardSession.session!;
    expect(session).toMatchObject({ operation: 'LOAD', state: 'OPEN', nextSeq: 0 });
    expect(await agent.run(session)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 1_500 } });
    expect(await balanceOnCard(card)).toBe(1_500);

    const balance = await issuer.mutate(OpenCardSessionDocument, { input: { reader: counter.id, operation: 'BALANCE' } });
    expect(balance.ok).toBe(true);
    expect(await agent.run(balance.data.openCardSession.session!)).toMatchObject({ state: 'COMPLETED', result: { balance: 1_500 } });
  });
});
