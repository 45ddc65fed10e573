/**
 * Public fields answer without a token even when a protected field of the same query is refused
 * (issue 22 item 6): the anonymous request runs, each protected field is refused on its own with
 * UNAUTHENTICATED and its path, and the status is 200 as long as something answered; 401 with
 * WWW-Authenticate only when nothing did.
 */
import { type GraphQLArgument, type GraphQLField, getNamedType, isEnumType, isLeafType, isNonNullType } from 'graphql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nonNullRootRefusal } from '../src/graphql/anonymous-status.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { apiSchema } from '../src/schema.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let gzId: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const gz = await createCity(db.orm.em.fork(), { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' });
  await createCity(db.orm.em.fork(), { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Shenzhen Tong' });
  gzId = toGlobalId('City', gz.city.id);
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

it('anonymous { serverInfo cities }: both answer, the city list being a public directory', async () => {
  const { status, body } = await graphql(server.url, '{ serverInfo { version } cities { edges { node { code name timeZone currency } } } }');
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  expect(body.data.serverInfo.version).toMatch(/^\d+\.\d+\.\d+$/);
  expect(body.data.cities.edges.map((e: { node: { code: string } }) => e.node)).toEqual([
    { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY' },
    { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY' },
  ]);
});

it('anonymous city(id) and node(id) of a city answer, but not the card company behind it', async () => {
  const { status, body } = await graphql(server.url, `query($id: ID!) { city(id: $id) { code cardCompany { name } } node(id: $id) { ... on City { code } } }`, { id: gzId });
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  expect(body.data).toEqual({ city: { code: 'GZ', cardCompany: null }, node: { code: 'GZ' } });
});

it('anonymous { serverInfo viewer }: serverInfo answers and viewer is null, without an error', async () => {
  const { status, body } = await graphql(server.url, '{ serverInfo { version } viewer { kind } }');
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  expect(body.data).toEqual({ serverInfo: { version: expect.any(String) }, viewer: null });
});

it('a protected field beside a public one is refused on its own, with its path, and the public one answers (200)', async () => {
  const payment = toGlobalId('Payment', '00000000-0000-4000-8000-000000000001');
  const { status, headers, body } = await graphql(server.url, `query($p: ID!) { serverInfo { version } mine: payment(id: $p) { id } cities { edges { node { code } } } }`, { p: payment });
  expect(status).toBe(200);
  expect(headers.get('www-authenticate')).toBeNull();
  expect(body.data).toEqual({ serverInfo: { version: expect.any(String) }, mine: null, cities: { edges: [{ node: { code: 'GZ' } }, { node: { code: 'SZ' } }] } });
  expect(body.errors).toEqual([{ message: expect.stringMatching(/Authentication required/), path: ['mine'], locations: expect.any(Array), extensions: { code: 'UNAUTHENTICATED' } }]);
});

it('when every field asked for is protected, nothing answered: 401 with WWW-Authenticate, each field refused by path', async () => {
  const payment = toGlobalId('Payment', '00000000-0000-4000-8000-000000000001');
  const { status, headers, body } = await graphql(server.url, `query($p: ID!) { a: payment(id: $p) { id } b: merchant(id: $p) { id } }`, { p: payment });
  expect(status).toBe(401);
  expect(headers.get('www-authenticate')).toBe('Bearer realm="OneCard"');
  expect(body.data).toEqual({ a: null, b: null });
  expect(body.errors.map((e: { path: string[]; extensions: { code: string } }) => [e.path, e.extensions.code]).sort()).toEqual([
    [['a'], 'UNAUTHENTICATED'],
    [['b'], 'UNAUTHENTICATED'],
  ]);
});

it('a protected list that cannot be null takes the data with it (GraphQL null propagation): 401, refused by path, the error saying what to do', async () => {
  const { status, headers, body } = await graphql(server.url, '{ serverInfo { version } payments { edges { node { id } } } }');
  expect(status).toBe(401);
  expect(headers.get('www-authenticate')).toBe('Bearer realm="OneCard"');
  expect(body.data).toBeNull();
  expect(body.errors).toEqual([expect.objectContaining({ path: ['payments'], extensions: { code: 'UNAUTHENTICATED' } })]);
  expect(body.errors[0].message).toBe(nonNullRootRefusal('payments'));
  expect(body.errors[0].message).toMatch(/send an OAuth access token.*public fields included: ask public fields \(serverInfo, cities, …\) in a request of their own, or sign in/);
});

it('the refusal names the field asked, under an alias or through a fragment, and leaves a nullable one beside it as it was', async () => {
  const payment = toGlobalId('Payment', '00000000-0000-4000-8000-000000000001');
  const { status, body } = await graphql(server.url, 'query($p: ID!) { serverInfo { version } one: payment(id: $p) { id } ...F } fragment F on Query { mine: payments { edges { node { id } } } }', { p: payment });
  expect(status).toBe(401);
  expect(body.data).toBeNull();
  const byPath = Object.fromEntries(body.errors.map((e: { path: string[]; message: string }) => [e.path.join('.'), e.message]));
  expect(byPath).toEqual({ mine: nonNullRootRefusal('payments'), one: 'Authentication required: send an OAuth access token' });
});

/** A value an anonymous probe can send for a required argument: well-formed, so only the token is missing. */
function probeValue(arg: GraphQLArgument): string {
  const type = getNamedType(arg.type);
  if (type.name === 'ID') return JSON.stringify(toGlobalId(arg.name === 'window' ? 'SettlementWindow' : arg.name[0]!.toUpperCase() + arg.name.slice(1), '00000000-0000-4000-8000-000000000001'));
  if (type.name === 'String') return JSON.stringify(/day|from|to/i.test(arg.name) ? '2026-11-26' : 'probe');
  if (type.name === 'Int') return '1';
  if (isEnumType(type)) return type.getValues()[0]!.name;
  throw new Error(`no probe value for ${arg.name}: ${String(arg.type)}`);
}

function probe(field: GraphQLField<unknown, unknown>): string {
  const args = field.args.filter((a) => isNonNullType(a.type) && a.defaultValue === undefined).map((a) => `${a.name}: ${probeValue(a)}`);
  return `{ serverInfo { version } ${field.name}${args.length ? `(${args.join(', ')})` : ''}${isLeafType(getNamedType(field.type)) ? '' : ' { __typename }'} }`;
}

it('measured: the root queries that cannot be null and need a token, each of which nulls the public fields asked beside it', async () => {
  const schema = await apiSchema();
  const nonNull = Object.values(schema.getQueryType()!.getFields()).filter((f) => isNonNullType(f.type)).sort((a, b) => a.name.localeCompare(b.name));
  const affected: string[] = [];
  const publicOnes: string[] = [];
  for (const field of nonNull) {
    const { status, body } = await graphql(server.url, probe(field));
    if (body.data === null) {
      // Lost for want of a token only, and told so plainly.
      expect({ field: field.name, status, errors: body.errors }).toEqual({ field: field.name, status: 401, errors: [expect.objectContaining({ path: [field.name], message: nonNullRootRefusal(field.name), extensions: { code: 'UNAUTHENTICATED' } })] });
      affected.push(field.name);
    } else {
      expect({ field: field.name, errors: body.errors }).toEqual({ field: field.name, errors: undefined });
      publicOnes.push(field.name);
    }
  }
  // The list docs/api-conventions.md#anonymous-requests gives: a new non-null protected root list fails here until it is listed there.
  expect(affected).toEqual([
    'billerReconciliation', 'billers', 'bills', 'blacklist', 'cardKeyTransportKey', 'cardMasterKeys', 'cardProfiles', 'cards', 'events', 'feePlans', 'interchangeMatrix', 'ledgerAccounts', 'ledgerProblems',
    'merchants', 'oauthClients', 'payments', 'pendingLoads', 'readers', 'reconciliationDifferences', 'settlementStatements', 'settlementWindows', 'webhookDeliveries', 'webhookEndpoints',
  ]);
  expect(publicOnes).toEqual(['certificateAuthorities', 'certificateStatus', 'cities', 'clientKindScopes', 'serverInfo']);
});
