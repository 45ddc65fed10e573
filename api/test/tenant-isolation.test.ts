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
import { createApolloServer } from '../src/graphql/apollo.js';
import type { GraphQLContext, Principal, PrincipalKind } from '../src/graphql/context.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { apiSchema } from '../src/graphql/schema.js';
import { Metrics } from '../src/http/metrics.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { createWorkingCa } from '../src/pki/pki.service.js';
import { initRootCa } from '../src/pki/root-ca.js';
import { generateRsaKey } from '../src/pki/x509.js';
import { registerReader } from '../src/readers/readers.service.js';
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
  'Query.node': { access: 'owned', kinds: ['MERCHANT', 'BILLER', 'ISSUER'], byId: { type: 'self' } },
  'Query.cities': { access: 'directory' },
  'Query.city': { access: 'directory' },
  'Query.cardCompany': { access: 'owned', kinds: ['ISSUER'], byId: { type: 'self' } },
  'Query.merchant': { access: 'owned', kinds: ['MERCHANT'], byId: { type: 'self' } },
  'Query.merchants': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'], list: { type: 'merchants' } },
  'Query.biller': { access: 'owned', kinds: ['BILLER'], byId: { type: 'self' } },
  'Query.billers': { access: 'owned', kinds: ['BILLER', 'ISSUER'], list: { type: 'billers' } },
  'Query.feePlan': { access: 'operator' },
  'Query.feePlans': { access: 'operator' },
  'Query.ledgerAccount': { access: 'operator' },
  'Query.ledgerAccounts': { access: 'operator' },
  'Query.journalEntry': { access: 'operator' },
  'Query.ledgerProblems': { access: 'operator' },
  'Mutation.createCity': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateCity': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createFeePlan': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateFeePlan': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createMerchant': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateMerchant': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createBiller': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.updateBiller': { access: 'operator', scope: 'tenants:manage' },
  'Mutation.createOAuthClient': { access: 'operator', scope: 'clients:manage' },
  'Mutation.disableOAuthClient': { access: 'operator', scope: 'clients:manage' },
  'Mutation.postJournalEntry': { access: 'operator' },
  'Mutation.reverseJournalEntry': { access: 'operator' },
  'Query.card': { access: 'owned', kinds: ['ISSUER'] }, // cards: isolation by id and in lists checked in cards.test.ts
  'Query.cards': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.issueCard': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.blockCard': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.unblockCard': { access: 'owned', kinds: ['ISSUER'] },
  'Mutation.reportCardLost': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps; isolation checked in cards.test.ts
  'Mutation.reportCardFound': { access: 'owned', kinds: ['ISSUER'] },
  'Query.blacklist': { access: 'owned', kinds: ['ISSUER'] }, // also the operator; own company's entries only, checked in cards.test.ts
  'Mutation.replaceCard': { access: 'owned', kinds: ['ISSUER'] }, // another company's card → NOT_FOUND like a missing id; cardholder app/merchant FORBIDDEN: checked in card-replacement.test.ts
  'Query.topUp': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps and the operator; isolation by id checked in topups.test.ts
  'Mutation.createTopUp': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps; another holder's card is NOT_FOUND (topups.test.ts)
  'Mutation.refundTopUp': { access: 'owned', kinds: ['ISSUER'] }, // also cardholder apps and the operator; checked in topups.test.ts
  'Query.payment': { access: 'owned', kinds: ['MERCHANT'] }, // also the operator, and cardholder apps by id; another merchant's is null (payments.test.ts)
  'Query.payments': { access: 'owned', kinds: ['MERCHANT'] }, // own payments only; checked in payments.test.ts
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
  'Mutation.payBill': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // bills the app may read; checked in bill-payments.test.ts
  'Mutation.resolvePendingLoad': { access: 'owned', kinds: ['ISSUER'] }, // another card company's top-up is NOT_FOUND (topups.test.ts)
  'Mutation.uploadOfflineBatch': { access: 'owned', kinds: ['MERCHANT', 'ISSUER'] }, // the terminal's owner (merchant, payments:write; card company, topups:write); another tenant's terminal is NOT_FOUND like a missing id (offline-uploads.test.ts)
  'Mutation.setAutoTopUp': { access: 'owned', kinds: ['CARDHOLDER_APP'] }, // the holder's registered cards only (topups.test.ts)
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
    const key = generateRsaKey(2048);
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.setRsaPublicKey(key.privateKey.n, key.privateKey.e);
    csr.sign(key.privateKey, forge.md.sha256.create());
    const pem = forge.pki.certificationRequestToPem(csr);
    const { reader } = await registerReader(em, kek, { serial: `${code}-R-1`, model: 'm', owner: { kind: 'MERCHANT', id: merchant.id, name: merchant.name }, cityId: city.city.id, cityCode: code, nationalCsrPem: pem, cityCsrPem: pem, publicUrl: 'http://127.0.0.1' });
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
    selection = fields.edges ? '{ edges { node { id } } }' : fields.id ? '{ id }' : '{ __typename }';
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
      const anonymous = await run(operationFor(kind, field), null);
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
