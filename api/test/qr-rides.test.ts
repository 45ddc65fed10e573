/**
 * QR-code rides (乘车码, issue 25 item 2) over real HTTP: the holder's app asks for a ride credential
 * bound to its device key, draws a fresh code, a scanner verifies it offline with the card company's
 * certificate and blocklist delta, then uploads a signed batch; the ride debits the wallet once and
 * clears like a card fare. Expired, replayed, blocklisted and forged codes are refused, by the
 * scanner offline and again by the host.
 */
import { createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawQrCode, type OneCardClient, QrScanner } from '../../sdk-js/src/index.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { offlineBatchSignedBytes } from '../src/settlement/offline-batch-signature.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { closeWindow } from '../src/settlement/windows.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { spendTopUp, topUpById } from '../src/topups/topups.service.js';
import { startRefund } from '../src/topups/top-up-moves.js';
import { merchantPayableAccount } from '../src/ledger/accounts.js';
import { freshCode, parseQrCode, signCredential } from '../src/wallets/qr-code.js';
import { blockCredentials, issueQrCredential } from '../src/wallets/qr-credentials.js';
import { hostKeyOfCity } from '../src/pki/host-key.js';
import { revokeCertificate } from '../src/pki/pki.service.js';
import { signatureHeader } from '../src/webhooks/webhook-signature.js';
import { addCity, apiClient, cardholderApp, kek, newReader, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const SECRET = 'sk_test_qr';
const WEBHOOK_SECRET = 'whsec_qr_rides_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [50, 100] });
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });
afterAll(async () => {
  await sandbox?.close();
});

type App = Awaited<ReturnType<typeof cardholderApp>>['app'];
type UserErrors = { code: string; field: string[]; message: string }[];
type Ride = { index: number; credential: string | null; counter: number | null; amount: number; outcome: string; accepted: boolean; reason: string; journalEntry: string | null };
type UploadReply = { uploadQrRideBatch: { batch: { id: string; rides: Ride[] } | null; replayed: boolean; userErrors: UserErrors } };

const WALLET = `id balance { amount } debt { amount } history { edges { node { kind balanceChange { amount } debtChange { amount } } } }`;
const OPEN = `mutation($input: OpenTransitWalletInput!) { openTransitWallet(input: $input) { wallet { id } userErrors { code message } } }`;
const TOP_UP = `mutation($input: CreateWalletTopUpInput!) { createWalletTopUp(input: $input) { topUp { id status } userErrors { code message } } }`;
const NODE = `query($id: ID!) { node(id: $id) { ... on WalletTopUp { status } ... on TransitWallet { ${WALLET} } } }`;
const ISSUE = `mutation($input: IssueQrCredentialInput!) { issueQrCredential(input: $input) { credential { id credentialId wallet validFrom validUntil blockedAt } signedCredential userErrors { code field message } } }`;
const BLOCK = `mutation($input: BlockQrCredentialInput!) { blockQrCredential(input: $input) { credential { id blockedAt } userErrors { code field message } } }`;
const SCANNER = `query($cardCompany: ID!, $after: Int) { qrScannerUpdate(cardCompany: $cardCompany, afterSequence: $after) { signingCertificates retiredSigningCertificates { certificate retiredAt usableUntil } blocked { credentialId sequence blockedAt } sequence } }`;
const SET_SCANNER = `mutation($input: SetQrScannerInput!) { setQrScanner(input: $input) { scanner { reader acceptsQrRides fareCap { amount currency } } userErrors { code field message } } }`;
const UPLOAD = `mutation($input: UploadQrRideBatchInput!) { uploadQrRideBatch(input: $input) { batch { id rides { index credential counter amount outcome accepted reason journalEntry } } replayed userErrors { code field message } } }`;

let gate: TestReader;
let bus: TestReader;
let issuer: OneCardClient;
let busOperator: OneCardClient;
let busOperatorId: string;
let gzManager: OneCardClient;

/** The card company registers a terminal as a QR scanner (the fare cap left to its default unless given). */
async function registerScanner(manager: OneCardClient, terminal: TestReader, fareCap?: number) {
  const set = await manager.request<{ setQrScanner: { userErrors: UserErrors } }>(SET_SCANNER, { input: { reader: terminal.id, acceptsQrRides: true, ...(fareCap === undefined ? {} : { fareCap }) } });
  expect(set.setQrScanner.userErrors).toEqual([]);
}

beforeAll(async () => {
  const transit = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'GZ QR Bus Group' });
  busOperatorId = transit.id;
  gate = await newReader(world, 'GZ-QR-GATE-1', world.gz);
  bus = await newReader(world, 'GZ-QR-BUS-7', world.gz, { kind: 'MERCHANT', id: transit.id });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  busOperator = await apiClient(world, 'MERCHANT', transit.id, ['payments:write']);
  gzManager = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage']);
  for (const scanner of [gate, bus]) await registerScanner(gzManager, scanner);
});

/** The app's device key pair; the public half as the uncompressed point the credential carries. */
function deviceKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return { privateKey, point: point.toString('base64url') };
}

async function waitForPaid(app: App, id: string) {
  for (let i = 0; i < 100; i++) {
    if ((await app.request<{ node: { status: string } }>(NODE, { id })).node.status === 'PAID') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`wallet top-up ${id} never became PAID`);
}

/** A holder with a wallet topped up with `amount` through the gateway, and a ride credential for a fresh device key. */
async function rider(username: string, amount: number) {
  const { app } = await cardholderApp(world, username);
  const wallet = (await app.request<{ openTransitWallet: { wallet: { id: string } } }>(OPEN, { input: { cardCompany: toGlobalId('CardCompany', world.gz.cardCompanyId) } })).openTransitWallet.wallet.id;
  if (amount > 0) await topUp(app, wallet, amount, `${username}-1`);
  const device = deviceKey();
  const issued = await app.request<{ issueQrCredential: { credential: { id: string; credentialId: string; validFrom: string; validUntil: string }; signedCredential: string; userErrors: UserErrors } }>(ISSUE, { input: { wallet, devicePublicKey: device.point } });
  expect(issued.issueQrCredential.userErrors).toEqual([]);
  let counter = 0;
  return {
    app,
    wallet,
    device,
    credential: issued.issueQrCredential.credential,
    signedCredential: issued.issueQrCredential.signedCredential,
    /** The code the app shows now, drawn by the SDK: a fresh part (time, next counter) signed by the device key. */
    draw: (at = new Date()) => drawQrCode(issued.issueQrCredential.signedCredential, device.privateKey, { time: at, counter: ++counter }),
  };
}

async function topUp(app: App, wallet: string, amount: number, key: string) {
  const made = await app.request<{ createWalletTopUp: { topUp: { id: string }; userErrors: UserErrors } }>(TOP_UP, { input: { wallet, amount, idempotencyKey: key, paymentMethod: 'pm_card_visa' } });
  expect(made.createWalletTopUp.userErrors).toEqual([]);
  await waitForPaid(app, made.createWalletTopUp.topUp.id);
  return made.createWalletTopUp.topUp.id;
}

type Wallet = { balance: { amount: number }; debt: { amount: number }; history: { edges: { node: { kind: string; balanceChange: { amount: number }; debtChange: { amount: number } } }[] } };
const walletNow = async (app: App, id: string) => (await app.request<{ node: Wallet }>(NODE, { id })).node;

/** The scanner: the SDK's offline verifier, fed by qrScannerUpdate deltas, pinning its city's working CA. */
class Scanner {
  private readonly sdk = new QrScanner();
  get sequence() {
    return this.sdk.sequence;
  }

  async refresh() {
    const { qrScannerUpdate: u } = await issuer.request<{ qrScannerUpdate: { signingCertificates: string[]; retiredSigningCertificates: { certificate: string; retiredAt: string; usableUntil: string }[]; blocked: { credentialId: string; sequence: number }[]; sequence: number } }>(SCANNER, { cardCompany: toGlobalId('CardCompany', world.gz.cardCompanyId), after: this.sdk.sequence });
    const [ca] = await world.db.orm.em.fork().execute<{ certificate_pem: string }[]>(`select certificate_pem from certificate_authority where kind = 'CITY' and city_id = ?`, [world.gz.cityId]);
    this.sdk.apply(u, ca!.certificate_pem);
    return u;
  }

  verify(code: string, at = new Date()) {
    return this.sdk.verify(code, at);
  }
}

function signedBatch(terminal: TestReader, batchId: string, rides: { code: string; scannedAt: string; amount: number }[]) {
  const body = JSON.stringify({ kind: 'qr-rides', rides });
  const signature = createSign('sha256').update(offlineBatchSignedBytes(terminal.id, batchId, body)).sign(terminal.deviceKeyPem).toString('base64');
  return { terminal: terminal.id, batchId, body, signature, certificate: terminal.cityPem };
}

const upload = (client: OneCardClient, input: ReturnType<typeof signedBatch>) => client.request<UploadReply>(UPLOAD, { input });
const scan = (code: string, amount: number, at = new Date()) => ({ code, scannedAt: at.toISOString(), amount });

async function ridesBooked(credentialId: string) {
  return Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from journal_entry where entry_key like ?`, [`qr-ride:${credentialId}:%`]))[0]!.n);
}

describe('QR rides', () => {
  it('a ride end to end: credential, scan verified offline, signed upload, wallet debit, clearing and settlement', async () => {
    const r = await rider('qr-end-to-end', 1000);
    const scanner = new Scanner();
    await scanner.refresh();
    const code = r.draw();
    const offline = scanner.verify(code);
    expect(offline.ok).toBe(true);

    const reply = await upload(busOperator, signedBatch(bus, 'bus-7-0001', [scan(code, 200)]));
    expect(reply.uploadQrRideBatch.userErrors).toEqual([]);
    const [ride] = reply.uploadQrRideBatch.batch!.rides;
    expect(ride).toMatchObject({ outcome: 'ACCEPTED', accepted: true, amount: 200, counter: 1, credential: r.credential.id });

    const wallet = await walletNow(r.app, r.wallet);
    expect(wallet.balance.amount).toBe(800);
    expect(wallet.history.edges[0]!.node).toEqual({ kind: 'QR_RIDE', balanceChange: { amount: -200 }, debtChange: { amount: 0 } });

    // It clears like a card fare: a TRANSIT item for the bus operator, settled in its city's window.
    const em = world.db.orm.em.fork();
    const [item] = await em.execute<{ kind: string; participant_id: string; card_company_id: string; amount: string; business_day: string; window_id: string }[]>(
      `select kind, participant_id, card_company_id, amount::text as amount, business_day::text as business_day, window_id from clearing_item where entry_key like ?`,
      [`qr-ride:${r.credential.credentialId}:1:%`],
    );
    expect(item).toMatchObject({ kind: 'TRANSIT', participant_id: busOperatorId, card_company_id: world.gz.cardCompanyId, amount: '200' });
    const tomorrow = new Date(Date.now() + 36 * 3600_000);
    const window = await closeWindow(em, { cityId: world.gz.cityId, businessDay: item!.business_day, closedBy: 'test', cutoff: '02:00', now: tomorrow });
    const batch = await clearWindow(em, window.id);
    const [line] = await em.execute<{ gross: string; sales_count: string }[]>(`select gross::text as gross, sales_count::text as sales_count from settlement_line where batch_id = ? and participant_id = ?`, [batch.id, busOperatorId]);
    expect(line).toEqual({ gross: '200', sales_count: '1' });
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a ride at another city’s gate makes interchange, as a card fare does (互联互通)', async () => {
    const r = await rider('qr-interchange', 1000);
    const szGate = await newReader(world, 'SZ-QR-GATE-1', world.sz);
    const szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['topups:write', 'readers:manage']);
    await registerScanner(szIssuer, szGate);
    const reply = await upload(szIssuer, signedBatch(szGate, 'sz-gate-0001', [scan(r.draw(), 300)]));
    expect(reply.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'ACCEPTED' });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(700);
    const em = world.db.orm.em.fork();
    const [item] = await em.execute<{ city_id: string; participant_id: string; card_company_id: string; business_day: string }[]>(
      `select city_id, participant_id, card_company_id, business_day::text as business_day from clearing_item where entry_key like ?`,
      [`qr-ride:${r.credential.credentialId}:%`],
    );
    expect(item).toMatchObject({ city_id: world.sz.cityId, participant_id: world.sz.cardCompanyId, card_company_id: world.gz.cardCompanyId });
    const window = await closeWindow(em, { cityId: world.sz.cityId, businessDay: item!.business_day, closedBy: 'test', cutoff: '02:00', now: new Date(Date.now() + 36 * 3600_000) });
    const batch = await clearWindow(em, window.id);
    const positions = await em.execute<{ issuer_id: string; acquirer_id: string; count: string; gross: string }[]>(`select issuer_id, acquirer_id, count::text as count, gross::text as gross from interchange_position where batch_id = ?`, [batch.id]);
    // The wallet's card company (GZ) owes the card company whose gate the rider passed (SZ).
    expect(positions).toEqual([{ issuer_id: world.gz.cardCompanyId, acquirer_id: world.sz.cardCompanyId, count: '1', gross: '300' }]);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a replayed code is booked once: the same code again, in this batch or another, the same batch again', async () => {
    const r = await rider('qr-replay', 1000);
    const code = r.draw();
    const batch = signedBatch(gate, 'gate-replay-1', [scan(code, 300), scan(code, 300)]);
    const first = await upload(issuer, batch);
    expect(first.uploadQrRideBatch.batch!.rides.map((x) => x.outcome)).toEqual(['ACCEPTED', 'DUPLICATE']);
    // Another scanner was shown the same code (a screenshot passed on within seconds).
    const elsewhere = await upload(busOperator, signedBatch(bus, 'bus-replay-1', [scan(code, 150)]));
    expect(elsewhere.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'DUPLICATE', accepted: false, journalEntry: null });
    const again = await upload(issuer, batch);
    expect(again.uploadQrRideBatch).toMatchObject({ replayed: true, batch: { id: first.uploadQrRideBatch.batch!.id } });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(700);
    expect(await ridesBooked(r.credential.credentialId)).toBe(1);
  });

  it('the same counter drawn again at another time is another ride: booked, and the credential blocked as a cloned or modified app', async () => {
    const r = await rider('qr-counter-reuse', 1000);
    // A credential issued an hour ago, so that both scans, ten minutes apart, fall inside its window and not in the future.
    const em = world.db.orm.em.fork();
    const walletUuid = Buffer.from(r.wallet, 'base64url').toString().split(':')[1]!;
    const [{ holder_id: holderId }] = (await em.execute<{ holder_id: string }[]>(`select holder_id from transit_wallet where id = ?`, [walletUuid])) as [{ holder_id: string }];
    const appPrincipal = { kind: 'CARDHOLDER_APP' as const, clientId: 'test-app', tenantId: world.gz.cardCompanyId, holderId, scopes: ['card:topup'] };
    const device = deviceKey();
    const now = new Date();
    const issued = await issueQrCredential(em, { kek, publicUrl: world.server.url, now: new Date(+now - 3600_000) }, appPrincipal, { walletId: walletUuid, devicePublicKey: device.point });
    // The app picks the counter: a modified one draws every code with counter 7 and a fresh time.
    const t0 = new Date(+now - 20 * 60_000);
    const t1 = new Date(+t0 + 10 * 60_000);
    const first = await upload(issuer, signedBatch(gate, 'gate-counter-1', [scan(drawQrCode(issued.code, device.privateKey, { time: t0, counter: 7 }), 200, t0)]));
    const second = await upload(busOperator, signedBatch(bus, 'bus-counter-1', [scan(drawQrCode(issued.code, device.privateKey, { time: t1, counter: 7 }), 300, t1)]));
    expect([first, second].map((x) => x.uploadQrRideBatch.batch!.rides[0]!.outcome)).toEqual(['ACCEPTED', 'ACCEPTED']);
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(500);
    expect(await ridesBooked(issued.id)).toBe(2);
    expect((await new Scanner().refresh()).blocked.map((b) => b.credentialId)).toContain(issued.id);
    // The very same code again is still a duplicate.
    const again = await upload(issuer, signedBatch(gate, 'gate-counter-2', [scan(drawQrCode(issued.code, device.privateKey, { time: t0, counter: 7 }), 200, t0)]));
    expect(again.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'DUPLICATE', accepted: false });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(500);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a counter past 2^31 (counters are uint32) is answered as it is', async () => {
    const r = await rider('qr-big-counter', 1000);
    const reply = await upload(issuer, signedBatch(gate, 'gate-big-counter-1', [scan(drawQrCode(r.signedCredential, r.device.privateKey, { time: new Date(), counter: 4_000_000_000 }), 100)]));
    expect(reply.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'ACCEPTED', counter: 4_000_000_000 });
  });

  it('two uploads of the same ride at once book it once', async () => {
    const r = await rider('qr-concurrent', 1000);
    const code = r.draw();
    const [a, b] = await Promise.all([upload(issuer, signedBatch(gate, 'gate-race-1', [scan(code, 250)])), upload(busOperator, signedBatch(bus, 'bus-race-1', [scan(code, 250)]))]);
    const outcomes = [a, b].map((x) => x.uploadQrRideBatch.batch!.rides[0]!.outcome).sort();
    expect(outcomes).toEqual(['ACCEPTED', 'DUPLICATE']);
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(750);
    expect(await ridesBooked(r.credential.credentialId)).toBe(1);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('two batches riding the same two wallets in opposite orders, uploaded at once, both book (no deadlock)', async () => {
    const [a, b] = [await rider('qr-order-a', 1000), await rider('qr-order-b', 1000)];
    const rides = [a.draw(), b.draw(), a.draw(), b.draw()];
    const forward = signedBatch(gate, 'gate-order-1', rides.map((code) => scan(code, 100)));
    const backward = signedBatch(bus, 'bus-order-1', [...rides].reverse().map((code) => scan(code, 100)).concat([scan(b.draw(), 100), scan(a.draw(), 100)]));
    const [one, two] = await Promise.all([upload(issuer, forward), upload(busOperator, backward)]);
    expect([one, two].map((x) => x.uploadQrRideBatch.userErrors)).toEqual([[], []]);
    const outcomes = [...one.uploadQrRideBatch.batch!.rides, ...two.uploadQrRideBatch.batch!.rides].map((x) => x.outcome);
    // Six rides, four of them in both batches: each booked once.
    expect(outcomes.filter((o) => o === 'ACCEPTED')).toHaveLength(6);
    expect(outcomes.filter((o) => o === 'DUPLICATE')).toHaveLength(4);
    expect([(await walletNow(a.app, a.wallet)).balance.amount, (await walletNow(b.app, b.wallet)).balance.amount]).toEqual([700, 700]);
  });

  it('a blocklisted credential is refused by the scanner (from the delta) and by the host', async () => {
    const r = await rider('qr-blocked', 1000);
    const scanner = new Scanner();
    await scanner.refresh();
    const before = scanner.sequence;
    const blocked = await r.app.request<{ blockQrCredential: { credential: { blockedAt: string | null }; userErrors: UserErrors } }>(BLOCK, { input: { credential: r.credential.id, reason: 'phone lost' } });
    expect(blocked.blockQrCredential.userErrors).toEqual([]);
    expect(blocked.blockQrCredential.credential.blockedAt).not.toBeNull();
    // The delta names exactly the new entry.
    const delta = await scanner.refresh();
    expect(delta.blocked.map((b) => b.credentialId)).toEqual([r.credential.credentialId]);
    expect(delta.sequence).toBeGreaterThan(before);
    const code = r.draw();
    expect(scanner.verify(code)).toMatchObject({ ok: false, refusal: 'BLOCKED' });
    // A scanner that had not fetched the delta let it through: the host refuses to book it.
    const reply = await upload(issuer, signedBatch(gate, 'gate-blocked-1', [scan(code, 200)]));
    expect(reply.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'BLOCKED', accepted: false });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(1000);
    // Another holder cannot block it, nor see that it exists.
    const other = await rider('qr-blocked-other', 0);
    const refused = await other.app.request<{ blockQrCredential: { userErrors: UserErrors } }>(BLOCK, { input: { credential: r.credential.id, reason: 'not mine' } });
    expect(refused.blockQrCredential.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });

  it('a blocklist entry whose transaction commits after a later one’s is still in the next delta: no entry is skipped', async () => {
    const early = await rider('qr-late-block-early', 1000);
    const later = await rider('qr-late-block-later', 1000);
    const scanner = new Scanner();
    await scanner.refresh();
    // A transaction (a ride batch, say) blocks one credential and is still running…
    let commit!: () => void;
    const mayCommit = new Promise<void>((resolve) => (commit = resolve));
    let blocked!: () => void;
    const inserted = new Promise<void>((resolve) => (blocked = resolve));
    const slow = world.db.orm.em.fork().transactional(async (tx) => {
      await blockCredentials(tx, [early.credential.credentialId], 'blocked by a transaction that commits late');
      blocked();
      await mayCommit;
    });
    await inserted;
    // …while a block that starts later commits first, and the scanner takes the delta in between.
    const block = await later.app.request<{ blockQrCredential: { userErrors: UserErrors } }>(BLOCK, { input: { credential: later.credential.id, reason: 'lost phone' } });
    expect(block.blockQrCredential.userErrors).toEqual([]);
    expect((await scanner.refresh()).blocked.map((b) => b.credentialId)).toContain(later.credential.credentialId);
    commit();
    await slow;
    // The next delta, after the sequence the scanner holds, carries the late one.
    expect((await scanner.refresh()).blocked.map((b) => b.credentialId)).toContain(early.credential.credentialId);
    expect(scanner.verify(early.draw())).toMatchObject({ ok: false, refusal: 'BLOCKED' });
  });

  it('refuses expired and forged codes, offline and on upload, and books none of them', async () => {
    const r = await rider('qr-refusals', 1000);
    const scanner = new Scanner();
    await scanner.refresh();
    const now = new Date();
    // A credential the card company signed 7 hours ago: its 6-hour window has run out.
    const oldDevice = deviceKey();
    const walletUuid = Buffer.from(r.wallet, 'base64url').toString().split(':')[1]!;
    const [{ holder_id: holderId }] = (await world.db.orm.em.fork().execute<{ holder_id: string }[]>(`select holder_id from transit_wallet where id = ?`, [walletUuid])) as [{ holder_id: string }];
    const appPrincipal = { kind: 'CARDHOLDER_APP' as const, clientId: 'test-app', tenantId: world.gz.cardCompanyId, holderId, scopes: ['card:topup'] };
    const old = await issueQrCredential(world.db.orm.em.fork(), { kek, publicUrl: world.server.url, now: new Date(+now - 7 * 3600_000) }, appPrincipal, { walletId: walletUuid, devicePublicKey: oldDevice.point });
    // An attacker's own P-256 key signs the same credential, with a month more validity.
    const genuine = parseQrCode(r.draw())!.credential;
    const forgedCredential = signCredential({ ...genuine, validUntil: new Date(+genuine.validUntil + 30 * 86_400_000) }, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const parts = r.signedCredential.split('.');
    const credentialBytes = Buffer.from(parts[1]!, 'base64url');
    // The genuine credential with its validity stretched in the bytes (the signature no longer matches).
    const stretched = Buffer.from(credentialBytes);
    stretched.writeUInt32BE(stretched.readUInt32BE(69) + 30 * 86_400, 69);
    const tampered = [parts[0], stretched.toString('base64url'), parts[2]].join('.');

    const cases: [string, string, Date, string][] = [
      ['a screenshot: the fresh part drawn 2 minutes before the scan', r.draw(new Date(+now - 120_000)), now, 'EXPIRED'],
      ['a credential past its validity window', freshCode(old.code, oldDevice.privateKey, now, 1), now, 'EXPIRED'],
      ['a credential signed by another key', freshCode(forgedCredential, r.device.privateKey, now, 1), now, 'FORGED'],
      ['a genuine credential with its bytes changed', freshCode(tampered, r.device.privateKey, now, 1), now, 'FORGED'],
      ['a fresh part signed by another device key', freshCode(r.signedCredential, deviceKey().privateKey, now, 99), now, 'FORGED'],
      ['not a code at all', 'OCQR1.bm90.YQ.YQ.YQ', now, 'FORGED'],
    ];
    const failures: string[] = [];
    for (const [name, code, at, refusal] of cases) {
      const offline = scanner.verify(code, at);
      if (offline.ok || offline.refusal !== refusal) failures.push(`${name}: the scanner answered ${JSON.stringify(offline.ok ? 'ok' : offline.refusal)}`);
    }
    const reply = await upload(issuer, signedBatch(gate, 'gate-refusals-1', cases.map(([, code, at]) => scan(code, 200, at))));
    reply.uploadQrRideBatch.batch!.rides.forEach((ride, i) => {
      if (ride.outcome !== cases[i]![3] || ride.accepted || ride.journalEntry) failures.push(`${cases[i]![0]}: the host answered ${ride.outcome}`);
    });
    expect(failures).toEqual([]);
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(1000);
    expect(await ridesBooked(r.credential.credentialId)).toBe(0);
    expect(await ridesBooked(old.id)).toBe(0);
  });

  it('a ride the wallet does not cover runs up debt within the limit, and the next top-up clears it', async () => {
    const r = await rider('qr-debt', 100);
    const reply = await upload(issuer, signedBatch(gate, 'gate-debt-1', [scan(r.draw(), 300)]));
    expect(reply.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'DEBT', accepted: true });
    let wallet = await walletNow(r.app, r.wallet);
    expect([wallet.balance.amount, wallet.debt.amount]).toEqual([0, 200]);
    // Past the limit (20.00): not booked, and the wallet's credentials go on the blocklist.
    const over = await upload(issuer, signedBatch(gate, 'gate-debt-2', [scan(r.draw(), 1900)]));
    expect(over.uploadQrRideBatch.batch!.rides[0]).toMatchObject({ outcome: 'DEBT_LIMIT_EXCEEDED', accepted: false });
    expect((await new Scanner().refresh()).blocked.map((b) => b.credentialId)).toContain(r.credential.credentialId);
    await topUp(r.app, r.wallet, 500, 'qr-debt-2');
    wallet = await walletNow(r.app, r.wallet);
    expect([wallet.balance.amount, wallet.debt.amount]).toEqual([300, 0]);
    expect(wallet.history.edges[0]!.node).toEqual({ kind: 'TOP_UP_PAID', balanceChange: { amount: 300 }, debtChange: { amount: -200 } });
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('the card company sets a wallet’s debt limit, within bounds: rides then run up debt to the new limit, no further', async () => {
    const r = await rider('qr-debt-limit', 0);
    const SET_LIMIT = `mutation($input: SetWalletDebtLimitInput!) { setWalletDebtLimit(input: $input) { wallet { id debtLimit { amount } } userErrors { code field } } }`;
    type SetLimit = { setWalletDebtLimit: { wallet: { debtLimit: { amount: number } } | null; userErrors: { code: string; field: string[] }[] } };
    const set = (client: OneCardClient, debtLimit: number) => client.request<SetLimit>(SET_LIMIT, { input: { wallet: r.wallet, debtLimit } });
    for (const bad of [-1, 10_001]) expect((await set(issuer, bad)).setWalletDebtLimit.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'debtLimit'] }]);
    const szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['topups:write']);
    expect((await set(szIssuer, 5_000)).setWalletDebtLimit.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'wallet'] }]);
    // The holder's app may not raise its own limit (refused FORBIDDEN: not allowed for a cardholder app).
    await expect(r.app.request(SET_LIMIT, { input: { wallet: r.wallet, debtLimit: 10_000 } })).rejects.toThrow(/Not allowed for a CARDHOLDER_APP/);
    // Raised to 30.00: a 25.00 ride the default 20.00 would refuse is booked as debt; then nothing past 30.00.
    expect((await set(issuer, 3_000)).setWalletDebtLimit).toEqual({ wallet: { id: r.wallet, debtLimit: { amount: 3_000 } }, userErrors: [] });
    expect((await upload(issuer, signedBatch(gate, 'gate-limit-1', [scan(r.draw(), 2_500), scan(r.draw(), 600)]))).uploadQrRideBatch.batch!.rides.map((x) => x.outcome)).toEqual(['DEBT', 'DEBT_LIMIT_EXCEEDED']);
    expect((await walletNow(r.app, r.wallet)).debt.amount).toBe(2_500);
    // Lowered to 0 after a top-up clears the debt: rides only from what the wallet holds.
    await topUp(r.app, r.wallet, 3_000, 'qr-debt-limit-1');
    expect((await set(issuer, 0)).setWalletDebtLimit.userErrors).toEqual([]);
    const r2 = await r.app.request<{ issueQrCredential: { signedCredential: string; userErrors: UserErrors } }>(ISSUE, { input: { wallet: r.wallet, devicePublicKey: r.device.point } });
    expect(r2.issueQrCredential.userErrors).toEqual([]);
    let counter = 0;
    const draw = () => drawQrCode(r2.issueQrCredential.signedCredential, r.device.privateKey, { time: new Date(), counter: ++counter });
    expect((await upload(issuer, signedBatch(gate, 'gate-limit-2', [scan(draw(), 500), scan(draw(), 100)]))).uploadQrRideBatch.batch!.rides.map((x) => x.outcome)).toEqual(['ACCEPTED', 'DEBT_LIMIT_EXCEEDED']);
    expect([(await walletNow(r.app, r.wallet)).balance.amount, (await walletNow(r.app, r.wallet)).debt.amount]).toEqual([0, 0]);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a wallet with a ride refused at its debt limit gets no new credential until a top-up', async () => {
    const r = await rider('qr-debt-reissue', 0);
    // 19.00 of the 20.00 limit owed, then a 2.00 ride it cannot cover: refused, credentials blocked.
    expect((await upload(issuer, signedBatch(gate, 'gate-reissue-1', [scan(r.draw(), 1900)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('DEBT');
    expect((await upload(issuer, signedBatch(gate, 'gate-reissue-2', [scan(r.draw(), 200)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('DEBT_LIMIT_EXCEEDED');
    // A new device key does not get round the block: 1.00 of allowance is left, less than the fare refused.
    const issue = () => r.app.request<{ issueQrCredential: { credential: { id: string } | null; userErrors: UserErrors } }>(ISSUE, { input: { wallet: r.wallet, devicePublicKey: deviceKey().point } });
    expect((await issue()).issueQrCredential).toMatchObject({ credential: null, userErrors: [{ code: 'INSUFFICIENT_FUNDS' }] });
    await topUp(r.app, r.wallet, 500, 'qr-debt-reissue-1');
    const again = await issue();
    expect(again.issueQrCredential.userErrors).toEqual([]);
    expect(again.issueQrCredential.credential).not.toBeNull();
  });

  it('a scanner takes signing certificates only from the CA it pins', async () => {
    const { qrScannerUpdate: update } = await issuer.request<{ qrScannerUpdate: { signingCertificates: string[]; blocked: { credentialId: string; sequence: number }[]; sequence: number } }>(SCANNER, { cardCompany: toGlobalId('CardCompany', world.gz.cardCompanyId), after: 0 });
    const [sz] = await world.db.orm.em.fork().execute<{ certificate_pem: string }[]>(`select certificate_pem from certificate_authority where kind = 'CITY' and city_id = ?`, [world.sz.cityId]);
    expect(() => new QrScanner().apply(update, sz!.certificate_pem)).toThrow(/does not chain/);
    // A chain whose signing certificate was swapped for another (the SZ CA's own) does not link up.
    expect(() => new QrScanner().apply({ ...update, signingCertificates: [sz!.certificate_pem, update.signingCertificates[1]!] }, update.signingCertificates[1]!)).toThrow(/not issued by the next one/);
  });

  it('a top-up that rides spent part of is not refunded: the wallet keeps what it holds', async () => {
    const r = await rider('qr-refund', 0);
    const topUpId = await topUp(r.app, r.wallet, 500, 'qr-refund-1');
    expect((await upload(issuer, signedBatch(gate, 'gate-refund-1', [scan(r.draw(), 100)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('ACCEPTED');
    const refund = await r.app.request<{ refundWalletTopUp: { topUp: unknown; userErrors: UserErrors } }>(`mutation($input: RefundWalletTopUpInput!) { refundWalletTopUp(input: $input) { topUp { status } userErrors { code field message } } }`, { input: { topUp: topUpId, idempotencyKey: 'qr-refund-r1' } });
    expect(refund.refundWalletTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'NOT_REFUNDABLE' }] });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(400);
  });

  it('a refund the gateway made late of a top-up rides have spent: a conflict for a person, answered 200, nothing booked', async () => {
    const r = await rider('qr-late-refund', 0);
    const topUpId = await topUp(r.app, r.wallet, 500, 'qr-late-refund-1');
    expect((await upload(issuer, signedBatch(gate, 'gate-late-refund-1', [scan(r.draw(), 200)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('ACCEPTED');
    const em = world.db.orm.em.fork();
    const topUpUuid = Buffer.from(topUpId, 'base64url').toString().split(':')[1]!;
    const [{ gateway_intent_id: intent }] = (await em.execute<{ gateway_intent_id: string }[]>(`select gateway_intent_id from top_up where id = ?`, [topUpUuid])) as [{ gateway_intent_id: string }];
    // The gateway refunded an attempt we took for refused, and says so only now that rides spent the value.
    const eventId = 'evt_qr_late_refund';
    const refund = { id: 're_qr_late_refund', object: 'refund', amount: 500, currency: 'cny', payment_intent: intent, status: 'succeeded', metadata: { topUpId: topUpUuid, attempt: randomUUID() }, created: 0 };
    const body = JSON.stringify({ id: eventId, object: 'event', type: 'refund.succeeded', created: Math.floor(Date.now() / 1000), data: { object: refund } });
    const res = await fetch(`${world.server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], body, Math.floor(Date.now() / 1000)) }, body });
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 200, body: { outcome: 'conflict' } });
    const [event] = await em.execute<{ outcome: string }[]>(`select outcome from gateway_event where id = ?`, [eventId]);
    expect(event?.outcome).toBe('conflict');
    expect((await r.app.request<{ node: { status: string } }>(NODE, { id: topUpId })).node.status).toBe('PAID');
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(300);
    const [{ n }] = (await em.execute<{ n: string }[]>(`select count(*) as n from journal_entry where entry_key like ?`, [`top-up:${topUpUuid}:refund:%`])) as [{ n: string }];
    expect(n).toBe('0');
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a wallet refund the gateway failed puts the value back as a top-up does: the debt rides ran up meanwhile first, then the balance', async () => {
    const r = await rider('qr-refund-failed', 0);
    const topUpId = await topUp(r.app, r.wallet, 500, 'qr-refund-failed-1');
    const topUpUuid = Buffer.from(topUpId, 'base64url').toString().split(':')[1]!;
    // The refund asked for and not answered yet (REFUNDING): the value has left the wallet.
    const em = world.db.orm.em.fork();
    const attempt = randomUUID();
    await em.transactional(async (tx) => startRefund(tx, (await topUpById(tx, topUpUuid, true))!, attempt, 'refund asked, the gateway has not answered'));
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(0);
    // Meanwhile a ride runs the wallet into debt.
    expect((await upload(issuer, signedBatch(gate, 'gate-refund-failed-1', [scan(r.draw(), 300)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('DEBT');
    // The gateway says the refund failed: the 500 comes back, 300 of it clearing the debt.
    const [{ gateway_intent_id: intent }] = (await em.execute<{ gateway_intent_id: string }[]>(`select gateway_intent_id from top_up where id = ?`, [topUpUuid])) as [{ gateway_intent_id: string }];
    const refund = { id: 're_qr_refund_failed', object: 'refund', amount: 500, currency: 'cny', payment_intent: intent, status: 'failed', failure_reason: 'expired_or_canceled_card', metadata: { topUpId: topUpUuid, attempt }, created: 0 };
    const body = JSON.stringify({ id: 'evt_qr_refund_failed', object: 'event', type: 'refund.updated', created: Math.floor(Date.now() / 1000), data: { object: refund } });
    const res = await fetch(`${world.server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], body, Math.floor(Date.now() / 1000)) }, body });
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 200, body: { outcome: 'applied' } });
    expect((await r.app.request<{ node: { status: string } }>(NODE, { id: topUpId })).node.status).toBe('PAID');
    const wallet = await walletNow(r.app, r.wallet);
    expect([wallet.balance.amount, wallet.debt.amount]).toEqual([200, 0]);
    expect(wallet.history.edges[0]!.node).toEqual({ kind: 'TOP_UP_REFUND_FAILED', balanceChange: { amount: 200 }, debtChange: { amount: -300 } });
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a wallet top-up cannot be spent as a card’s pending load (its value is in the wallet)', async () => {
    const r = await rider('qr-spend-guard', 0);
    const topUpUuid = Buffer.from(await topUp(r.app, r.wallet, 500, 'qr-spend-guard-1'), 'base64url').toString().split(':')[1]!;
    const em = world.db.orm.em.fork();
    const spend = em.transactional(async (tx) =>
      spendTopUp(tx, (await topUpById(tx, topUpUuid, true))!, { toAccountId: (await merchantPayableAccount(tx, busOperatorId, 'CNY')).id, key: `spend-guard:${topUpUuid}`, description: 'a bill', metadata: {}, spentOn: 'a bill' }),
    );
    await expect(spend).rejects.toMatchObject({ code: 'NOT_REFUNDABLE' });
    const [{ status }] = (await em.execute<{ status: string }[]>(`select status from top_up where id = ?`, [topUpUuid])) as [{ status: string }];
    expect(status).toBe('PAID');
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(500);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('only a terminal the card company registered as a QR scanner uploads rides, and a fare above its cap is refused per ride, not booked', async () => {
    const r = await rider('qr-fare-cap', 1000);
    // A bus company's shop till: a certified terminal, never registered for QR rides.
    const till = await newReader(world, 'GZ-QR-SHOP-TILL', world.gz, { kind: 'MERCHANT', id: busOperatorId });
    const unregistered = await upload(busOperator, signedBatch(till, 'till-0001', [scan(r.draw(), 200)]));
    expect(unregistered.uploadQrRideBatch).toMatchObject({ batch: null, replayed: false, userErrors: [{ code: 'QR_SCANNER_NOT_REGISTERED', field: ['input', 'terminal'] }] });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(1000);

    // The merchant cannot make its own terminal a scanner; another city's card company does not see it; a cap is 1 to 1,000.00.
    await expect(busOperator.request(SET_SCANNER, { input: { reader: till.id, acceptsQrRides: true } })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const szManager = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['readers:manage']);
    expect((await szManager.request<{ setQrScanner: { userErrors: UserErrors } }>(SET_SCANNER, { input: { reader: till.id, acceptsQrRides: true } })).setQrScanner.userErrors).toMatchObject([{ code: 'NOT_FOUND', field: ['input', 'reader'] }]);
    for (const fareCap of [0, 100_001]) {
      expect((await gzManager.request<{ setQrScanner: { userErrors: UserErrors } }>(SET_SCANNER, { input: { reader: till.id, acceptsQrRides: true, fareCap } })).setQrScanner.userErrors).toMatchObject([{ code: 'INVALID_INPUT', field: ['input', 'fareCap'] }]);
    }

    // Registered with a flat 3.00 fare cap: a ride at the cap is booked, one above it is refused on its own.
    const set = await gzManager.request<{ setQrScanner: { scanner: unknown; userErrors: UserErrors } }>(SET_SCANNER, { input: { reader: till.id, acceptsQrRides: true, fareCap: 300 } });
    expect(set.setQrScanner).toEqual({ scanner: { reader: till.id, acceptsQrRides: true, fareCap: { amount: 300, currency: 'CNY' } }, userErrors: [] });
    const capped = await upload(busOperator, signedBatch(till, 'till-0002', [scan(r.draw(), 300), scan(r.draw(), 301)]));
    expect(capped.uploadQrRideBatch.batch!.rides.map((x) => [x.outcome, x.accepted, x.journalEntry === null])).toEqual([
      ['ACCEPTED', true, false],
      ['FARE_ABOVE_CAP', false, true],
    ]);
    expect(capped.uploadQrRideBatch.batch!.rides[1]!.reason).toContain('300');
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(700);

    // Taken off the scanners: refused whole again.
    const off = await gzManager.request<{ setQrScanner: { scanner: unknown; userErrors: UserErrors } }>(SET_SCANNER, { input: { reader: till.id, acceptsQrRides: false } });
    expect(off.setQrScanner).toMatchObject({ scanner: { acceptsQrRides: false, fareCap: null }, userErrors: [] });
    expect((await upload(busOperator, signedBatch(till, 'till-0003', [scan(r.draw(), 200)]))).uploadQrRideBatch.userErrors.map((e) => e.code)).toEqual(['QR_SCANNER_NOT_REGISTERED']);
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(700);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('after a host key rotation, the codes the retired key signed ride until they run out; what it signs after retirement, or is scanned after they ran out, is FORGED', async () => {
    const r = await rider('qr-rotation', 1000);
    const em = world.db.orm.em.fork();
    const retiredKey = (await hostKeyOfCity(em, kek, world.gz.cityId, world.server.url)).privateKey;
    const [ca] = await em.execute<{ id: string }[]>(`select id from certificate_authority where kind = 'CITY' and city_id = ?`, [world.gz.cityId]);
    const [old] = await em.execute<{ certificate_serial: string }[]>(`select certificate_serial from host_signing_key where ca_id = ?`, [ca!.id]);
    // Retired as docs/readers.md says: its certificate revoked, its row dropped; the next credential is signed by a new key.
    await revokeCertificate(em, old!.certificate_serial, 1);
    await em.execute(`delete from host_signing_key where ca_id = ?`, [ca!.id]);
    const next = await rider('qr-rotation-next', 1000);

    const scanner = new Scanner();
    const update = await scanner.refresh();
    expect(update.retiredSigningCertificates).toHaveLength(1);
    const retiredAt = new Date(update.retiredSigningCertificates[0]!.retiredAt);
    const [oldCode, newCode] = [r.draw(), next.draw()];
    expect([scanner.verify(oldCode).ok, scanner.verify(newCode).ok]).toEqual([true, true]);
    // The retired key signing a credential after its retirement (the same credential, a later validity): forged.
    const credential = parseQrCode(oldCode)!.credential;
    const lateFrom = new Date(Math.ceil((+retiredAt + 1000) / 1000) * 1000);
    const lateAt = new Date(Math.max(Date.now(), +lateFrom) + 1000);
    const late = freshCode(signCredential({ ...credential, validFrom: lateFrom, validUntil: new Date(+lateFrom + 6 * 3600_000) }, retiredKey), r.device.privateKey, lateAt, 500);
    expect(scanner.verify(late, lateAt)).toMatchObject({ ok: false, refusal: 'FORGED' });
    const first = await upload(issuer, signedBatch(gate, 'gate-rotation-1', [scan(oldCode, 200), scan(newCode, 200), scan(late, 200, lateAt)]));
    expect(first.uploadQrRideBatch.batch!.rides.map((x) => x.outcome)).toEqual(['ACCEPTED', 'ACCEPTED', 'FORGED']);
    expect([(await walletNow(r.app, r.wallet)).balance.amount, (await walletNow(next.app, next.wallet)).balance.amount]).toEqual([800, 800]);

    // Retired longer ago than a credential is valid: the scanners no longer get it, and what it signed is forged (not merely expired).
    await em.execute(`update retired_host_signing_key set retired_at = retired_at - interval '7 hours' where ca_id = ?`, [ca!.id]);
    const longFrom = new Date(Math.floor((+retiredAt - 7.5 * 3600_000) / 1000) * 1000);
    const stale = freshCode(signCredential({ ...credential, validFrom: longFrom, validUntil: new Date(+longFrom + 6 * 3600_000) }, retiredKey), r.device.privateKey, new Date(), 501);
    expect((await scanner.refresh()).retiredSigningCertificates).toEqual([]);
    expect([scanner.verify(stale), scanner.verify(r.draw())]).toMatchObject([{ ok: false, refusal: 'FORGED' }, { ok: false, refusal: 'FORGED' }]);
    const second = await upload(issuer, signedBatch(gate, 'gate-rotation-2', [scan(stale, 200), scan(r.draw(), 200)]));
    expect(second.uploadQrRideBatch.batch!.rides.map((x) => x.outcome)).toEqual(['FORGED', 'FORGED']);
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(800);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('refuses a batch whose signature does not verify, booking nothing', async () => {
    const r = await rider('qr-bad-batch', 1000);
    const input = { ...signedBatch(gate, 'gate-bad-sig', [scan(r.draw(), 200)]), signature: signedBatch(bus, 'gate-bad-sig', []).signature };
    const reply = await upload(issuer, input);
    expect(reply.uploadQrRideBatch).toMatchObject({ batch: null, userErrors: [{ code: 'OFFLINE_BATCH_REFUSED' }] });
    expect(reply.uploadQrRideBatch.userErrors[0]!.message).toMatch(/^BAD_SIGNATURE/);
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(1000);
  });
});

/**
 * Review of the QR fixes (s19-rev-a): failures found by reading the merged code, each proved here
 * before any fix. Each test states what a scanner, a holder or the card company would notice.
 */
describe('QR rides: review findings (s19-rev-a)', () => {
  it('a booked batch sent again after its terminal was taken off the scanners answers what was stored (it was recorded), not QR_SCANNER_NOT_REGISTERED', async () => {
    const r = await rider('qr-review-replay', 1000);
    const till = await newReader(world, 'GZ-QR-REVIEW-REPLAY', world.gz, { kind: 'MERCHANT', id: busOperatorId });
    await registerScanner(gzManager, till);
    const batch = signedBatch(till, 'review-replay-1', [scan(r.draw(), 200)]);
    const first = await upload(busOperator, batch);
    expect(first.uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('ACCEPTED');
    // The scanner lost the answer; meanwhile the card company takes the terminal off the QR scanners.
    const off = await gzManager.request<{ setQrScanner: { userErrors: UserErrors } }>(SET_SCANNER, { input: { reader: till.id, acceptsQrRides: false } });
    expect(off.setQrScanner.userErrors).toEqual([]);
    const again = await upload(busOperator, batch);
    // Today: refused whole, "nothing was recorded", although the ride was booked and the wallet debited.
    expect(again.uploadQrRideBatch.userErrors).toEqual([]);
    expect(again.uploadQrRideBatch).toMatchObject({ replayed: true, batch: { id: first.uploadQrRideBatch.batch!.id } });
    expect((await walletNow(r.app, r.wallet)).balance.amount).toBe(800);
  });

  it('a debt limit lowered below what the wallet owes puts its credentials on the scanners’ blocklist, as reaching the limit by rides does', async () => {
    const r = await rider('qr-review-lower-limit', 0);
    expect((await upload(issuer, signedBatch(gate, 'review-lower-1', [scan(r.draw(), 1500)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('DEBT');
    // The card company lowers the limit to 10.00: the wallet owes 15.00, so the host refuses its every ride from now on.
    const SET_LIMIT = `mutation($input: SetWalletDebtLimitInput!) { setWalletDebtLimit(input: $input) { userErrors { code } } }`;
    expect((await issuer.request<{ setWalletDebtLimit: { userErrors: UserErrors } }>(SET_LIMIT, { input: { wallet: r.wallet, debtLimit: 1000 } })).setWalletDebtLimit.userErrors).toEqual([]);
    // A gate synced after that turns the rider away: the credential is on the blocklist. (Before the
    // review fix it opened, for a fare the upload then refused DEBT_LIMIT_EXCEEDED: the terminal owner
    // carried a ride nobody pays.)
    const scanner = new Scanner();
    await scanner.refresh();
    const code = r.draw();
    expect(scanner.verify(code)).toMatchObject({ ok: false, refusal: 'BLOCKED' });
    // A ride a stale gate let through anyway is refused at upload, and not booked.
    expect((await upload(issuer, signedBatch(gate, 'review-lower-2', [scan(code, 100)]))).uploadQrRideBatch.batch!.rides[0]!.outcome).toBe('BLOCKED');
  });

  it('a credential the host signed while a host key rotation was committing rides (it is not FORGED by a retirement time taken before it was signed)', async () => {
    const em = world.db.orm.em.fork();
    const [ca] = await em.execute<{ id: string }[]>(`select id from certificate_authority where kind = 'CITY' and city_id = ?`, [world.gz.cityId]);
    await hostKeyOfCity(em, kek, world.gz.cityId, world.server.url);
    let issued!: Awaited<ReturnType<typeof rider>>;
    // The operator retires the key in one transaction (revoke, delete, commit); the apps keep asking for credentials meanwhile.
    await world.db.orm.em.fork().transactional(async (tx) => {
      const [{ started }] = (await tx.execute<{ started: string }[]>(`select (extract(epoch from now()) * 1000)::bigint::text as started`)) as [{ started: string }];
      await tx.execute(`delete from host_signing_key where ca_id = ?`, [ca!.id]);
      // A credential signed in a later second than the transaction began (a person at psql takes longer).
      while (Math.floor(Date.now() / 1000) * 1000 <= Number(started)) await new Promise((resolve) => setTimeout(resolve, 100));
      issued = await rider('qr-review-rotation-race', 1000);
    });
    const code = issued.draw();
    const scanner = new Scanner();
    await scanner.refresh();
    const atGate = scanner.verify(code);
    const reply = await upload(issuer, signedBatch(gate, 'review-rotation-race-1', [scan(code, 200)]));
    // Today both say FORGED: the retirement time is the deleting transaction's start, before this credential was signed with that key.
    expect([atGate.ok, reply.uploadQrRideBatch.batch!.rides[0]!.outcome]).toEqual([true, 'ACCEPTED']);
  });
});

describe('ridership analytics', () => {
  const RIDERSHIP = `query($city: ID!, $from: String!, $to: String!, $groupBy: RidershipGrouping!) { ridership(city: $city, from: $from, to: $to, groupBy: $groupBy) { groupBy minimumGroupSize groups { key rides riders fares { amount } } suppressedGroups } }`;
  const LOCATE = `mutation($input: SetTerminalLocationInput!) { setTerminalLocation(input: $input) { reader userErrors { code field } } }`;
  type Ridership = { groupBy: string; minimumGroupSize: number; groups: { key: string; rides: number; riders: number; fares: { amount: number } }[]; suppressedGroups: number } | null;

  it('counts what the gates uploaded by line and by day, leaves out groups of fewer than 5 riders, for the city’s card company only', async () => {
    const hz = await addCity(world, { code: 'HZ', name: 'Hangzhou', cardCompanyName: 'Hangzhou Tong', cardCode: '3100' });
    const hzCompany = await apiClient(world, 'ISSUER', hz.cardCompanyId, ['topups:write', 'readers:manage', 'settlements:read']);
    const [line1, line2] = [await newReader(world, 'HZ-M1-WULIN', hz), await newReader(world, 'HZ-M2-XIXI', hz)];
    for (const gate of [line1, line2]) await registerScanner(hzCompany, gate);
    for (const [gate, line, stop] of [[line1, 'Line 1', 'Wulin Square'], [line2, 'Line 2', 'Xixi']] as const) {
      const set = await hzCompany.request<{ setTerminalLocation: { userErrors: UserErrors } }>(LOCATE, { input: { reader: gate.id, line, stop } });
      expect(set.setTerminalLocation.userErrors).toEqual([]);
    }
    expect((await hzCompany.request<{ setTerminalLocation: { userErrors: UserErrors } }>(LOCATE, { input: { reader: line1.id, line: '' } })).setTerminalLocation.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'line'] }]);
    const gzCompany = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage', 'settlements:read']);
    expect((await gzCompany.request<{ setTerminalLocation: { userErrors: UserErrors } }>(LOCATE, { input: { reader: line1.id, line: 'GZ says' } })).setTerminalLocation.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'reader'] }]);

    // Six riders through Line 1 (2.00 each, from their wallets' debt allowance); two of them on to Line 2 (3.00).
    const riders = [];
    for (let i = 0; i < 6; i++) riders.push(await rider(`qr-hz-${i}`, 0));
    const line1Scans = riders.map((r) => scan(r.draw(), 200));
    const first = await upload(hzCompany, signedBatch(line1, 'wulin-0001', line1Scans));
    const second = await upload(hzCompany, signedBatch(line2, 'xixi-0001', riders.slice(0, 2).map((r) => scan(r.draw(), 300))));
    expect([...first.uploadQrRideBatch.batch!.rides, ...second.uploadQrRideBatch.batch!.rides].every((r) => r.accepted)).toBe(true);

    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
    const ask = (client: OneCardClient, groupBy: string) => client.request<{ ridership: Ridership }>(RIDERSHIP, { city: toGlobalId('City', hz.cityId), from: today, to: today, groupBy });
    // Line 2's two riders are too few to show.
    expect((await ask(hzCompany, 'LINE')).ridership).toEqual({ groupBy: 'LINE', minimumGroupSize: 5, groups: [{ key: 'Line 1', rides: 6, riders: 6, fares: { amount: 1200 } }], suppressedGroups: 1 });
    expect((await ask(hzCompany, 'STOP')).ridership!.groups.map((g) => g.key)).toEqual(['Line 1 / Wulin Square']);
    // By day the totals are every ride uploaded.
    expect((await ask(hzCompany, 'DAY')).ridership!.groups).toEqual([{ key: today, rides: 8, riders: 6, fares: { amount: 1800 } }]);
    // Another city's card company gets null, as for a city that does not exist.
    expect((await ask(gzCompany, 'LINE')).ridership).toBeNull();

    // Each booked batch marked its day for the rollup once (one statement per batch, not per ride): the
    // day's rollup, once built, will not answer for rides booked after it (docs/analytics.md "The rollup").
    const marks = async () => Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from ridership_day_mark where city_id = ? and business_day = ?`, [hz.cityId, today]))[0]!.n);
    expect(await marks()).toBe(2);
    // The same codes again in a new batch are duplicates: nothing booked, nothing marked, the answer unchanged.
    const again = await upload(hzCompany, signedBatch(line1, 'wulin-0002', line1Scans));
    expect(again.uploadQrRideBatch.batch!.rides.map((r) => r.outcome)).toEqual(line1Scans.map(() => 'DUPLICATE'));
    expect(await marks()).toBe(2);
    expect((await ask(hzCompany, 'DAY')).ridership!.groups).toEqual([{ key: today, rides: 8, riders: 6, fares: { amount: 1800 } }]);
  });
});
