/**
 * The package as an outside project gets it: `npm pack -w sdk-js` (which builds it) makes the tarball,
 * and a fresh project in a temporary folder outside the repository installs it with `npm install
 * <tarball>` (its dependencies come from the registry or npm's cache). There, `require('@onecard/sdk')`
 * from CommonJS and `import` from ESM both load it and work, TypeScript finds its declarations either
 * way, and a TypeScript script type-checks and runs against a started API.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../api/src/auth/clients.service.js';
import { createCity, createMerchant } from '../../api/src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from '../../api/test/support/database.js';
import { startTestServer, type TestServer } from '../../api/test/support/server.js';

const run = promisify(execFile);
const sdkDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const requireFromSdk = createRequire(path.join(sdkDir, 'package.json'));
const repoDir = path.dirname(sdkDir);

let app: string;
let packDir: string;
let tarball: string;

/** Links a package of the workspace's node_modules into the app's. */
function link(name: string) {
  const target = path.dirname(requireFromSdk.resolve(`${name}/package.json`));
  const at = path.join(app, 'node_modules', name);
  mkdirSync(path.dirname(at), { recursive: true });
  symlinkSync(target, at, 'dir');
}

beforeAll(async () => {
  packDir = mkdtempSync(path.join(os.tmpdir(), 'onecard-sdk-pack-'));
  app = mkdtempSync(path.join(os.tmpdir(), 'onecard-sdk-app-'));
  const { stdout } = await run('npm', ['pack', '-w', 'sdk-js', '--pack-destination', packDir, '--json'], { cwd: repoDir, maxBuffer: 16 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(packDir, path.basename(packed!.filename));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'outside-app', private: true }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app });
  link('@types/node'); // for the type checks' `types: ['node']`
}, 300_000);

afterAll(() => {
  for (const dir of [app, packDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The same checks in either module system: exports are there, a typed call goes through, webhooks verify. */
const checks = `
const exported = ['OneCardClient', 'OneCardError', 'ReaderAgent', 'VirtualCpuCard', 'VirtualM1Card', 'verifyWebhook', 'CreatePaymentDocument', 'IDEMPOTENT_MUTATIONS'];
const missing = exported.filter((name) => sdk[name] === undefined);
const calls = [];
const fetch = async (url, init) => {
  const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  if (url.endsWith('/.well-known/openid-configuration')) return json({ issuer: 'https://api.onecard.test/oauth', token_endpoint: 'https://api.onecard.test/oauth/token' });
  if (url.endsWith('/oauth/token')) return json({ access_token: 't', token_type: 'Bearer', expires_in: 600 });
  calls.push(JSON.parse(init.body));
  if (calls.length === 1) throw new TypeError('fetch failed');
  return json({ data: { createPayment: { payment: null, userErrors: [{ code: 'DUPLICATE_ORDER', field: ['input', 'orderReference'], message: 'taken' }] } } });
};
const client = new sdk.OneCardClient({ baseUrl: 'https://api.onecard.test', clientId: 'c', clientSecret: 's', fetch, retry: { baseDelayMs: 1 } });
const result = await client.mutate(sdk.CreatePaymentDocument, { input: { amount: 1, currency: 'CNY', orderReference: 'o' } });
const secret = 'whsec_test';
const body = JSON.stringify({ id: 'evt_1', type: 'payment.succeeded', created: new Date().toISOString(), data: {} });
const t = Math.floor(Date.now() / 1000);
const signature = require('node:crypto').createHmac('sha256', secret).update(t + '.' + body).digest('hex');
const webhook = sdk.verifyWebhook(body, 't=' + t + ',v1=' + signature, secret);
console.log(JSON.stringify({
  missing,
  ok: result.ok,
  code: result.userErrors[0] && result.userErrors[0].code,
  attempts: calls.length,
  sameKey: calls.length === 2 && calls[0].variables.input.idempotencyKey === calls[1].variables.input.idempotencyKey,
  webhook: webhook.ok,
  isError: new sdk.OneCardError('x', { code: 'X' }) instanceof Error,
}));
`;

async function node(file: string, source: string): Promise<Record<string, unknown>> {
  writeFileSync(path.join(app, file), source);
  const { stdout, stderr } = await run(process.execPath, [file], { cwd: app });
  expect(stderr).toBe('');
  return JSON.parse(stdout) as Record<string, unknown>;
}

const expected = { missing: [], ok: false, code: 'DUPLICATE_ORDER', attempts: 2, sameKey: true, webhook: true, isError: true };

describe('the packed tarball', () => {
  it('holds the built package and its README, no sources or tests', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    for (const file of ['package/package.json', 'package/README.md', 'package/dist/esm/index.js', 'package/dist/esm/browser.js', 'package/dist/esm/browser.d.ts', 'package/dist/cjs/index.js', 'package/dist/cjs/package.json']) {
      expect(files).toContain(file);
    }
    expect(files.filter((f) => f.startsWith('package/src/') || /\.test\./.test(f) || f.includes('test-support'))).toEqual([]);
  });

  it('installed from the tarball, with its dependencies from the registry', () => {
    const installed = path.join(app, 'node_modules', '@onecard', 'sdk');
    expect(JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'))).toMatchObject({ name: '@onecard/sdk', publishConfig: { access: 'public', provenance: true } });
    expect(readdirSync(path.join(app, 'node_modules'))).toEqual(expect.arrayContaining(['graphql', 'oauth4webapi', '@graphql-typed-document-node']));
  });
});

describe('the built package', () => {
  it("require('@onecard/sdk') from CommonJS", async () => {
    const out = await node('check.cjs', `const sdk = require('@onecard/sdk');\nif (!require.resolve('@onecard/sdk').includes('/dist/cjs/')) throw new Error('not the CJS build');\n(async () => {${checks}})().catch((e) => { console.error(e); process.exit(1); });\n`);
    expect(out).toEqual(expected);
  });

  it("import from '@onecard/sdk' in ESM", async () => {
    const out = await node(
      'check.mjs',
      `import * as sdk from '@onecard/sdk';\nimport { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nif (!import.meta.resolve('@onecard/sdk').includes('/dist/esm/')) throw new Error('not the ESM build');\n${checks}`,
    );
    expect(out).toEqual(expected);
  });

  it('has type declarations for require and import', async () => {
    const use = `
const client = new OneCardClient({ baseUrl: 'https://api.onecard.test', clientId: 'c', clientSecret: 's' });
export async function pay(): Promise<string | undefined> {
  const r = await client.mutate(CreatePaymentDocument, { input: { amount: 1, currency: 'CNY', orderReference: 'o' } });
  if (!r.ok) {
    const code: UserErrorCode = r.userErrors[0]!.code;
    return code;
  }
  for await (const p of client.paginate(PaymentsDocument, { first: 10 }, (d) => d.payments)) return p.status;
  return r.data.createPayment.payment?.id;
}
// @ts-expect-error amount is a number
export const wrong = () => client.mutate(CreatePaymentDocument, { input: { amount: '1', currency: 'CNY', orderReference: 'o' } });
`;
    writeFileSync(path.join(app, 'uses-require.cts'), `import sdk = require('@onecard/sdk');\nconst { OneCardClient, CreatePaymentDocument, PaymentsDocument } = sdk;\ntype UserErrorCode = sdk.UserErrorCode;\n${use}`);
    writeFileSync(path.join(app, 'uses-import.mts'), `import { OneCardClient, CreatePaymentDocument, PaymentsDocument, type UserErrorCode } from '@onecard/sdk';\n${use}`);
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', lib: ['es2023', 'dom'], types: ['node'], strict: true, noEmit: true, skipLibCheck: true }, files: ['uses-require.cts', 'uses-import.mts'] }),
    );
    const tsc = requireFromSdk.resolve('typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', app, '--traceResolution'], { cwd: app, maxBuffer: 64 * 1024 * 1024 }).catch((err: { stdout: string }) => err);
    const trace = result.stdout;
    expect(trace).not.toMatch(/error TS/);
    expect(trace).toContain("Module name '@onecard/sdk' was successfully resolved to");
    expect(trace).toMatch(/'@onecard\/sdk' was successfully resolved to '[^']*\/dist\/cjs\/index\.d\.ts'/);
    expect(trace).toMatch(/'@onecard\/sdk' was successfully resolved to '[^']*\/dist\/esm\/index\.d\.ts'/);
  });
});

describe('an outside project, against a started API', () => {
  let db: TestDatabase;
  let server: TestServer;
  let merchant: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    db = await freshDatabase();
    server = await startTestServer(db.orm);
    const { city } = await createCity(db.orm.em.fork(), { code: 'PKG', name: 'Packville', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Pack Cards' });
    const shop = await createMerchant(db.orm.em.fork(), { cityId: city.id, name: 'Packed Noodles' });
    const made = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: shop.id, name: 'outside app', scopes: ['payments:read', 'payments:write'] });
    merchant = { clientId: made.client.client_id, clientSecret: made.clientSecret! };
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await db?.close();
  });

  it('a TypeScript script type-checks with the repository tsc and runs: a payment made, narrowed, listed; the browser entry loads', async () => {
    // `r.data.createPayment.payment.id` without `!`: the script does not compile unless `ok` narrows.
    writeFileSync(
      path.join(app, 'pay.mts'),
      `import { OneCardClient, PaymentsDocument, type UserErrorCode } from '@onecard/sdk';
import * as browser from '@onecard/sdk/browser';

const [baseUrl, clientId, clientSecret, orderReference] = process.argv.slice(2) as [string, string, string, string];
const onecard = new OneCardClient({ baseUrl, clientId, clientSecret, scope: 'payments:read payments:write' });
const r = await onecard.payments.create({ amount: 1_500, currency: 'CNY', orderReference, description: 'Dan dan noodles' });
if (!r.ok) {
  const codes: UserErrorCode[] = r.userErrors.map((e) => e.code);
  throw new Error(codes.join());
}
const id: string = r.data.createPayment.payment.id;
const listed: string[] = [];
for await (const p of onecard.paginate(PaymentsDocument, { filter: { orderReference } }, (d) => d.payments)) listed.push(p.id);
const again = await onecard.payments.get(id);
console.log(JSON.stringify({ id, listed, status: again?.status, key: typeof r.idempotencyKey, browserEntry: typeof browser.OneCardClient, noWebhooksInBrowser: !('verifyWebhook' in browser) }));
`,
    );
    writeFileSync(
      path.join(app, 'tsconfig.pay.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', lib: ['es2023', 'dom'], types: ['node'], strict: true, skipLibCheck: false, outDir: 'out' }, files: ['pay.mts'] }),
    );
    const tsc = requireFromSdk.resolve('typescript/bin/tsc');
    const compiled = await run(process.execPath, [tsc, '-p', 'tsconfig.pay.json'], { cwd: app }).catch((err: { stdout: string }) => err);
    expect(compiled.stdout).toBe('');

    const orderReference = `outside-${Date.now()}`;
    const { stdout, stderr } = await run(process.execPath, ['out/pay.mjs', server.url, merchant.clientId, merchant.clientSecret, orderReference], { cwd: app });
    expect(stderr).toBe('');
    const out = JSON.parse(stdout) as { id: string; listed: string[] };
    expect(out).toEqual({ id: expect.any(String), listed: [out.id], status: 'REQUIRES_CARD', key: 'string', browserEntry: 'function', noWebhooksInBrowser: true });
  });
});
