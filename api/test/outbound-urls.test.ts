/**
 * Issue 18, problem 9: webhook URLs like `https://localhost./` or a name that resolves to a
 * loopback address passed registration (refused only at delivery), and outside production
 * webhooks could target 169.254.169.254 and private ranges with no opt-in. Now URLs are checked,
 * and their names resolved, when they are registered; what internal addresses they may reach is
 * ALLOW_INTERNAL_URLS: none in production, loopback by default elsewhere, `all` only when asked.
 */
import { lookup } from 'node:dns/promises';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import type { PrincipalKind } from '../src/auth/principal.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
const servers = {} as Record<'none' | 'loopback' | 'all', TestServer>;
const tenants = {} as { shop: string; water: string };

beforeAll(async () => {
  db = await freshDatabase();
  // The three settings, each on a server of its own over one database.
  servers.none = await startTestServer(db.orm, { ALLOW_INTERNAL_URLS: 'none' });
  servers.loopback = await startTestServer(db.orm); // the default outside production
  servers.all = await startTestServer(db.orm, { ALLOW_INTERNAL_URLS: 'all' });
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' });
  tenants.shop = (await createMerchant(em, { cityId: gz.city.id, name: 'Shop' })).id;
  tenants.water = (await createBiller(em, { cityId: gz.city.id, name: 'Water', kind: BillerKind.WATER })).id;
});
afterAll(async () => {
  for (const s of Object.values(servers)) await s?.close();
  await db?.close();
});

async function client(server: TestServer, kind: PrincipalKind, tenantId: string, scopes: string[]): Promise<OneCardClient> {
  const made = await createClient(db.orm.em.fork(), { kind, tenantId, name: `${kind} outbound test`, scopes });
  return new OneCardClient({ baseUrl: server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: scopes.join(' ') });
}

type UserErrors = { code: string; field: string[]; message: string }[];
const CREATE = `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id url } userErrors { code field message } } }`;
const SET_FETCH = `mutation($input: SetBillerFetchUrlInput!) { setBillerFetchUrl(input: $input) { liveLookUp { url } userErrors { code field message } } }`;

async function registerWebhook(setting: keyof typeof servers, url: string): Promise<UserErrors> {
  const shop = await client(servers[setting], 'MERCHANT', tenants.shop, ['webhooks:manage']);
  const { createWebhookEndpoint } = await shop.request<{ createWebhookEndpoint: { userErrors: UserErrors } }>(CREATE, { input: { url, eventTypes: ['*'] } });
  return createWebhookEndpoint.userErrors;
}

async function setFetchUrl(setting: keyof typeof servers, url: string): Promise<UserErrors> {
  const water = await client(servers[setting], 'BILLER', tenants.water, ['bills:write']);
  const { setBillerFetchUrl } = await water.request<{ setBillerFetchUrl: { userErrors: UserErrors } }>(SET_FETCH, { input: { url, enabled: true } });
  return setBillerFetchUrl.userErrors;
}

describe('webhook URLs are checked at registration', () => {
  const refused: [keyof typeof servers, string][] = [
    ['none', 'https://localhost./hook'],
    ['none', 'https://api.localhost./hook'],
    ['none', 'https://127.0.0.1/hook'],
    ['none', 'http://127.0.0.1:9/hook'],
    ['loopback', 'https://169.254.169.254/latest/meta-data/'],
    ['loopback', 'https://10.0.0.5/hook'],
    ['loopback', 'https://192.168.1.20/hook'],
    ['loopback', 'https://[fd00::1]/hook'],
  ];
  it.each(refused)('with ALLOW_INTERNAL_URLS=%s, %s is refused', async (setting, url) => {
    const errors = await registerWebhook(setting, url);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'INVALID_WEBHOOK_URL', field: ['input', 'url'] });
  });

  const accepted: [keyof typeof servers, string][] = [
    ['loopback', 'http://127.0.0.1:9/hook'],
    ['loopback', 'https://localhost./hook'],
    ['all', 'https://10.0.0.5/hook'],
    ['all', 'https://169.254.169.254/hook'],
  ];
  it.each(accepted)('with ALLOW_INTERNAL_URLS=%s, %s is accepted', async (setting, url) => {
    expect(await registerWebhook(setting, url)).toEqual([]);
  });

  it('a name that resolves to a loopback address is refused where loopback is not allowed, and the message says where it points', async () => {
    // This machine's own name resolves locally (/etc/hosts), like 127.0.0.1.nip.io does on the internet.
    const name = os.hostname();
    const addresses = await lookup(name, { all: true });
    expect(addresses.some((a) => a.address.startsWith('127.') || a.address === '::1'), `${name} resolves to ${JSON.stringify(addresses)}`).toBe(true);
    const errors = await registerWebhook('none', `https://${name}/hook`);
    expect(errors[0]).toMatchObject({ code: 'INVALID_WEBHOOK_URL' });
    expect(errors[0]!.message).toMatch(/resolves to (127\.|::1)/);
    expect(await registerWebhook('loopback', `https://${name}/hook`)).toEqual([]);
  });
});

describe('bill look-up URLs are checked the same way', () => {
  it('a biller cannot point its look-up at an internal address', async () => {
    for (const [setting, url] of [
      ['none', 'https://localhost./bills'],
      ['none', `https://${os.hostname()}/bills`],
      ['loopback', 'https://169.254.169.254/bills'],
    ] as const) {
      const errors = await setFetchUrl(setting, url);
      expect(errors[0], `${setting} ${url}`).toMatchObject({ code: 'INVALID_FETCH_URL', field: ['input', 'url'] });
    }
    expect(await setFetchUrl('all', 'https://10.0.0.5/bills')).toEqual([]);
  });
});
