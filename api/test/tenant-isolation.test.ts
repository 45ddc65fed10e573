import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import type { ApolloServer } from '@apollo/server';
import {
  getNamedType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLObjectType,
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
} from 'graphql';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopesForKind } from '../src/auth/scopes.js';
import { createApolloServer } from '../src/apollo.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { apiSchema } from '../src/schema.js';
import { Metrics } from '../src/http/metrics.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { createWorkingCa } from '../src/pki/pki.service.js';
import { initRootCa } from '../src/pki/root-ca.js';
import { generateRsaKey } from '../src/pki/x509.js';
import { registerReader } from '../src/readers/readers.service.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { withLuhnCheckDigit } from '../src/cards/cards.service.js';
import { recordPendingLoad } from '../src/topups/topups.service.js';
import { recordEvent } from '../src/webhooks/outbox.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { recordClearingItem } from '../src/settlement/clearing-items.js';
import { payableAccount } from '../src/ledger/accounts.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { closeWindow } from '../src/settlement/windows.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK, testConfig } from './support/server.js';

/**
 * Every Query and Mutation field, classified. A field that is not listed fails this test: whoever
 * adds a field decides here who may use it, and the matrix below then checks it.
 * - public: anyone, even without a token.
 * - directory: any signed-in client (no tenant data).
 * - operator: only the operator, holding `scope` where given.
 * - owned: tenant data by id or as a list; a tenant sees only its own, and another tenant's id
 *   answers exactly as an id that does not exist (null).
 */
type Rule =
  | { access: 'public' }
  | { access: 'directory' }
  | { access: 'operator'; scope?: string }
  /** Like operator, and also the card company (of the object's city, checked inside). */
  | { access: 'managers'; scope: string }
  | { access: 'owned'; kinds: PrincipalKind[]; byId?: { type: 'self' | 'readers' }; list?: { type: 'merchants' | 'billers' | 'readers' } };

const MATRIX: Record<string, Rule> = {
  'Query.serverInfo': { access: 'public' },
  'Query.viewer': { access: 'public' },
  'Query.certificateStatus': { access: 'public' },
  'Query.certificateAuthorities': { access: 'public' },
  'Query.reader': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'], byId: { type: 'readers' } },
  'Query.readers': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'], list: { type: 'readers' } },
  'Mutation.openCardSession': { access: 'directory' },
  'Mutation.cardSessionMessage': { access: 'directory' },
  'Mutation.registerReader': { access: 'managers', scope: 'readers:manage' },
  'Mutation.suspendReader': { access: 'managers', scope: 'readers:manage' },
  'Mutation.activateReader': { access: 'managers', scope: 'readers:manage' },
  'Mutation.revokeReader': { access: 'managers', scope: 'readers:manage' },
  'Mutation.approveReaderNationalCertificate': { access: 'operator', scope: 'readers:manage' },
  'Query.node': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'], byId: { type: 'self' } },
  'Query.cities': { access: 'public' },
  'Query.city': { access: 'public' },
  'Query.cardCompany': { access: 'owned', kinds: ['ISSUER'], byId: { type: 'self' } },
  'Query.merchant': { access: 'owned', kinds: ['MERCHANT'], byId: { type: 'self' } },
  'Query.merchants': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'], list: { type: 'merchants' } },
  'Query.biller': { access: 'owned', kinds: ['BILLER'], byId: { type: 'self' } },
  'Query.billers': { access: 'owned', kinds: ['BILLER', 'ISSUER'], list: { type: 'billers' } },
  'Query.feePlan': { access: 'operator' },
  'Query.feePlans': { access: 'operator' },
  'Query.ledgerAccount': { access: 'operator', scope: 'ledger:read' },
  'Query.ledgerAccounts': { access: 'operator', scope: 'ledger:read' },
  'Query.journalEntry': { access: 'operator', scope: 'ledger:read' },
  'Query.ledgerProblems': { access: 'operator', scope: 'ledger:read' },
  'Mutation.createCity': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateCity': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createFeePlan': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateFeePlan': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createMerchant': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateMerchant': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createBiller': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateBiller': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createOAuthClient': { access: 'operator', scope: 'clients:manage' },
  // Also a party's admin user signed in to the console, for its own party's clients only; a clerk and a back end are FORBIDDEN (oauth-clients-list.test.ts).
  'Query.oauthClients': { access: 'operator', scope: 'clients:manage' },
  'Query.clientKindScopes': { access: 'public' }, // the scopes of each client kind: no tenant data
  'Mutation.disableOAuthClient': { access: 'operator', scope: 'clients:manage' },
  // The operator (clients:manage) for any party; a party's admin user only for its own party: another party's sign-in client is NOT_FOUND (console-party-users.test.ts).
  'Mutation.createPartyUser': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] },
  'Mutation.postJournalEntry': { access: 'operator', scope: 'ledger:write' },
  'Mutation.reverseJournalEntry': { access: 'operator', scope: 'ledger:write' },
  'Query.card': { access: 'owned', kinds: ['ISSUER'] }, // cards: isolation by id and in lists checked in cards.test.ts
  'Query.cards': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.issueCard': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.blockCard': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.unblockCard': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.reportCardLost': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps; isolation checked in cards.test.ts
  'Mutation.reportCardFound': { access: 'owned', kinds: ['ISSUER'] },
  // Card master keys: a card company's own, with scope cardkeys:manage; another company's is NOT_FOUND and no answer ever holds key material (card-master-keys.test.ts).
  'Query.cardKeyTransportKey': { access: 'owned', kinds: ['ISSUER'] },
  'Query.cardMasterKeys': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.importCardMasterKey': { access: 'owned', kinds: ['ISSUER'] },
  // A terminal's PSAM: the card company's keys, so only it provisions, and only its city's terminals; another city's terminal is NOT_FOUND, the operator FORBIDDEN, and no answer or log holds key material (terminal-kit.test.ts).
  'Mutation.provisionTerminal': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.activateCardMasterKey': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.retireCardMasterKey': { access: 'owned', kinds: ['ISSUER'] },
  // Card profiles: a card company's own, and the operator's for the one it names, with scope readers:manage; another company's id answers as a missing one ([] / NOT_FOUND) (card-profiles.test.ts).
  'Query.cardProfiles': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.setCardProfile': { access: 'owned', kinds: ['ISSUER'] },
  'Query.blacklist': { access: 'owned', kinds: ['ISSUER'] }, // also the operator; own company's entries only, checked in cards.test.ts
  'Mutation.replaceCard': { access: 'owned', kinds: ['ISSUER'] }, // another company's card → NOT_FOUND like a missing id; cardholder app/merchant FORBIDDEN: checked in card-replacement.test.ts
  'Query.topUp': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps and the operator; isolation by id checked in topups.test.ts
  'Mutation.createTopUp': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps; another holder's card is NOT_FOUND (topups.test.ts)
  'Mutation.refundTopUp': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps and the operator; checked in topups.test.ts
  'Query.payment': { access: 'owned', kinds: ['MERCHANT'] }, // also the operator, and cardholder apps by id; another merchant's is null (payments.test.ts)
  'Query.payments': { access: 'owned', kinds: ['MERCHANT'] }, // own payments only; every principal kind (cardholder apps list none) in the list matrix below
  'Mutation.createPayment': { access: 'owned', kinds: ['MERCHANT'] },
  'Mutation.cancelPayment': { access: 'owned', kinds: ['MERCHANT'] }, // another merchant's payment is NOT_FOUND (payments.test.ts)
  'Mutation.refundPayment': { access: 'owned', kinds: ['MERCHANT'] }, // another merchant's payment is NOT_FOUND (payments.test.ts)
  'Query.webhookEndpoints': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // own endpoints only; isolation checked in webhooks.test.ts
  'Query.webhookDeliveries': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // deliveries to own endpoints only (webhooks.test.ts)
  'Query.events': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // own events only (owner match); checked in webhooks.test.ts
  'Mutation.createWebhookEndpoint': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // for the caller's own tenant
  'Mutation.updateWebhookEndpoint': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // another tenant's endpoint is NOT_FOUND (webhooks.test.ts)
  'Mutation.rotateWebhookSecret': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // another tenant's endpoint is NOT_FOUND
  'Mutation.deleteWebhookEndpoint': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // another tenant's endpoint is NOT_FOUND (webhooks.test.ts)
  'Mutation.replayWebhookEvent': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // another tenant's event is NOT_FOUND (webhooks.test.ts)
  'Query.bill': { access: 'owned', kinds: ['BILLER'] }, // also the operator (bills:read) and cardholder apps by id (active billers); another biller's bill is null like a missing id (bills.test.ts)
  'Query.bills': { access: 'owned', kinds: ['BILLER'] }, // own bills only (operator: all, bills:read); cardholder apps FORBIDDEN; checked in bills.test.ts
  'Query.billsForAccount': { access: 'owned', kinds: ['BILLER'] }, // also cardholder apps and the operator; another biller's id answers null like a missing one (bills.test.ts)
  'Mutation.publishBill': { access: 'owned', kinds: ['BILLER'] }, // for the caller's own biller
  'Mutation.publishBills': { access: 'owned', kinds: ['BILLER'] }, // for the caller's own biller
  'Mutation.importBillsCsv': { access: 'owned', kinds: ['BILLER'] }, // for the caller's own biller
  'Mutation.amendBill': { access: 'owned', kinds: ['BILLER'] }, // another biller's bill is NOT_FOUND exactly like a missing id (bills.test.ts)
  'Mutation.withdrawBill': { access: 'owned', kinds: ['BILLER'] }, // another biller's bill is NOT_FOUND exactly like a missing id (bills.test.ts)
  'Mutation.setBillerFetchUrl': { access: 'owned', kinds: ['BILLER'] }, // the caller's own biller only
  'Query.billPayment': { access: 'owned', kinds: ['BILLER'] }, // also the holder's app that made it and the operator; others get null (bill-payments.test.ts)
  'Query.billerReconciliation': { access: 'owned', kinds: ['BILLER'] }, // the caller's own payments only (bill-payments.test.ts)
  'Mutation.bindBillAccount': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // binds for the app's own holder; authorization-bill-lookups.test.ts
  'Mutation.setBillerAccountBinding': { access: 'owned', kinds: ['BILLER'] }, // the caller's own biller only
  'Mutation.payBill': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // bills the app may read; checked in bill-payments.test.ts
  'Mutation.resolvePendingLoad': { access: 'owned', kinds: ['ISSUER'] }, // another card company's top-up is NOT_FOUND (topups.test.ts)
  'Query.pendingLoads': { access: 'managers', scope: 'cards:read' }, // a card company's own cards' loads only, the operator all (pending-loads-list.test.ts)
  'Mutation.uploadOfflineBatch': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'] }, // the terminal's owner (merchant, payments:write; card company, topups:write); another tenant's terminal is NOT_FOUND like a missing id (offline-uploads.test.ts)
  'Mutation.setAutoTopUp': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // the holder's registered cards only (topups.test.ts)
  'Query.transitWallet': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // the asking holder's own wallet only; by id (node) another holder's is null (transit-wallet.test.ts)
  'Mutation.openTransitWallet': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // opens for the app's own holder only
  'Mutation.createWalletTopUp': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // another holder's wallet is NOT_FOUND (transit-wallet.test.ts)
  'Mutation.setWalletDebtLimit': { access: 'owned', kinds: ['ISSUER'] }, // the card company's own wallets; another's is NOT_FOUND (qr-rides.test.ts)
  'Mutation.refundWalletTopUp': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // also the card company and the operator; another holder's top-up is NOT_FOUND (transit-wallet.test.ts)
  'Mutation.issueQrCredential': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // the holder's own wallet only; another's is NOT_FOUND (qr-rides.test.ts)
  'Mutation.blockQrCredential': { access: 'owned', kinds: ['CARDHOLDER_APP', 'ISSUER'] }, // the holder's own credentials, the card company its wallets'; another's is NOT_FOUND (qr-rides.test.ts)
  'Mutation.setQrScanner': { access: 'managers', scope: 'readers:manage' }, // another city's terminal is NOT_FOUND (qr-rides.test.ts)
  'Mutation.uploadQrRideBatch': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'] }, // the scanner's owner, as uploadOfflineBatch; another tenant's terminal is NOT_FOUND like a missing id
  'Query.ridership': { access: 'managers', scope: 'settlements:read' }, // a card company's own city only; another city is null (qr-rides.test.ts), aggregates only
  'Query.originDestination': { access: 'managers', scope: 'settlements:read' }, // as ridership: another city is null (origin-destination.test.ts), aggregates only
  'Mutation.setTerminalLocation': { access: 'managers', scope: 'readers:manage' }, // another city's reader is NOT_FOUND (checked by the manager test)
  'Query.qrScannerUpdate': { access: 'directory' }, // a card company's signing certificates and blocklist (credential ids only): what every scanner holds
  'Query.settlementWindows': { access: 'managers', scope: 'settlements:read' }, // a card company sees its own city's windows only (settlement-api.test.ts)
  'Query.settlementBatch': { access: 'managers', scope: 'settlements:read' }, // another city's batch is null for a card company (settlement-api.test.ts)
  'Query.interchangeMatrix': { access: 'managers', scope: 'settlements:read' }, // a card company sees the positions it is a party to (settlement-api.test.ts)
  'Query.settlementStatements': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] }, // the caller's own lines only (settlement-api.test.ts)
  'Mutation.closeSettlementWindow': { access: 'operator', scope: 'settlements:manage' },
  'Mutation.clearSettlementWindow': { access: 'operator', scope: 'settlements:manage' },
  'Mutation.reconcileSettlementWindow': { access: 'operator', scope: 'settlements:manage' },
  'Mutation.resolveReconciliationDifference': { access: 'operator', scope: 'settlements:manage' },
  'Query.reconciliationDifferences': { access: 'operator', scope: 'settlements:read' },
};

/** Two tenants of each kind: `own` objects of tenant A (whose principal asks) and of tenant B. */
interface Fixtures {
  principals: Record<'A' | 'B', Record<'MERCHANT' | 'BILLER' | 'ISSUER', Principal>>;
  own: {
    self: Record<'A' | 'B', Record<'MERCHANT' | 'BILLER' | 'ISSUER', string>>;
    merchants: Record<'A' | 'B', string>;
    billers: Record<'A' | 'B', string>;
    readers: Record<'A' | 'B', string>;
  };
}

let db: TestDatabase;
let apollo: ApolloServer<GraphQLContext>;
let schema: GraphQLSchema;
let fx: Fixtures;

const principal = (kind: PrincipalKind, tenantId: string | null, scopes = scopesForKind(kind)): Principal => ({ kind, clientId: `test-${kind}`, tenantId, holderId: null, scopes });

beforeAll(async () => {
  db = await freshDatabase();
  schema = await apiSchema();
  apollo = await createApolloServer({ config: testConfig(), log: pino({ level: 'silent' }), metrics: new Metrics() });
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'GZ cards' });
  const sz = await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'SZ cards' });
  // Tenant A lives in GZ, tenant B in SZ, so issuers (one per city) differ too.
  const mA = await createMerchant(em, { cityId: gz.city.id, name: 'Shop A' });
  const mB = await createMerchant(em, { cityId: sz.city.id, name: 'Shop B' });
  const bA = await createBiller(em, { cityId: gz.city.id, name: 'Water A', kind: BillerKind.WATER });
  const bB = await createBiller(em, { cityId: sz.city.id, name: 'Water B', kind: BillerKind.WATER });
  // A reader for each merchant, certified by its city's CA.
  const kek = Buffer.from(TEST_KEK, 'base64url');
  const rootFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-iso-')), 'root.json');
  const root = await initRootCa(rootFile, 'isolation test passphrase');
  await fs.rm(path.dirname(rootFile), { recursive: true, force: true });
  await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'N', publicUrl: 'http://127.0.0.1' });
  const readerOf = async (city: typeof gz, code: string, merchant: typeof mA) => {
    await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: city.city.id, cityCode: code, name: code, publicUrl: 'http://127.0.0.1' });
    const [national, cityCsr, encryption] = [0, 1, 2].map(() => {
      const key = generateRsaKey(2048);
      const csr = forge.pki.createCertificationRequest();
      csr.publicKey = forge.pki.setRsaPublicKey(key.privateKey.n, key.privateKey.e);
      csr.sign(key.privateKey, forge.md.sha256.create());
      return forge.pki.certificationRequestToPem(csr);
    }) as [string, string, string];
    const { reader } = await registerReader(em, kek, { serial: `${code}-R-1`, model: 'm', owner: { kind: 'MERCHANT', id: merchant.id, name: merchant.name }, cityId: city.city.id, cityCode: code, nationalCsrPem: national, cityCsrPem: cityCsr, encryptionCsrPem: encryption, publicUrl: 'http://127.0.0.1', nationalAuthority: true });
    return toGlobalId('Reader', reader.id);
  };
  const readers = { A: await readerOf(gz, 'GZ', mA), B: await readerOf(sz, 'SZ', mB) };
  fx = {
    principals: {
      A: { MERCHANT: principal('MERCHANT', mA.id), BILLER: principal('BILLER', bA.id), ISSUER: principal('ISSUER', gz.cardCompany.id) },
      B: { MERCHANT: principal('MERCHANT', mB.id), BILLER: principal('BILLER', bB.id), ISSUER: principal('ISSUER', sz.cardCompany.id) },
    },
    own: {
      self: {
        A: { MERCHANT: toGlobalId('Merchant', mA.id), BILLER: toGlobalId('Biller', bA.id), ISSUER: toGlobalId('CardCompany', gz.cardCompany.id) },
        B: { MERCHANT: toGlobalId('Merchant', mB.id), BILLER: toGlobalId('Biller', bB.id), ISSUER: toGlobalId('CardCompany', sz.cardCompany.id) },
      },
      merchants: { A: toGlobalId('Merchant', mA.id), B: toGlobalId('Merchant', mB.id) },
      billers: { A: toGlobalId('Biller', bA.id), B: toGlobalId('Biller', bB.id) },
      readers,
    },
  };
});
afterAll(async () => {
  await apollo.stop();
  await db.close();
});

/** A syntactically valid value for an input type, so that a call reaches the auth check. */
function sample(type: GraphQLInputType): string {
  if (isNonNullType(type)) return sample(type.ofType);
  if (isListType(type)) return '[]';
  if (isEnumType(type)) return type.getValues()[0]!.name;
  if (isInputObjectType(type)) {
    const required = Object.values(type.getFields()).filter((f) => isNonNullType(f.type));
    return `{ ${required.map((f) => `${f.name}: ${sample(f.type)}`).join(', ')} }`;
  }
  if (isScalarType(type)) {
    const samples: Record<string, string> = { Int: '1', Float: '1', Boolean: 'false', MinorUnits: '1', DateTime: '"2026-01-01T00:00:00Z"', Currency: '"CNY"', JSONObject: '{}' };
    return samples[type.name] ?? '"x"';
  }
  throw new Error(`no sample for ${String(type)}`);
}

/** The operation text for a field: required args sampled (an `id` arg from `id`), a minimal selection. */
function operationFor(kind: 'query' | 'mutation', field: GraphQLField<unknown, unknown>, id?: string): string {
  const args = field.args.filter((a) => isNonNullType(a.type) || (a.name === 'id' && id));
  const argText = args.length ? `(${args.map((a) => `${a.name}: ${a.name === 'id' && id ? JSON.stringify(id) : sample(a.type)}`).join(', ')})` : '';
  const named = getNamedType(field.type);
  let selection = '';
  if (isObjectType(named)) {
    const fields = named.getFields();
    // A connection's nodes by id where they have one (a PendingLoadEntry, an OAuthClient have none).
    const node = fields.edges && isObjectType(getNamedType(fields.edges.type)) ? (getNamedType(fields.edges.type) as GraphQLObjectType).getFields().node : undefined;
    const nodeSelection = node && isObjectType(getNamedType(node.type)) && (getNamedType(node.type) as GraphQLObjectType).getFields().id ? '{ id }' : '{ __typename }';
    selection = fields.edges ? `{ edges { node ${nodeSelection} } }` : fields.id ? '{ id }' : '{ __typename }';
  } else if (!isScalarType(named) && !isEnumType(named)) selection = '{ __typename }';
  return `${kind} { ${field.name}${argText} ${selection} }`;
}

async function run(query: string, who: Principal | null) {
  const res = await apollo.executeOperation({ query }, { contextValue: { em: db.orm.em.fork(), principal: who, requestId: 't', log: pino({ level: 'silent' }), config: testConfig() } });
  if (res.body.kind !== 'single') throw new Error('single result expected');
  return JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[] };
}

const rootFields = () =>
  (['query', 'mutation'] as const).flatMap((kind) => {
    const root = kind === 'query' ? schema.getQueryType()! : schema.getMutationType()!;
    return Object.values(root.getFields()).map((field) => ({ kind, key: `${root.name}.${field.name}`, field }));
  });

describe('tenant isolation matrix (generated from the schema)', () => {
  it('every query and mutation is classified', () => {
    const unclassified = rootFields().map((f) => f.key).filter((key) => !MATRIX[key]);
    expect(unclassified, 'classify these fields in MATRIX').toEqual([]);
    const stale = Object.keys(MATRIX).filter((key) => !rootFields().some((f) => f.key === key));
    expect(stale, 'these MATRIX entries name no field').toEqual([]);
  });

  it('operator fields: FORBIDDEN to every tenant, and to an operator without the scope', async () => {
    const failures: string[] = [];
    for (const { kind, key, field } of rootFields()) {
      const rule = MATRIX[key];
      if (rule?.access !== 'operator') continue;
      const op = operationFor(kind, field);
      // Every tenant kind, a cardholder app included, is refused.
      const app = { ...principal('CARDHOLDER_APP', fx.principals.A.ISSUER.tenantId), holderId: randomUUID() };
      for (const tenant of [...Object.values(fx.principals.A), app]) {
        const code = (await run(op, tenant)).errors?.[0]?.extensions?.code;
        if (code !== 'FORBIDDEN') failures.push(`${key} as ${tenant.kind}: ${code}`);
      }
      if ((await run(op, null)).errors?.[0]?.extensions?.code !== 'UNAUTHENTICATED') failures.push(`${key} anonymous`);
      if (rule.scope) {
        const withoutScope = principal('OPERATOR', null, scopesForKind('OPERATOR').filter((s) => s !== rule.scope));
        const code = (await run(op, withoutScope)).errors?.[0]?.extensions?.code;
        if (code !== 'FORBIDDEN') failures.push(`${key} as operator without ${rule.scope}: ${code}`);
      }
      const allowed = (await run(op, principal('OPERATOR', null))).errors?.[0]?.extensions?.code;
      if (allowed === 'FORBIDDEN' || allowed === 'UNAUTHENTICATED') failures.push(`${key} refused to the operator`);
    }
    expect(failures).toEqual([]);
  });

  it('manager fields: FORBIDDEN to merchants and billers, and to managers without the scope; another city’s card company gets NOT_FOUND', async () => {
    const failures: string[] = [];
    for (const { kind, key, field } of rootFields()) {
      const rule = MATRIX[key];
      if (rule?.access !== 'managers') continue;
      const op = operationFor(kind, field);
      for (const tenant of [fx.principals.A.MERCHANT, fx.principals.A.BILLER]) {
        const code = (await run(op, tenant)).errors?.[0]?.extensions?.code;
        if (code !== 'FORBIDDEN') failures.push(`${key} as ${tenant.kind}: ${code}`);
      }
      for (const manager of [principal('OPERATOR', null), fx.principals.A.ISSUER]) {
        const withoutScope = { ...manager, scopes: manager.scopes.filter((s) => s !== rule.scope) };
        const code = (await run(op, withoutScope)).errors?.[0]?.extensions?.code;
        if (code !== 'FORBIDDEN') failures.push(`${key} as ${manager.kind} without ${rule.scope}: ${code}`);
      }
      // With a reader of tenant B as the target, GZ's card company is told it does not exist.
      if (field.args.some((a) => a.name === 'input') && key !== 'Mutation.registerReader') {
        const result = await run(`mutation { ${field.name}(input: { reader: "${fx.own.readers.B}" }) { userErrors { code } } }`, fx.principals.A.ISSUER);
        const code = result.data?.[field.name]?.userErrors?.[0]?.code;
        if (code !== 'NOT_FOUND') failures.push(`${key} on another city's reader: ${JSON.stringify(result)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('public and directory fields: no tenant data, open as classified', async () => {
    for (const { kind, key, field } of rootFields()) {
      const rule = MATRIX[key];
      if (rule?.access !== 'public' && rule?.access !== 'directory') continue;
      // A field by id is asked with a well-formed id of its type (of no row): a malformed one is BAD_USER_INPUT, not a refusal.
      const id = field.args.some((a) => a.name === 'id') ? toGlobalId(getNamedType(field.type).name, '00000000-0000-4000-8000-000000000000') : undefined;
      const anonymous = await run(operationFor(kind, field, id), null);
      if (rule.access === 'public') expect(anonymous.errors, key).toBeUndefined();
      else expect(anonymous.errors?.[0]?.extensions?.code, key).toBe('UNAUTHENTICATED');
      expect((await run(operationFor(kind, field), fx.principals.A.MERCHANT)).errors?.[0]?.extensions?.code, key).not.toBe('FORBIDDEN');
    }
  });

  it('owned fields by id: another tenant of the same kind gets exactly what a missing id gets', async () => {
    const failures: string[] = [];
    for (const { kind, key, field } of rootFields()) {
      const rule = MATRIX[key];
      if (rule?.access !== 'owned' || !rule.byId) continue;
      for (const tenantKind of rule.kinds as ('MERCHANT' | 'BILLER' | 'ISSUER')[]) {
        const ownId = rule.byId.type === 'self' ? fx.own.self.A[tenantKind] : fx.own[rule.byId.type].A;
        const othersId = rule.byId.type === 'self' ? fx.own.self.B[tenantKind] : fx.own[rule.byId.type].B;
        const missingId = toGlobalId(Buffer.from(ownId, 'base64url').toString().split(':')[0]!, randomUUID());
        const mine = await run(operationFor(kind, field, ownId), fx.principals.A[tenantKind]);
        const theirs = await run(operationFor(kind, field, othersId), fx.principals.A[tenantKind]);
        const missing = await run(operationFor(kind, field, missingId), fx.principals.A[tenantKind]);
        if (!mine.data?.[field.name]) failures.push(`${key} as ${tenantKind}: its own object is not found (${JSON.stringify(mine.errors)})`);
        if (JSON.stringify(theirs) !== JSON.stringify(missing)) failures.push(`${key} as ${tenantKind}: another tenant's id answers ${JSON.stringify(theirs)}, a missing id ${JSON.stringify(missing)}`);
        if (theirs.data?.[field.name] !== null) failures.push(`${key} as ${tenantKind}: another tenant's object is visible`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('owned lists: a tenant never sees another tenant’s objects', async () => {
    const failures: string[] = [];
    for (const { kind, key, field } of rootFields()) {
      const rule = MATRIX[key];
      if (rule?.access !== 'owned' || !rule.list) continue;
      for (const tenantKind of rule.kinds as ('MERCHANT' | 'BILLER' | 'ISSUER')[]) {
        const result = await run(operationFor(kind, field), fx.principals.A[tenantKind]);
        const ids: string[] = result.data?.[field.name]?.edges?.map((e: any) => e.node.id) ?? [];
        if (result.errors) failures.push(`${key} as ${tenantKind}: ${JSON.stringify(result.errors)}`);
        if (ids.includes(fx.own[rule.list.type].B)) failures.push(`${key} as ${tenantKind}: lists tenant B's object`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('the matrix can fail: an operator-only field opened to merchants would be caught', async () => {
    // Guards the guard: the check above really distinguishes FORBIDDEN from success.
    const field = schema.getQueryType()!.getFields().ledgerProblems!;
    expect((await run(operationFor('query', field), principal('OPERATOR', null))).errors).toBeUndefined();
    expect((await run(operationFor('query', field), fx.principals.A.MERCHANT)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

// ——— every list, for every kind of principal ———

/** The principals the list matrix asks as: two tenants of each kind, and the apps of three cardholders (1 and 2 in tenant A's city, 3 in B's). */
type Who = 'merchant A' | 'merchant B' | 'biller A' | 'biller B' | 'issuer A' | 'issuer B' | 'holder 1 app' | 'holder 2 app' | 'holder 3 app';
const EVERYONE: Who[] = ['merchant A', 'merchant B', 'biller A', 'biller B', 'issuer A', 'issuer B', 'holder 1 app', 'holder 2 app', 'holder 3 app'];
const APPS: Who[] = ['holder 1 app', 'holder 2 app', 'holder 3 app'];

/**
 * Every list a client can reach from Query (a connection, a list, or an object holding one), with
 * what it needs to be asked. A list field that is not here fails the test: whoever adds one decides
 * here how it is asked, and the check below then holds it to "no other tenant's objects".
 */
const LISTS: Record<string, { args?: () => Record<string, unknown>; alsoSeen?: (name: string) => Who[]; note?: string }> = {
  // By id, with the lists the object holds: asked for tenant A's (holder 1's) object, every other principal gets null.
  'Query.card': { args: () => ({ id: lists.ids.card1 }), note: 'holder 1’s card with its top-ups and history' },
  'Query.topUp': { args: () => ({ id: lists.ids.topUp1 }), note: 'holder 1’s pending load with its history' },
  'Query.bill': { args: () => ({ id: lists.ids.billA }), note: 'biller A’s bill with its payments (apps may read the bill, and are refused its payments)' },
  'Query.payment': { args: () => ({ id: lists.ids.canceledPaymentA }), note: 'merchant A’s canceled payment with its refunds and entries (an open one any app may open by id)' },
  'Query.journalEntry': { note: 'operator only' },
  'Query.billers': { note: 'cardholder apps see every ACTIVE biller (a directory): billers are seen by apps in the fixture' },
  'Query.bills': {},
  'Query.billsForAccount': { args: () => ({ biller: lists.ids.billerB, accountNumber: 'ACC-B' }), note: 'asked for tenant B’s account: only B, and apps paying B’s bills, may see it' },
  'Query.billerReconciliation': { args: () => ({ businessDay: lists.today }) },
  'Query.blacklist': {},
  'Query.cards': {},
  'Query.cardProfiles': { note: 'a card company’s own profiles (no tenant data of others): isolation in card-profiles.test.ts' },
  'Query.cardMasterKeys': { note: 'a card company’s own keys (metadata only): the fixture has none; isolation in card-master-keys.test.ts' },
  'Query.certificateAuthorities': { note: 'public' },
  'Query.cities': { note: 'a public directory' },
  'Query.events': {},
  'Query.feePlans': { note: 'operator only' },
  'Query.interchangeMatrix': { args: () => ({ businessDay: SETTLED_DAY }) },
  'Query.ledgerAccounts': { note: 'operator only' },
  'Query.ledgerProblems': { note: 'operator only' },
  'Query.merchants': {},
  'Query.payments': {},
  'Query.readers': {},
  'Query.reconciliationDifferences': { args: () => ({ window: lists.ids.windowA }), note: 'operator only' },
  'Query.settlementBatch': { args: () => ({ id: lists.ids.batchB }), alsoSeen: (name) => (name.startsWith('line B ') ? ['issuer B'] : []), note: 'tenant B’s batch, with every line of its city for its card company' },
  'Query.settlementStatements': {},
  'Query.settlementWindows': {},
  'Query.webhookDeliveries': {},
  'Query.webhookEndpoints': {},
  'Query.pendingLoads': { note: 'UNRESOLVED by default: the fixture has none (a started write needs a card session); isolation in pending-loads-list.test.ts' },
  'Query.oauthClients': { note: 'the operator; a party’s admin user its own party’s (oauth-clients-list.test.ts); FORBIDDEN to these principals' },
  'Query.clientKindScopes': { note: 'public: the scopes of each client kind' },
  'Query.viewer': { note: 'the caller itself' },
  'Query.transitWallet': { args: () => ({ cardCompany: fx.own.self.A.ISSUER }), note: 'the asking holder’s own wallet with card company A, its top-ups and history' },
  'Query.ridership': { args: () => ({ city: lists.ids.cityA, from: lists.today, to: lists.today }), note: 'aggregates with a minimum group size: no tenant objects' },
  'Query.originDestination': { args: () => ({ city: lists.ids.cityA, from: lists.today, to: lists.today }), note: 'aggregates with a minimum group size: no tenant objects' },
  'Query.qrScannerUpdate': { args: () => ({ cardCompany: fx.own.self.A.ISSUER }), note: 'certificates and credential ids every scanner holds: no tenant objects' },
};

const SETTLED_DAY = '2026-03-02';

/** Fixture objects (global ids) and who may find each in a list; anyone else must never. */
const lists = {
  today: '',
  ids: {} as Record<string, string>,
  seenBy: new Map<string, { name: string; who: Set<Who> }>(),
  principals: {} as Record<Who, Principal>,
};

function own(name: string, id: string, who: Who[]) {
  lists.ids[name] = id;
  lists.seenBy.set(id, { name, who: new Set(who) });
}

/** Whether a field's type holds a list of objects, directly or one object down (as a reconciliation holds its payments). */
function holdsList(type: GraphQLOutputTypeLike, depth = 0): boolean {
  let t: any = type;
  while (isNonNullType(t)) t = t.ofType;
  if (isListType(t)) return true;
  if (!isObjectType(t) || depth > 1) return false;
  if (t.getFields().edges) return true;
  return Object.values(t.getFields()).some((f: any) => !f.args.some((a: any) => isNonNullType(a.type)) && holdsList(f.type, depth + 1));
}
type GraphQLOutputTypeLike = GraphQLField<unknown, unknown>['type'];

/** A selection of every id-like field, down through objects and lists (fields needing arguments left out). */
function selectionOf(type: GraphQLOutputTypeLike, depth: number): string {
  const named = getNamedType(type);
  if (!isObjectType(named)) return isScalarType(named) || isEnumType(named) ? '' : '{ __typename }';
  if (depth <= 0) return named.getFields().id ? '{ id }' : '{ __typename }';
  const parts: string[] = [];
  for (const f of Object.values(named.getFields())) {
    if (f.args.some((a) => isNonNullType(a.type))) continue;
    const inner = getNamedType(f.type);
    if (isScalarType(inner)) {
      if (inner.name === 'ID' || inner.name === 'JSONObject' || f.name === 'asn') parts.push(f.name);
    } else if (isObjectType(inner)) parts.push(`${f.name} ${selectionOf(f.type, depth - 1)}`);
  }
  return `{ __typename ${parts.join(' ')} }`;
}

/** Every string in an answer (ids, references, event payloads). */
function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) stringsIn(v, out);
  return out;
}

const listFields = () =>
  Object.values(schema.getQueryType()!.getFields())
    .filter((f) => holdsList(f.type))
    .map((field) => ({ key: `Query.${field.name}`, field }));

describe('every list, for every kind of principal (generated from the schema)', () => {
  beforeAll(async () => {
    const em = db.orm.em.fork();

    const [A, B] = [fx.principals.A, fx.principals.B];
    const tenantOf = (p: Principal) => p.tenantId!;
    const cityOf = { A: (await em.execute<{ city_id: string }[]>(`select city_id from card_company where id = ?`, [A.ISSUER.tenantId]))[0]!.city_id, B: (await em.execute<{ city_id: string }[]>(`select city_id from card_company where id = ?`, [B.ISSUER.tenantId]))[0]!.city_id };
    lists.ids.cityA = toGlobalId('City', cityOf.A);
    lists.today = (await em.execute<{ d: string }[]>(`select (now() at time zone 'Asia/Shanghai')::date::text as d`))[0]!.d;

    // Three cardholders, each signed in through an app of its city's card company.
    const holders: Record<1 | 2 | 3, { id: string; company: string }> = {
      1: { id: (await createCardholder(em, { username: 'iso-holder-1', password: 'holder password 1', displayName: 'One' })).id, company: A.ISSUER.tenantId! },
      2: { id: (await createCardholder(em, { username: 'iso-holder-2', password: 'holder password 2', displayName: 'Two' })).id, company: A.ISSUER.tenantId! },
      3: { id: (await createCardholder(em, { username: 'iso-holder-3', password: 'holder password 3', displayName: 'Three' })).id, company: B.ISSUER.tenantId! },
    };
    const app = (n: 1 | 2 | 3): Principal => ({ kind: 'CARDHOLDER_APP', clientId: `test-app-${holders[n].company}`, tenantId: holders[n].company, holderId: holders[n].id, scopes: scopesForKind('CARDHOLDER_APP') });
    lists.principals = {
      'merchant A': A.MERCHANT, 'merchant B': B.MERCHANT, 'biller A': A.BILLER, 'biller B': B.BILLER, 'issuer A': A.ISSUER, 'issuer B': B.ISSUER,
      'holder 1 app': app(1), 'holder 2 app': app(2), 'holder 3 app': app(3),
    };
    const as = async (who: Who, query: string, variables: Record<string, unknown>) => {
      const res = await apollo.executeOperation({ query, variables }, { contextValue: { em: db.orm.em.fork(), principal: lists.principals[who], requestId: 't', log: pino({ level: 'silent' }), config: testConfig() } });
      if (res.body.kind !== 'single') throw new Error('single result expected');
      const result = JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[] };
      expect(result.errors, query).toBeUndefined();
      const payload = Object.values(result.data)[0] as { userErrors?: unknown[] };
      expect(payload.userErrors ?? [], query).toEqual([]);
      return payload as any;
    };

    // Tenants, seen in lists by themselves and their city's card company; billers by every app too.
    own('merchantA', fx.own.merchants.A, ['merchant A', 'issuer A']);
    own('merchantB', fx.own.merchants.B, ['merchant B', 'issuer B']);
    own('billerA', fx.own.billers.A, ['biller A', 'issuer A', ...APPS]);
    own('billerB', fx.own.billers.B, ['biller B', 'issuer B', ...APPS]);
    own('readerA', fx.own.readers.A, ['merchant A', 'issuer A']);
    own('readerB', fx.own.readers.B, ['merchant B', 'issuer B']);
    for (const n of [1, 2, 3] as const) own(`holder${n}`, toGlobalId('Cardholder', holders[n].id), [`holder ${n} app`, n === 3 ? 'issuer B' : 'issuer A']);

    // A registered card per holder with a pending load on it, and an anonymous blocked card per company.
    let serial = 0;
    const issue = async (who: 'issuer A' | 'issuer B', holder?: string) => {
      const number = withLuhnCheckDigit(`62319900000${String(++serial).padStart(4, '0')}`);
      const made = await as(who, `mutation($input: IssueCardInput!) { issueCard(input: $input) { card { id } userErrors { code message } } }`, {
        input: { cardNumber: number, asn: `99000000000000${String(serial).padStart(6, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holder },
      });
      return made.card.id as string;
    };
    const funding = await openAccount(em, { code: 'test.isolation.funding.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    for (const n of [1, 2, 3] as const) {
      const issuer: Who = n === 3 ? 'issuer B' : 'issuer A';
      const card = await issue(issuer, toGlobalId('Cardholder', holders[n].id));
      own(`card${n}`, card, [`holder ${n} app`, issuer]);
      const cardUuid = Buffer.from(card, 'base64url').toString().split(':')[1]!;
      const { topUpId } = await em.transactional((tx) =>
        recordPendingLoad(tx, { origin: 'REFUND', cardId: cardUuid, key: `isolation-load-${n}`, amount: 100n, currency: 'CNY', fromAccountId: funding.id, description: 'isolation fixture', metadata: {}, cause: 'fixture' }),
      );
      own(`topUp${n}`, toGlobalId('TopUp', topUpId), [`holder ${n} app`, issuer]);
    }
    for (const issuer of ['issuer A', 'issuer B'] as const) {
      const card = await issue(issuer);
      await as(issuer, `mutation($input: CardStatusInput!) { blockCard(input: $input) { card { id } userErrors { code message } } }`, { input: { card, reason: 'isolation fixture' } });
      own(`blockedCard ${issuer}`, card, [issuer]);
    }

    // Transit wallets of holders 1 and 2 with card company A: each its own holder's only.
    for (const n of [1, 2] as const) {
      const opened = await as(`holder ${n} app`, `mutation($input: OpenTransitWalletInput!) { openTransitWallet(input: $input) { wallet { id } userErrors { code message } } }`, { input: { cardCompany: fx.own.self.A.ISSUER } });
      own(`wallet${n}`, opened.wallet.id, [`holder ${n} app`]);
    }

    // Payments waiting for a card: an app may open one by its id, but lists none.
    for (const t of ['A', 'B'] as const) {
      const made = await as(`merchant ${t}`, `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, {
        input: { amount: 1234, currency: 'CNY', orderReference: `iso-order-${t}`, idempotencyKey: `iso-pay-${t}`, metadata: { secret: `order-of-${t}` } },
      });
      own(`payment${t}`, made.payment.id, [`merchant ${t}`]);
    }
    const canceled = await as('merchant A', `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, {
      input: { amount: 99, currency: 'CNY', orderReference: 'iso-order-canceled', idempotencyKey: 'iso-pay-canceled' },
    });
    await as('merchant A', `mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { payment { id status } userErrors { code message } } }`, { input: { payment: canceled.payment.id, idempotencyKey: 'iso-cancel' } });
    own('canceledPaymentA', canceled.payment.id, ['merchant A']);

    // Bills: their biller's; an app may read (and pay) any bill of an active biller.
    for (const t of ['A', 'B'] as const) {
      const made = await as(`biller ${t}`, `mutation($input: BillInput!) { publishBill(input: $input) { bill { id } userErrors { code message } } }`, {
        input: { accountNumber: `ACC-${t}`, amountDue: 2500, billerReference: `iso-bill-${t}`, dueDate: '2099-12-31', period: '2026-10' },
      });
      own(`bill${t}`, made.bill.id, [`biller ${t}`, ...APPS]);
    }
    // Bill payments: the paying holder's and the biller's.
    for (const [t, n] of [['A', 1], ['B', 3]] as const) {
      const made = await as(`holder ${n} app`, `mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code message } } }`, { input: { bill: lists.ids[`bill${t}`], idempotencyKey: `iso-bill-pay-${t}` } });
      own(`billPayment${t}`, made.billPayment.id, [`biller ${t}`, `holder ${n} app`]);
    }

    // Webhook endpoints of every tenant, an event of each, and its delivery (as the dispatcher makes them).
    for (const who of ['merchant A', 'merchant B', 'biller A', 'biller B', 'issuer A', 'issuer B'] as const) {
      const made = await as(who, `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code message } } }`, { input: { url: `https://hooks.example/${who.replace(' ', '-')}`, eventTypes: ['*'] } });
      own(`endpoint ${who}`, made.endpoint.id, [who]);
      const p = lists.principals[who];
      await em.transactional((tx) => recordEvent(tx, { type: 'payment.succeeded', ownerKind: p.kind as 'MERCHANT', ownerId: tenantOf(p), subjectId: `isolation-subject-${who}`, payload: { note: `event of ${who}` } }));
    }
    await em.execute(`update event_outbox o set dispatched_at = now(), position = n.n from (select id, row_number() over (order by id) as n from event_outbox) n where o.id = n.id`);
    await em.execute(`insert into webhook_delivery (event_id, endpoint_id, next_attempt_at) select o.id, e.id, now() from event_outbox o join webhook_endpoint e on e.owner_kind = o.owner_kind and e.owner_id = o.owner_id on conflict do nothing`);
    const ownerName = (kind: string, id: string) => (EVERYONE.slice(0, 6) as Who[]).find((w) => lists.principals[w].kind === kind && lists.principals[w].tenantId === id);
    for (const e of await em.execute<{ id: string; owner_kind: string; owner_id: string }[]>(`select id::text as id, owner_kind, owner_id from event_outbox`)) {
      const who = ownerName(e.owner_kind, e.owner_id);
      if (who) own(`event ${e.id}`, toGlobalId('Event', e.id), [who]);
    }
    for (const d of await em.execute<{ id: string; owner_kind: string; owner_id: string }[]>(`select d.id::text as id, e.owner_kind, e.owner_id from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id`)) {
      own(`delivery ${d.id}`, toGlobalId('WebhookDelivery', d.id), [ownerName(d.owner_kind, d.owner_id)!]);
    }

    // A cleared settlement window in each city: a line per merchant, biller and card company.
    for (const t of ['A', 'B'] as const) {
      const ps = fx.principals[t];
      for (const [kind, id] of [['MERCHANT', ps.MERCHANT.tenantId!], ['BILLER', ps.BILLER.tenantId!], ['CARD_COMPANY', ps.ISSUER.tenantId!]] as const) {
        const key = `isolation-sale:${t}:${kind}`;
        const payable = await payableAccount(em, kind, id, 'CNY');
        await em.transactional(async (tx) => {
          await post(tx, { key, description: 'isolation sale', lines: [debit(funding.id, 1000n), credit(payable.id, 1000n)] });
          await recordClearingItem(tx, { kind: kind === 'MERCHANT' ? 'PAYMENT' : kind === 'BILLER' ? 'BILL_PAYMENT' : 'TRANSIT', participant: { kind, id }, cardCompanyId: ps.ISSUER.tenantId!, amount: 1000n, currency: 'CNY', entryKey: key, reference: key, occurredAt: new Date(`${SETTLED_DAY}T10:00:00+08:00`) });
        });
      }
      const window = await closeWindow(em, { cityId: cityOf[t], businessDay: SETTLED_DAY, closedBy: 'test', cutoff: '02:00', now: new Date(`${SETTLED_DAY}T23:00:00+08:00`) });
      const batch = await clearWindow(em, window.id);
      const mine: Who[] = [`merchant ${t}`, `biller ${t}`, `issuer ${t}`];
      // A participant's statement names its window and batch: they are its own to see.
      own(`window${t}`, toGlobalId('SettlementWindow', window.id), mine);
      own(`batch${t}`, toGlobalId('SettlementBatch', batch.id), mine);
      for (const l of await em.execute<{ id: string; participant_kind: string }[]>(`select id, participant_kind from settlement_line where batch_id = ?`, [batch.id])) {
        const who: Who = l.participant_kind === 'MERCHANT' ? `merchant ${t}` : l.participant_kind === 'BILLER' ? `biller ${t}` : `issuer ${t}`;
        own(`line ${t} ${l.participant_kind}`, toGlobalId('SettlementLine', l.id), [who]);
      }
    }
  });

  it('every list field has a rule', () => {
    const fields = listFields().map((f) => f.key);
    expect(fields.filter((key) => !LISTS[key]), 'add these list fields to LISTS').toEqual([]);
    expect(Object.keys(LISTS).filter((key) => !fields.includes(key)), 'these LISTS entries name no list field').toEqual([]);
  });

  it('no principal of any kind finds another tenant’s object in any list, nested lists included', async () => {
    const failures: string[] = [];
    const found = new Set<string>();
    for (const { key, field } of listFields()) {
      const given = LISTS[key]?.args?.() ?? {};
      const alsoSeen = LISTS[key]?.alsoSeen ?? (() => []);
      // 10 per list holds every fixture object (the coverage check below says so) and keeps the nested
      // selection under the query cost limit of 5,000.
      const args = field.args.filter((a) => a.name in given || isNonNullType(a.type) || a.name === 'first');
      const argText = args.length ? `(${args.map((a) => `${a.name}: ${a.name in given ? JSON.stringify(given[a.name]) : a.name === 'first' ? '10' : sample(a.type)}`).join(', ')})` : '';
      const query = `query { ${field.name}${argText} ${selectionOf(field.type, 4)} }`;
      for (const who of EVERYONE) {
        const result = await run(query, lists.principals[who]);
        const codes = (result.errors ?? []).map((e) => e.extensions?.code);
        // Refused outright is fine (nothing shown); anything else that fails is a broken check.
        if (codes.some((c) => c !== 'FORBIDDEN')) failures.push(`${key} as ${who}: ${JSON.stringify(result.errors)}`);
        for (const s of new Set(stringsIn(result.data))) {
          const object = lists.seenBy.get(s);
          if (!object) continue;
          if (object.who.has(who) || alsoSeen(object.name).includes(who)) found.add(s);
          else failures.push(`${key} as ${who}: shows ${object.name}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // The check is not empty: every fixture object shows up, to some principal that may see it, in
    // some list; except these, which no list holds by design.
    const inNoList = new Set([
      'topUp2', 'topUp3', // listed under their card only, and Query.card is asked for holder 1's
      'billPaymentA', 'billPaymentB', // waiting for the card: the biller's reconciliation lists paid ones
    ]);
    expect([...lists.seenBy.entries()].filter(([id, o]) => !found.has(id) && !inNoList.has(o.name)).map(([, o]) => o.name), 'fixture objects no list showed').toEqual([]);
  });

  it('a cardholder app lists none of the payments it may open by id', async () => {
    for (const who of APPS) {
      const listed = await run(`query { payments(first: 100) { edges { node { id orderReference metadata } } } }`, lists.principals[who]);
      expect(listed.errors, who).toBeUndefined();
      expect(listed.data.payments.edges, who).toEqual([]);
      // The same app does see an open payment by its id (the checkout hands it over): the list is not empty by accident.
      const byId = await run(`query { payment(id: ${JSON.stringify(lists.ids.paymentB)}) { id } }`, lists.principals[who]);
      expect(byId.data.payment, who).toEqual({ id: lists.ids.paymentB });
    }
  });
});
