/**
 * The built package, installed as an application would have it: `require('@onecard/sdk')` from
 * CommonJS and `import` from ESM both load it and work, and TypeScript finds its declarations either
 * way. The package is built afresh (scripts/build.mjs) into a temporary node_modules.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const sdkDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const requireFromSdk = createRequire(path.join(sdkDir, 'package.json'));
const pkg = JSON.parse(readFileSync(path.join(sdkDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

let app: string;

/** Links a package of the workspace's node_modules into the app's. */
function link(name: string) {
  const target = path.dirname(requireFromSdk.resolve(`${name}/package.json`));
  const at = path.join(app, 'node_modules', name);
  mkdirSync(path.dirname(at), { recursive: true });
  symlinkSync(target, at, 'dir');
}

beforeAll(async () => {
  app = mkdtempSync(path.join(os.tmpdir(), 'onecard-sdk-package-'));
  const installed = path.join(app, 'node_modules', '@onecard', 'sdk');
  mkdirSync(installed, { recursive: true });
  await run(process.execPath, [path.join(sdkDir, 'scripts', 'build.mjs'), '--out', path.join(installed, 'dist')], { cwd: sdkDir });
  cpSync(path.join(sdkDir, 'package.json'), path.join(installed, 'package.json'));
  for (const name of Object.keys(pkg.dependencies)) link(name);
  link('@types/node');
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
}, 300_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
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
