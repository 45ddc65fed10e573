/**
 * What card sessions read and seldom changes is kept per API process (issue 20 item 1: the host
 * signing key, card profiles, card master key rows; readers/session/session-reads.ts). Keeping them
 * must never let a retired key be used: whatever retires one, here plain SQL from another
 * connection (no API call at all, so no process was told in code), the very next session handled
 * by an API process that has used the key is served without it. Process B is a second API
 * instance on the same database with its own ORM, as behind a load balancer; it runs a session
 * first, so it has read (and may keep) what the next one needs.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { addCity, addMasterKeys, auditOf, issueCard, type MasterKeys, newReader, sessionsOf, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const world = useCardSessionWorld();
let otherOrm: Orm;
let b: TestServer;
let city: TestCity;
let keys: MasterKeys;
let counter: TestReader;
/** The card company's client, its requests going to process B. */
let onB: Pick<OneCardClient, 'request'>;

const SCOPES = ['topups:write', 'cards:read'];

beforeAll(async () => {
  otherOrm = await openOrm(world.db.url);
  b = await startTestServer(otherOrm, { PUBLIC_URL: world.server.url });
  city = await addCity(world, { code: 'NJ', name: 'Nanjing', cardCompanyName: 'Jinling Tong', cardCode: '2100' });
  keys = await addMasterKeys(world, city, '3DES');
  counter = await newReader(world, 'NJ-COUNTER-1', city);
  const made = await createClient(world.db.orm.em.fork(), { kind: 'ISSUER', tenantId: city.cardCompanyId, name: 'issuer on B', scopes: SCOPES });
  const token = (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, SCOPES.join(' '))).access_token;
  onB = {
    async request<T>(query: string, variables?: Record<string, unknown>) {
      const { body } = await graphql(b.url, query, variables, { authorization: `Bearer ${token}` });
      if (body.errors?.length) throw new Error(`process B: ${JSON.stringify(body.errors)}`);
      return body.data as T;
    },
  } as Pick<OneCardClient, 'request'>;
});
afterAll(async () => {
  await b?.close();
  await otherOrm?.close(true);
});

const desk = () => sessionsOf(onB, () => counter);

it('a card master key retired in plain SQL: process B, which has just loaded a card with it, refuses the next load that needs it (UNKNOWN_CARD_KEY)', async () => {
  const first = issueCard({ city, keys });
  expect((await desk().agent(first).run(await desk().open('LOAD', 300))).state).toBe('COMPLETED');

  await world.db.orm.em.fork().execute(`update card_master_key set retired_at = now() where card_company_id = ? and purpose = 'LOAD' and key_version = 1`, [city.cardCompanyId]);

  const second = issueCard({ city, keys });
  const session = await desk().open('LOAD', 300);
  expect((await desk().agent(second).run(session)).state).toBe('FAILED');
  expect((await auditOf(world, session.id)).at(-1)).toMatchObject({ outcome: 'REFUSED', refusal: 'UNKNOWN_CARD_KEY' });
  await world.db.orm.em.fork().execute(`update card_master_key set retired_at = null where card_company_id = ? and purpose = 'LOAD' and key_version = 1`, [city.cardCompanyId]);
});

it('a host key retired (its row removed) in plain SQL: process B, which has just signed with it, signs its next message with the city’s new host key', async () => {
  const signer = async () => {
    const hello = await desk().manual(issueCard({ city, keys }), 'BALANCE').then((m) => m.hello());
    expect(hello.session?.state).toBe('AUTHENTICATED');
    return new X509Certificate(hello.hostMessage!.certificateChain[0]!).serialNumber;
  };
  const retired = await signer();
  await world.db.orm.em.fork().execute(`delete from host_signing_key where ca_id = (select id from certificate_authority where kind = 'CITY' and city_id = ?)`, [city.cityId]);

  const next = await signer();
  expect(next).not.toBe(retired);
  const [current] = await world.db.orm.em.fork().execute<{ certificate_serial: string }[]>(
    `select certificate_serial from host_signing_key where ca_id = (select id from certificate_authority where kind = 'CITY' and city_id = ?)`,
    [city.cityId],
  );
  expect(BigInt(`0x${next}`)).toBe(BigInt(`0x${current!.certificate_serial}`));
});
