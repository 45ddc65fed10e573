/**
 * Terminal numbers (issue 24 item 2): each reader is registered with its 6-byte terminal number (12
 * BCD digits), unique in its city, the number its PSAM puts in every load and purchase. A reader
 * registered without one keeps the number derived from its serial, the one readers have always used,
 * so records already on cards still match.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { apiClient, csrFor, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let operator: OneCardClient;
let gzCompany: OneCardClient;

beforeAll(async () => {
  operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['readers:manage']);
  gzCompany = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage']);
});

const REGISTER = `mutation($input: RegisterReaderInput!) { registerReader(input: $input) {
  reader { id serial terminalNumber } cityCertificateChain userErrors { code field message } } }`;

type Registered = { registerReader: { reader: { id: string; serial: string; terminalNumber: string } | null; cityCertificateChain: string[]; userErrors: { code: string; field: string[]; message: string }[] } };

const key = () => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;

function registration(serial: string, city: { cityId: string; cardCompanyId: string }, terminalNumber?: string) {
  return { serial, model: 'OC-GATE', owner: toGlobalId('CardCompany', city.cardCompanyId), city: toGlobalId('City', city.cityId), nationalCsr: csrFor(key()), cityCsr: csrFor(key()), encryptionCsr: csrFor(key()), ...(terminalNumber === undefined ? {} : { terminalNumber }) };
}

const issuedCertificates = async () => Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from issued_certificate`))[0]!.n);

describe('terminal numbers', () => {
  it('a reader is registered with its terminal number, and shows it', async () => {
    const { registerReader } = await gzCompany.request<Registered>(REGISTER, { input: registration('GZ-GATE-TN-1', world.gz, '440100000001') });
    expect(registerReader.userErrors).toEqual([]);
    expect(registerReader.reader).toMatchObject({ serial: 'GZ-GATE-TN-1', terminalNumber: '440100000001' });
    const read = await operator.request<{ reader: { terminalNumber: string } }>(`query($id: ID!) { reader(id: $id) { terminalNumber } }`, { id: registerReader.reader!.id });
    expect(read.reader.terminalNumber).toBe('440100000001');
  });

  it('a number taken in the city is refused with DUPLICATE_TERMINAL_NUMBER, and nothing is registered or issued', async () => {
    await gzCompany.request<Registered>(REGISTER, { input: registration('GZ-GATE-TN-2', world.gz, '440100000002') });
    const before = await issuedCertificates();
    const { registerReader } = await gzCompany.request<Registered>(REGISTER, { input: registration('GZ-GATE-TN-3', world.gz, '440100000002') });
    expect(registerReader.reader).toBeNull();
    expect(registerReader.userErrors).toEqual([{ code: 'DUPLICATE_TERMINAL_NUMBER', field: ['input', 'terminalNumber'], message: 'terminal number 440100000002 is registered to another reader of GZ' }]);
    expect(await issuedCertificates()).toBe(before);
    const [row] = await world.db.orm.em.fork().execute(`select 1 from reader where serial = 'GZ-GATE-TN-3'`);
    expect(row).toBeUndefined();
  });

  it('two registrations of one number at once: one reader gets it, the other is refused with DUPLICATE_TERMINAL_NUMBER', async () => {
    const answers = await Promise.all(['GZ-GATE-TN-RACE-A', 'GZ-GATE-TN-RACE-B'].map((serial) => gzCompany.request<Registered>(REGISTER, { input: registration(serial, world.gz, '440100000099') })));
    const codes = answers.map((a) => a.registerReader.userErrors.map((e) => e.code).join()).sort();
    expect(codes).toEqual(['', 'DUPLICATE_TERMINAL_NUMBER']);
    const rows = await world.db.orm.em.fork().execute(`select serial from reader where terminal_number = '440100000099'`);
    expect(rows).toHaveLength(1);
  });

  it('numbers are unique per city: another city may use the same digits', async () => {
    await gzCompany.request<Registered>(REGISTER, { input: registration('GZ-GATE-TN-4', world.gz, '000000000007') });
    const { registerReader } = await operator.request<Registered>(REGISTER, { input: registration('SZ-GATE-TN-4', world.sz, '000000000007') });
    expect(registerReader.userErrors).toEqual([]);
    expect(registerReader.reader!.terminalNumber).toBe('000000000007');
  });

  it.each([
    ['hex digits', '44010000000A'],
    ['11 digits', '44010000001'],
    ['13 digits', '4401000000011'],
    ['spaces', '440100 000011'],
  ])('a terminal number with %s is refused with INVALID_INPUT', async (_what, terminalNumber) => {
    const before = await issuedCertificates();
    const { registerReader } = await gzCompany.request<Registered>(REGISTER, { input: registration(`GZ-GATE-BAD-${terminalNumber.length}-${terminalNumber.at(-1)}`, world.gz, terminalNumber) });
    expect(registerReader.reader).toBeNull();
    expect(registerReader.userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'terminalNumber'] });
    expect(await issuedCertificates()).toBe(before);
  });

  it('a reader registered without a number keeps the one derived from its serial, which its cards’ records already carry', async () => {
    const { registerReader } = await gzCompany.request<Registered>(REGISTER, { input: registration('GZ-COUNTER-7', world.gz) });
    // What readers/session/terminal.ts computed before numbers were registered (the migration gives existing readers the same).
    const before = createHash('sha256').update('terminal:GZ-COUNTER-7').digest().subarray(0, 6).toString('hex').toUpperCase();
    expect(registerReader.reader!.terminalNumber).toBe(before);
  });
});
