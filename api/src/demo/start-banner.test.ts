/**
 * The start banner names where the demo credentials are and never prints them: stdout ends up in
 * logs, and it used to print every client secret, the database password and the root CA passphrase.
 */
import { describe, expect, it } from 'vitest';
import { startBanner } from './start-banner.js';

const secrets = {
  merchantSecret: 'ocs_merchantSecretValue123',
  operatorSecret: 'ocs_operatorSecretValue456',
  dbPassword: 'pgPassw0rdSecret',
  rootCaPassphrase: 'root-ca-passphrase-789',
  cardholderPassword: 'lin-password-000',
  consolePassword: 'shop-clerk-password-111',
};
const demo = {
  publicUrl: 'http://localhost:4000',
  graphqlUrl: 'http://localhost:4000/graphql',
  databaseUrl: `postgres://onecard:${secrets.dbPassword}@127.0.0.1:54321/onecard`,
  clients: {
    operator: { client_id: 'oc_operator_1', client_secret: secrets.operatorSecret, scope: 'tenants:manage' },
    merchant: { client_id: 'oc_merchant_1', client_secret: secrets.merchantSecret, scope: 'payments:write' },
  },
  cardholders: [{ username: 'lin', password: secrets.cardholderPassword }],
  pki: { rootCaFile: '/data/root-ca.json', rootCaPassphrase: secrets.rootCaPassphrase },
  console: { url: 'http://localhost:4000/console/', users: { merchant: { client_id: 'oc_merchant_2', username: 'shop-clerk', password: secrets.consolePassword } } },
};
const config = { publicUrl: 'http://localhost:4000', dataDir: '/home/you/onecard/.onecard' };

describe('the start banner', () => {
  const banner = startBanner({ config, sandboxGatewayUrl: 'http://127.0.0.1:5055', demo });

  it('prints no secret of demo.json', () => {
    for (const [name, value] of Object.entries(secrets)) expect(banner, name).not.toContain(value);
  });

  it('says where the credentials are, and what is in that file', () => {
    expect(banner).toContain('demo credentials    /home/you/onecard/.onecard/demo.json (mode 600: client ids and secrets of operator, merchant; cardholders lin;');
  });

  it('lists the URLs and the next three things to try', () => {
    expect(banner).toContain('GraphQL + GraphiQL  http://localhost:4000/graphql');
    expect(banner).toContain('sandbox gateway     http://127.0.0.1:5055');
    expect(banner).toContain('web console         http://localhost:4000/console/ (sign in as shop-clerk: passwords in demo.json, console.users)');
    const next = banner.slice(banner.indexOf('Next, try:'));
    expect(next.match(/^ {2}\d\. /gm)).toEqual(['  1. ', '  2. ', '  3. ']);
    expect(next).toContain(`curl -s http://localhost:4000/graphql -H 'content-type: application/json' -d '{"query":"{ serverInfo { version time } }"}'`);
    expect(next).toContain('npm run simulate -w examples/reader-simulator -- topup 1500');
  });

  it('in development, points at the GraphiQL page’s own sign-in button (the page has it there only)', () => {
    const dev = startBanner({ config: { ...config, env: 'development' }, sandboxGatewayUrl: null, demo });
    expect(dev).toContain('  2. GraphiQL:         open http://localhost:4000/graphql and press "Sign in as a demo client" (it fills the Authorization header)');
    expect(banner).toContain('sign in as a demo client with a token from demo.json');
  });

  it('without demo data it says how to onboard instead', () => {
    const plain = startBanner({ config, sandboxGatewayUrl: null, demo: null });
    expect(plain).toContain('no demo data (ONECARD_DEMO is off)');
    expect(plain).not.toContain('Next, try:');
  });
});
