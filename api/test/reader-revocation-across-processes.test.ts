/**
 * A reader's certificate chains are verified once and remembered (issue 20: node:crypto instead of
 * node-forge, once per certificate triple). Remembering must never let a revoked certificate or a
 * suspended reader through: whatever revokes or suspends it, through one API process or from the
 * CLI's own connection, the very next hello handled by another API process is refused. Process B
 * is a second API instance on the same database with its own ORM, as behind a load balancer; it
 * has completed a session with the reader first, so it has seen (and may remember) its chains.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { revokeCertificate } from '../src/pki/pki.service.js';
import { addCity, apiClient, expectRefused as expectRefusedIn, issueCard, newReader, sessionsOf, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const world = useCardSessionWorld();
let otherOrm: Orm;
let b: TestServer;
/** The card company's client on process A (world.server) and on process B. */
let onA: OneCardClient;
let onB: Requester;
let xa: TestCity;

const SCOPES = ['readers:manage', 'topups:write', 'cards:read'];

beforeAll(async () => {
  otherOrm = await openOrm(world.db.url);
  b = await startTestServer(otherOrm, { PUBLIC_URL: world.server.url });
  xa = await addCity(world, { code: 'XA', name: "Xi'an", cardCompanyName: 'Chang’an Tong', cardCode: '7100' });
  onA = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, SCOPES);
  onB = await issuerOnB(world.gz);
});
afterAll(async () => {
  await b?.close();
  await otherOrm?.close(true);
});

/** On B: a whole balance session (B has now checked the reader's chains), then a new session opened and waiting for its hello. */
async function seenByB(reader: TestReader, city: TestCity) {
  const client = city === world.gz ? onB : await issuerOnB(city);
  const sessions = sessionsOf(client, () => reader);
  const card = () => issueCard({ city, keys: world.gzMasterKeys });
  expect((await sessions.agent(card()).run(await sessions.open('BALANCE'))).state).toBe('COMPLETED');
  return sessions.manual(card(), 'BALANCE');
}

type Requester = Pick<OneCardClient, 'request'>;

/** A card company's API client whose requests go to process B (its token from the shared issuer, A's URL). */
async function issuerOnB(city: TestCity): Promise<Requester> {
  const made = await createClient(world.db.orm.em.fork(), { kind: 'ISSUER', tenantId: city.cardCompanyId, name: 'issuer on B', scopes: SCOPES });
  const token = (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, SCOPES.join(' '))).access_token;
  const request = async (query: string, variables?: Record<string, unknown>) => {
    const { body } = await graphql(b.url, query, variables, { authorization: `Bearer ${token}` });
    if (body.errors?.length) throw new Error(`process B: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  return { request } as Requester;
}

const serialsOf = async (reader: TestReader) =>
  (await world.db.orm.em.fork().execute<{ national: string; city: string; encryption: string }[]>(
    `select national_certificate_serial as national, city_certificate_serial as city, encryption_certificate_serial as encryption from reader where serial = ?`,
    [reader.serial],
  ))[0]!;

/** What the CLI's `onecard pki revoke` does: its own connection, no API process involved. */
async function revokeFromCli(serial: string) {
  const cli = await openOrm(world.db.url);
  try {
    await revokeCertificate(cli.em.fork(), serial, 1);
  } finally {
    await cli.close(true);
  }
}

const expectRefused = (reply: Parameters<typeof expectRefusedIn>[1], refusal: string, sessionId: string) => expectRefusedIn(world, reply, refusal, sessionId);

describe('a revocation is seen by the next hello on another API process', () => {
  it.each([
    ['national certificate', (s: Awaited<ReturnType<typeof serialsOf>>) => s.national],
    ['city certificate', (s: Awaited<ReturnType<typeof serialsOf>>) => s.city],
    ['encryption certificate', (s: Awaited<ReturnType<typeof serialsOf>>) => s.encryption],
  ])('its %s revoked from the CLI: refused CERTIFICATE_REVOKED', async (_name, which) => {
    const reader = await newReader(world, `GZ-X-${randomUUID().slice(0, 8)}`, world.gz);
    const next = await seenByB(reader, world.gz);
    await revokeFromCli(which(await serialsOf(reader)));
    await expectRefused(await next.hello(), 'CERTIFICATE_REVOKED', next.session.id);
  });

  it('the reader revoked through process A (revokeReader): refused CERTIFICATE_REVOKED', async () => {
    const reader = await newReader(world, `GZ-X-${randomUUID().slice(0, 8)}`, world.gz);
    const next = await seenByB(reader, world.gz);
    const revoked = await onA.request<{ revokeReader: { reader: { status: string } } }>(`mutation($input: ReaderStatusInput!) { revokeReader(input: $input) { reader { status } } }`, { input: { reader: reader.id } });
    expect(revoked.revokeReader.reader.status).toBe('REVOKED');
    await expectRefused(await next.hello(), 'CERTIFICATE_REVOKED', next.session.id);
  });

  it('the city working CA that issued its certificates revoked from the CLI: refused CERTIFICATE_REVOKED', async () => {
    const reader = await newReader(world, `XA-X-${randomUUID().slice(0, 8)}`, xa);
    const next = await seenByB(reader, xa);
    const [ca] = await world.db.orm.em.fork().execute<{ certificate_pem: string }[]>(`select certificate_pem from certificate_authority where kind = 'CITY' and city_id = ?`, [xa.cityId]);
    await revokeFromCli(new X509Certificate(ca!.certificate_pem).serialNumber);
    await expectRefused(await next.hello(), 'CERTIFICATE_REVOKED', next.session.id);
  });

  it('the reader suspended through process A (suspendReader): refused READER_NOT_ACTIVE', async () => {
    const reader = await newReader(world, `GZ-X-${randomUUID().slice(0, 8)}`, world.gz);
    const next = await seenByB(reader, world.gz);
    const suspended = await onA.request<{ suspendReader: { reader: { status: string } } }>(`mutation($input: ReaderStatusInput!) { suspendReader(input: $input) { reader { status } } }`, { input: { reader: reader.id } });
    expect(suspended.suspendReader.reader.status).toBe('SUSPENDED');
    await expectRefused(await next.hello(), 'READER_NOT_ACTIVE', next.session.id);
  });

  it('a reader whose certificates are in good standing keeps working on both processes', async () => {
    const reader = await newReader(world, `GZ-X-${randomUUID().slice(0, 8)}`, world.gz);
    await seenByB(reader, world.gz);
    const onASessions = sessionsOf(onA, () => reader);
    expect((await onASessions.agent(issueCard({ city: world.gz, keys: world.gzMasterKeys })).run(await onASessions.open('BALANCE'))).state).toBe('COMPLETED');
  });
});
