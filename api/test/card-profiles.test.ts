/**
 * Card profiles as data (issue 24 item 2), over real HTTP with the SDK's reader agent and virtual
 * cards. The public "L2 capture" of a real T-Union card was looked for (public code: T-Union card
 * readers, APDU logs with 805000020B / 805001020B, "A000000632010105"): what was found shows
 * commands, a real T-Union card's SELECT and public data answers (used in
 * api/src/readers/session/card-profile.test.ts), but no INITIALIZE answer with its card keys, so no
 * MAC can be reproduced from it. The card below is therefore a VirtualCpuCard personalised like
 * the capture's card: the T-Union / 交通联合 AID A000000632010105, algorithm id 01 with 3DES keys,
 * and its keys at another key index (2).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, type CardSessionView, type CardTransport, type OneCardClient, ReaderAgent, type SessionReply, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { m1SectorKeyB } from '../src/readers/m1/m1-script.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, auditOf, brokenRelay, expireSession, issueCard, kek, OPEN, newReader, purseBalance, readerAgentOptions, sessionsOf, sessionUuid, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const T_UNION_AID = 'A000000632010105';
const CITY_UNION_AID = 'A00000000386980701';

const world = useCardSessionWorld();
let gzIssuer: OneCardClient;
let szIssuer: OneCardClient;
let operator: OneCardClient;
let merchant: OneCardClient;
let counter: TestReader;
let till: TestReader;

const PROFILE = `cardCompany product isDefault selection { kind value } loadKeyIndex purchaseKeyIndex acceptedAlgorithms { id cipher meaning } publicDataSfi transactionLogSfi m1 { purseSector valueBlock backupBlock keyType keyDerivation } toleratedStatusWords`;
const SET = `mutation($input: SetCardProfileInput!) { setCardProfile(input: $input) { profile { ${PROFILE} } userErrors { code field message } } }`;
const READ = `query($cardCompany: ID) { cardProfiles(cardCompany: $cardCompany) { ${PROFILE} } }`;

type SetResult = { setCardProfile: { profile: Record<string, unknown> | null; userErrors: { code: string; field: string[]; message: string }[] } };
const setProfile = (by: OneCardClient, input: Record<string, unknown>) => by.request<SetResult>(SET, { input });
const profilesOf = async (by: OneCardClient, cardCompany?: string) => (await by.request<{ cardProfiles: Record<string, unknown>[] }>(READ, { cardCompany })).cardProfiles;

/** Today's behaviour, as a card company would write it. */
const CITY_UNION = { selection: [{ kind: 'AID', value: CITY_UNION_AID }], loadKeyIndex: 1, purchaseKeyIndex: 1, algorithmIds: [0, 4] };
/** The T-Union product of the Guangzhou card company: its cards answer 01 for 3DES and keep their keys at index 2. */
const T_UNION = { product: 'T-UNION', selection: [{ kind: 'AID', value: T_UNION_AID }], loadKeyIndex: 2, purchaseKeyIndex: 2, algorithmIds: [1] };

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Profile Tea House' });
  gzIssuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage', 'topups:write']);
  szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['readers:manage']);
  operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['readers:manage']);
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write']);
  counter = await newReader(world, 'PROFILE-COUNTER', world.gz);
  till = await newReader(world, 'PROFILE-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
});

let asn = 0;
/** A Guangzhou card personalised like the L2 capture's T-Union card. */
function tUnionCard(): VirtualCpuCard {
  return VirtualCpuCard.issue({ asn: `31040000000000${String(++asn).padStart(6, '0')}`, cityCode: world.gz.cardCode, masterKeys: world.gzMasterKeys, keyVersion: 1, keyIndex: 2, algorithm: '3DES', algorithmId: 0x01, aid: T_UNION_AID });
}

/** The card's transport, keeping every APDU it was sent (hex) and letting a test alter an answer. */
function watched(c: VirtualCpuCard, alter?: (apdu: string, response: string) => string): CardTransport & { sent: string[] } {
  const card = new VirtualCardTransport(c);
  const sent: string[] = [];
  return {
    sent,
    async transmit(apdu) {
      const command = Buffer.from(apdu).toString('hex').toUpperCase();
      sent.push(command);
      const response = Buffer.from(await card.transmit(apdu)).toString('hex').toUpperCase();
      return Buffer.from(alter ? alter(command, response) : response, 'hex');
    },
  };
}

/** Runs a session with the SDK's reader agent; every reply kept. */
async function run(by: OneCardClient, reader: TestReader, operation: 'BALANCE' | 'LOAD' | 'PURCHASE', amount: number | undefined, transport: CardTransport) {
  const { open, send } = sessionsOf(by, () => reader);
  const session = await open(operation, amount, reader);
  const replies: SessionReply[] = [];
  const agent = new ReaderAgent({ ...readerAgentOptions(reader), transport, send: async (m) => { const r = await send(m); replies.push(r); return r; } });
  return { session, view: await agent.run(session), replies };
}

const chipBalance = async (c: VirtualCpuCard, aid: string) => {
  const t = new VirtualCardTransport(c);
  await t.transmit(Buffer.from(`00A40400${(aid.length / 2).toString(16).padStart(2, '0')}${aid}`, 'hex'));
  return Buffer.from(await t.transmit(Buffer.from('805C000204', 'hex'))).readUInt32BE(0);
};

const INITIALIZE_FOR_LOAD = '80500002';
const INITIALIZE_FOR_PURCHASE = '80500102';

describe('a T-Union (交通联合) card, once its card company has set its product profile', () => {
  it('a card whose algorithm id the profile does not accept is refused with a clear code before MAC1 leaves the host', async () => {
    // No T-Union profile yet: the Guangzhou card company's own profile accepts 00 and 04 only.
    const c = VirtualCpuCard.issue({ asn: '00000000000000009901', cityCode: world.gz.cardCode, masterKeys: world.gzMasterKeys, keyVersion: 1, algorithm: '3DES', algorithmId: 0x01, balance: 5000 });
    const transport = watched(c);
    const { session, view } = await run(merchant, till, 'PURCHASE', 700, transport);
    expect(view).toMatchObject({ state: 'FAILED', refusal: 'ALGORITHM_NOT_ACCEPTED' });
    // No DEBIT FOR PURCHASE (INS 54, which carries MAC1) ever reached the card; it holds what it held.
    expect(transport.sent.filter((a) => a.startsWith('8054'))).toEqual([]);
    expect(await chipBalance(c, CITY_UNION_AID)).toBe(5000);
    expect((await auditOf(world, session.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'ALGORITHM_NOT_ACCEPTED' });
    const [row] = await world.db.orm.em.fork().execute<{ detail: { refusedBy?: string } }[]>(`select detail from card_session_audit where session_id = ? and outcome = 'REFUSED'`, [sessionUuid(session.id)]);
    expect(row!.detail.refusedBy).toBe('card-answers');
  });

  it('the card company sets the T-Union product profile through the API', async () => {
    const set = await setProfile(gzIssuer, T_UNION);
    expect(set.setCardProfile.userErrors).toEqual([]);
    expect(set.setCardProfile.profile).toMatchObject({ product: 'T-UNION', isDefault: false, selection: [{ kind: 'AID', value: T_UNION_AID }], loadKeyIndex: 2, purchaseKeyIndex: 2, acceptedAlgorithms: [{ id: 1, cipher: 'TDES' }] });
    const profiles = await profilesOf(gzIssuer);
    expect(profiles.map((p) => [p.product, p.isDefault])).toEqual([[null, true], ['T-UNION', false]]);
  });

  it('loads the card: the reader selects the T-Union AID after the city-union one, key index 2, algorithm id 01, MACs and TAC under 3DES', async () => {
    const c = tUnionCard();
    const transport = watched(c);
    const { session, view, replies } = await run(gzIssuer, counter, 'LOAD', 3000, transport);
    expect(view.refusal ?? null).toBeNull();
    expect(view).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, oldBalance: 0, newBalance: 3000, amount: 3000, onlineCounter: 1 } });
    // The host told the reader the selection order: the city's card company's own AID first, then its T-Union product's.
    const first = JSON.parse(replies[0]!.hostMessage!.payload) as { commands: { apdu?: string; select?: unknown }[] };
    expect(first.commands[0]!.select).toEqual([{ kind: 'AID', aid: CITY_UNION_AID }, { kind: 'AID', aid: T_UNION_AID }]);
    expect(transport.sent.slice(0, 2)).toEqual([`00A4040009${CITY_UNION_AID}`, `00A4040008${T_UNION_AID}`]);
    // The first batch asked key index 1 (the city's default; the card answers 9403); the card's product profile then asked 2.
    expect(transport.sent.filter((a) => a.startsWith(INITIALIZE_FOR_LOAD)).map((a) => a.slice(10, 12))).toEqual(['01', '02']);
    expect((await auditOf(world, session.id)).map((a) => a.step)).toEqual(['open', 'hello', 'firstAnswers', 'firstAnswers', 'tacAnswer']);
    expect(await chipBalance(c, T_UNION_AID)).toBe(3000);
    expect(await purseBalance(world, c.asn)).toBe(3000n);

    // And pays at a shop with it: MAC1 under its 3DES purchase key, the card's MAC2 and TAC verified.
    const paid = watched(c);
    const purchase = await run(merchant, till, 'PURCHASE', 1200, paid);
    expect(purchase.view).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, oldBalance: 3000, newBalance: 1800, amount: 1200, offlineCounter: 1 } });
    expect(paid.sent.filter((a) => a.startsWith(INITIALIZE_FOR_PURCHASE)).map((a) => a.slice(10, 12))).toEqual(['01', '02']);
    expect(await chipBalance(c, T_UNION_AID)).toBe(1800);
    expect(await purseBalance(world, c.asn)).toBe(1800n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('after a proof round the card is asked again with its own profile: a T-Union card whose purchase answer was lost loads at its next tap', async () => {
    const c = tUnionCard();
    expect((await run(gzIssuer, counter, 'LOAD', 2000, watched(c))).view.state).toBe('COMPLETED');
    // The purchase's last message (the card's TAC, after the profile's second round) never reaches the host.
    const lost = await sessionsOf(merchant, () => till).open('PURCHASE', 500);
    await expect(sessionsOf(brokenRelay(merchant, 3, 'request'), () => till).agent(c).run(lost)).rejects.toThrow('connection lost');
    await expireSession(world, lost.id);
    expect(await chipBalance(c, T_UNION_AID)).toBe(1500);
    expect(await purseBalance(world, c.asn)).toBe(2000n);
    const transport = watched(c);
    const { session, view } = await run(gzIssuer, counter, 'LOAD', 300, transport);
    expect(view).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 1500, newBalance: 1800, amount: 300 } });
    expect((await auditOf(world, session.id)).map((a) => a.step)).toEqual(['open', 'hello', 'firstAnswers', 'firstAnswers', 'proofAnswer', 'firstAnswers', 'tacAnswer']);
    // Key index 1 only in the first batch (built before the card was known); 2 after the profile's restart and after the proof round.
    expect(transport.sent.filter((a) => a.startsWith(INITIALIZE_FOR_LOAD)).map((a) => a.slice(10, 12))).toEqual(['01', '02', '02']);
    expect(await purseBalance(world, c.asn)).toBe(1800n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('existing city-union cards are unchanged: found by the first AID, key index 1, one round', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 0 });
    const transport = watched(c);
    const { session, view } = await run(gzIssuer, counter, 'LOAD', 500, transport);
    expect(view).toMatchObject({ state: 'COMPLETED', result: { newBalance: 500 } });
    expect(transport.sent.filter((a) => a.startsWith('00A404'))).toEqual([`00A4040009${CITY_UNION_AID}`]);
    expect((await auditOf(world, session.id)).map((a) => a.step)).toEqual(['open', 'hello', 'firstAnswers', 'tacAnswer']);
  });
});

describe('status-word tolerances', () => {
  /** A card whose public data (READ BINARY, INS B0) comes back with the warning 62 82 instead of 90 00. */
  const warning6282 = (c: VirtualCpuCard) => watched(c, (apdu, response) => (apdu.startsWith('00B0') && response.endsWith('9000') ? `${response.slice(0, -4)}6282` : response));

  it('a 6282 warning is refused while the profile does not tolerate it, and read as success once it does', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 4321 });
    const before = await run(gzIssuer, counter, 'BALANCE', undefined, warning6282(c));
    expect(before.view).toMatchObject({ state: 'FAILED', refusal: 'CARD_ERROR' });

    const set = await setProfile(gzIssuer, { ...CITY_UNION, toleratedStatusWords: ['6282'] });
    expect(set.setCardProfile.userErrors).toEqual([]);
    const after = await run(gzIssuer, counter, 'BALANCE', undefined, warning6282(c));
    expect(after.view).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, balance: 4321 } });
    // A load too: every answer after the warning is read as the profile says.
    const load = await run(gzIssuer, counter, 'LOAD', 100, warning6282(c));
    expect(load.view).toMatchObject({ state: 'COMPLETED', result: { newBalance: 4421 } });
  });
});

describe('reading and setting profiles', () => {
  it('refuses what a reader could not act on, naming the field, and writes nothing', async () => {
    const before = await profilesOf(gzIssuer);
    const cases: [Record<string, unknown>, string, string[]][] = [
      [{ ...CITY_UNION, algorithmIds: [2] }, 'UNKNOWN_ALGORITHM_ID', ['input', 'algorithmIds', '0']],
      [{ ...CITY_UNION, selection: [{ kind: 'AID', value: 'A0000006' }] }, 'MALFORMED_AID', ['input', 'selection', '0', 'value']],
      [{ ...CITY_UNION, selection: [{ kind: 'AID', value: 'not-an-aid' }] }, 'MALFORMED_AID', ['input', 'selection', '0', 'value']],
      [{ ...CITY_UNION, publicDataSfi: 31 }, 'INVALID_SFI', ['input', 'publicDataSfi']],
      [{ ...CITY_UNION, transactionLogSfi: 0x15 }, 'INVALID_SFI', ['input', 'transactionLogSfi']],
      [{ ...CITY_UNION, toleratedStatusWords: ['9302'] }, 'INVALID_INPUT', ['input', 'toleratedStatusWords', '0']],
      [{ ...CITY_UNION, loadKeyIndex: 256 }, 'INVALID_INPUT', ['input', 'loadKeyIndex']],
      [{ ...CITY_UNION, selection: [{ kind: 'PATH', value: '3F00/10' }] }, 'INVALID_INPUT', ['input', 'selection', '0', 'value']],
      [{ ...CITY_UNION, m1: { purseSector: 1, valueBlock: 4, backupBlock: 7 } }, 'INVALID_INPUT', ['input', 'm1', 'backupBlock']],
      [{ ...T_UNION, selection: [{ kind: 'PSE', value: '1PAY.SYS.DDF01' }] }, 'INVALID_INPUT', ['input', 'selection']],
    ];
    for (const [input, code, field] of cases) {
      const result = await setProfile(gzIssuer, input);
      expect(result.setCardProfile.profile, JSON.stringify(input)).toBeNull();
      expect(result.setCardProfile.userErrors, JSON.stringify(input)).toContainEqual(expect.objectContaining({ code, field }));
    }
    expect(await profilesOf(gzIssuer)).toEqual(before);
  });

  it('takes every way of selection: PSE discovery and the 3F00/1001 path after the AIDs', async () => {
    const set = await setProfile(gzIssuer, { ...CITY_UNION, selection: [{ kind: 'AID', value: CITY_UNION_AID }, { kind: 'AID', value: T_UNION_AID }, { kind: 'PSE', value: '1PAY.SYS.DDF01' }, { kind: 'PATH', value: '3F00/1001' }] });
    expect(set.setCardProfile.userErrors).toEqual([]);
    expect(set.setCardProfile.profile!.selection).toEqual([
      { kind: 'AID', value: CITY_UNION_AID },
      { kind: 'AID', value: T_UNION_AID },
      { kind: 'PSE', value: '1PAY.SYS.DDF01' },
      { kind: 'PATH', value: '3F00/1001' },
    ]);
  });

  it('a card company reads and sets its own profiles only; the operator names the card company', async () => {
    const gzCompany = (await profilesOf(gzIssuer))[0]!.cardCompany as string;
    // Shenzhen's card company asking for Guangzhou's gets what a company that does not exist gets.
    expect(await profilesOf(szIssuer, gzCompany)).toEqual([]);
    const foreign = await setProfile(szIssuer, { ...CITY_UNION, cardCompany: gzCompany, loadKeyIndex: 9 });
    expect(foreign.setCardProfile).toMatchObject({ profile: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'cardCompany'] }] });
    expect((await profilesOf(gzIssuer))[0]!.loadKeyIndex).toBe(1);
    // Its own: its default, untouched by Guangzhou's changes.
    expect(await profilesOf(szIssuer)).toMatchObject([{ product: null, isDefault: true, loadKeyIndex: 1 }]);
    // The operator reads and sets any card company's, naming it.
    expect((await profilesOf(operator, gzCompany)).map((p) => p.product)).toEqual([null, 'T-UNION']);
    const byOperator = await setProfile(operator, { ...T_UNION, cardCompany: gzCompany, toleratedStatusWords: ['6283'] });
    expect(byOperator.setCardProfile.profile).toMatchObject({ product: 'T-UNION', toleratedStatusWords: ['6283'] });
    // A merchant may not.
    await expect(merchant.request(READ, {})).rejects.toThrow(/FORBIDDEN|not allowed|scope/i);
  });
});

describe('an M1 card of a card company that keeps its purse in sector 2 (its profile says so)', () => {
  /** An M1 session run by the SDK's reader agent. */
  async function runM1(by: OneCardClient, reader: TestReader, card: VirtualM1Card, operation: 'BALANCE' | 'LOAD', amount?: number): Promise<CardSessionView> {
    const opened = await by.request<{ openCardSession: { session: Parameters<ReaderAgent['run']>[0]; userErrors: unknown[] } }>(OPEN, { input: { reader: reader.id, operation, amount, cardType: 'M1' } });
    expect(opened.openCardSession.userErrors).toEqual([]);
    const agent = new ReaderAgent({ ...readerAgentOptions(reader), m1: card, send: async (input) => (await by.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input })).cardSessionMessage });
    return agent.run(opened.openCardSession.session);
  }

  it('is read and loaded in sector 2, blocks 9 and 10, under sector 2’s key; sector 1, the default, holds no purse on this card', async () => {
    const master = await storeM1MasterKey(world.db.orm.em.fork(), kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
    const set = await setProfile(gzIssuer, { ...CITY_UNION, m1: { purseSector: 2, valueBlock: 9, backupBlock: 10 } });
    expect(set.setCardProfile.userErrors).toEqual([]);
    expect(set.setCardProfile.profile!.m1).toEqual({ purseSector: 2, valueBlock: 9, backupBlock: 10, keyType: 'B', keyDerivation: 'UID_SECTOR_3DES' });

    const uid = 'C2D2E2F2';
    const card = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(master, Buffer.from(u), sector) }) });
    card.authenticate(9, 'B', m1SectorKeyB(master, Buffer.from(uid, 'hex'), 2));
    formatM1Purse(card, { sector: 2, valueBlock: 1, backupBlock: 2 }, 700);
    card.halt();

    expect(await runM1(gzIssuer, counter, card, 'BALANCE')).toMatchObject({ state: 'COMPLETED', result: { asn: uid, balance: 700 } });
    expect(await runM1(gzIssuer, counter, card, 'LOAD', 300)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 700, newBalance: 1000 } });
    card.authenticate(9, 'B', m1SectorKeyB(master, Buffer.from(uid, 'hex'), 2));
    expect(card.read(9)).toEqual(card.read(10));
    card.halt();
    // The ledger shadows what went through it: the load (the 700 the card held before OneCard knew it is a recorded discrepancy).
    expect(await purseBalance(world, uid)).toBe(300n);
  });

  it('refuses key A: no derivation of it is implemented', async () => {
    const refused = await setProfile(gzIssuer, { ...CITY_UNION, m1: { purseSector: 2, valueBlock: 9, backupBlock: 10, keyType: 'A' } });
    expect(refused.setCardProfile).toMatchObject({ profile: null, userErrors: [{ code: 'INVALID_INPUT', field: ['input', 'm1', 'keyType'] }] });
  });
});
