import type { SeedStep } from '../demo/seed-step.js';
import type { PrincipalKind } from './principal.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { createCardholder } from './cardholders.service.js';
import { createClient, redirectUriAllowed } from './clients.service.js';
import { createPartyUser } from './party-users.service.js';
import { scopesForKind } from './scopes.js';

/** Where the demo cardholder app receives its authorization code (a local app a developer runs). */
export const DEMO_APP_REDIRECT_URI = 'http://127.0.0.1:8765/callback';

/** One OAuth client per kind, with every scope of its kind, and two cardholders to sign in as. */
export const authDemo: SeedStep = {
  name: 'auth-demo',
  async run(em, { earlier }) {
    const tenants = earlier.tenants as { merchant: string; billers: { water: string }; cardCompanies: { GZ: string } };
    const tenantOf = (id: string) => fromGlobalId(id).id;
    const make = async (kind: PrincipalKind, tenant: string | null, name: string, extra: { redirectUris?: string[] } = {}) => {
      const { client, clientSecret } = await createClient(em, { kind, tenantId: tenant && tenantOf(tenant), name, scopes: scopesForKind(kind), ...extra });
      return { client_id: client.client_id, client_secret: clientSecret, scope: client.scopes.join(' '), token_endpoint_auth_method: client.auth_method };
    };
    const clients = {
      operator: await make('OPERATOR', null, 'Demo operator console'),
      issuer: await make('ISSUER', tenants.cardCompanies.GZ, 'Guangzhou Yangchengtong back office'),
      merchant: await make('MERCHANT', tenants.merchant, 'Demo Shop back end'),
      biller: await make('BILLER', tenants.billers.water, 'Guangzhou Water billing'),
      cardholderApp: { ...(await make('CARDHOLDER_APP', tenants.cardCompanies.GZ, 'Yangchengtong app', { redirectUris: [DEMO_APP_REDIRECT_URI] })), redirect_uri: DEMO_APP_REDIRECT_URI },
    };
    const holders = [
      { username: 'lin', password: 'lin-demo-password', displayName: '林 Lin' },
      { username: 'chen', password: 'chen-demo-password', displayName: '陈 Chen' },
    ];
    for (const h of holders) await createCardholder(em, h);
    return { clients, cardholders: holders.map(({ username, password }) => ({ username, password })) };
  },
};

/** Where the web console receives its authorization code: the console itself, served by the API. */
export const consoleRedirectUri = (publicUrl: string) => `${publicUrl}/console/`;

/**
 * The web console's sign-in (issue 26): for each demo party a sign-in client (public, code + PKCE,
 * every scope of its kind) and one person who signs in with it, an admin (who may make the party's
 * other users). A step of its own, so that a
 * database seeded before the console gets them at its next start.
 */
export const consoleDemo: SeedStep = {
  name: 'auth-console-demo',
  async run(em, { earlier, config }) {
    const tenants = earlier.tenants as { merchant: string; billers: { water: string }; cardCompanies: { GZ: string } };
    const redirectUri = consoleRedirectUri(config.publicUrl);
    // A demo served on plain http off the loopback gets no console sign-in (and still starts).
    if (!redirectUriAllowed(redirectUri)) {
      return { console: { url: redirectUri, unavailable: 'the console signs in over https, or http on a loopback host: set PUBLIC_URL accordingly' } };
    }
    const party = async (kind: PrincipalKind, tenant: string | null, name: string, user: { username: string; password: string; displayName: string }) => {
      const { client } = await createClient(em, { kind, tenantId: tenant && fromGlobalId(tenant).id, name, scopes: scopesForKind(kind), redirectUris: [redirectUri] });
      await createPartyUser(em, { clientId: client.client_id, ...user, admin: true });
      return { client_id: client.client_id, username: user.username, password: user.password };
    };
    return {
      console: {
        url: redirectUri,
        users: {
          operator: await party('OPERATOR', null, 'OneCard operations', { username: 'ops-admin', password: 'ops-demo-password', displayName: '运营 Operations' }),
          issuer: await party('ISSUER', tenants.cardCompanies.GZ, '广州羊城通 Yangchengtong', { username: 'gz-backoffice', password: 'gz-demo-password', displayName: '羊城通 Back office' }),
          merchant: await party('MERCHANT', tenants.merchant, 'Demo Shop', { username: 'shop-clerk', password: 'shop-demo-password', displayName: '店员 Shop clerk' }),
          biller: await party('BILLER', tenants.billers.water, '广州自来水 Guangzhou Water', { username: 'water-clerk', password: 'water-demo-password', displayName: '水务 Billing clerk' }),
        },
      },
    };
  },
};
