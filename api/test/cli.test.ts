import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { createProgram } from '../src/cli/program.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';

let db: TestDatabase;
const savedUrl = process.env.DATABASE_URL;

const savedKek = process.env.ONECARD_KEY_ENCRYPTION_KEY;
let dataDir: string;

beforeAll(async () => {
  db = await freshDatabase();
  // The demo seed writes a root CA file into the data folder: keep it out of the repository.
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-cli-'));
  process.env.ONECARD_DATA_DIR = dataDir;
  process.env.DATABASE_URL = db.url;
  process.env.ONECARD_KEY_ENCRYPTION_KEY = TEST_KEK;
});
afterAll(async () => {
  process.env.DATABASE_URL = savedUrl;
  if (savedUrl === undefined) delete process.env.DATABASE_URL;
  process.env.ONECARD_KEY_ENCRYPTION_KEY = savedKek;
  if (savedKek === undefined) delete process.env.ONECARD_KEY_ENCRYPTION_KEY;
  delete process.env.ONECARD_DATA_DIR;
  await fs.rm(dataDir, { recursive: true, force: true });
  await db.close();
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

/** Runs `onecard <args>` in-process and returns what it printed and its exit code. */
async function onecard(...args: string[]): Promise<{ out: string; exitCode: number }> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts) => void lines.push(parts.join(' ')));
  await createProgram().exitOverride().parseAsync(['node', 'onecard', ...args]);
  const exitCode = Number(process.exitCode ?? 0);
  return { out: lines.join('\n'), exitCode };
}

it('`onecard migrate` finds the database up to date, and `seed` runs each step once', async () => {
  expect((await onecard('migrate')).out).toBe('the database is up to date');
  const first = JSON.parse((await onecard('seed')).out);
  const second = JSON.parse((await onecard('seed')).out);
  expect(Object.keys(first.ledgerAccounts)).toEqual(['gatewayClearing', 'operatorFeeRevenue', 'settlementInTransit']);
  // The same data; the client secrets are printed by the run that made them, and never again.
  expect(first.clients.merchant.client_secret).toMatch(/^ocs_/);
  expect(second.clients.merchant.client_secret).toBeUndefined();
  expect(first.pki.rootCaPassphrase).toBeTruthy();
  expect(second.pki.rootCaPassphrase).toBeUndefined();
  expect(second.cardholders).toEqual(first.cardholders.map(({ username }: { username: string }) => ({ username })));
  expect({ ...second, clients: undefined, pki: undefined, cardholders: undefined }).toEqual({ ...first, clients: undefined, pki: undefined, cardholders: undefined });
  expect(second.clients.merchant.client_id).toBe(first.clients.merchant.client_id);
});

it('`onecard ledger check` passes a sound ledger and exits 1 with a list when a balance drifts', async () => {
  const em = db.orm.em.fork();
  const a = await openAccount(em, { code: 'cli.a', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const b = await openAccount(em, { code: 'cli.b', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  await post(em, { key: 'cli.1', description: 'x', lines: [debit(a.id, 500n), credit(b.id, 500n)] });

  const sound = await onecard('ledger', 'check');
  expect(sound).toEqual({ out: expect.stringContaining('ledger OK'), exitCode: 0 });

  await em.execute(`update ledger_account set balance = 499 where id = ?`, [b.id]);
  const broken = await onecard('ledger', 'check');
  expect(broken.exitCode).toBe(1);
  expect(broken.out).toBe(`BALANCE_DIFFERS_FROM_POSTINGS\t${b.id}\tcli.b: balance 499, postings say 500`);
});

it('`onecard clients create` registers a client for an existing tenant and shows its secret once', async () => {
  const demo = JSON.parse((await onecard('seed')).out);
  const created = JSON.parse((await onecard('clients', 'create', '--kind', 'merchant', '--tenant', demo.tenants.merchant, '--scope', 'payments:read refunds:write', '--json')).out);
  expect(created).toMatchObject({ kind: 'MERCHANT', client_secret: expect.stringMatching(/^ocs_/), token_endpoint_auth_method: 'client_secret_basic', scope: 'payments:read refunds:write' });
  const [stored] = await db.orm.em.fork().execute<{ secret_hash: string }[]>(`select secret_hash from oauth_client where client_id = ?`, [created.client_id]);
  expect(stored!.secret_hash).not.toContain(created.client_secret);

  await expect(onecard('clients', 'create', '--kind', 'merchant', '--tenant', demo.tenants.billers.water, '--scope', 'payments:read')).rejects.toThrow(/not a Merchant id/);
  await expect(onecard('clients', 'create', '--kind', 'biller', '--tenant', demo.tenants.billers.water, '--scope', 'payments:write')).rejects.toThrow(/may not hold payments:write/);
});

it('`onecard keys rotate` makes a new signing key and keeps the old one published', async () => {
  const before = await db.orm.em.fork().execute<{ kid: string }[]>(`select kid from oauth_signing_key where status = 'ACTIVE'`);
  const { out } = await onecard('keys', 'rotate');
  const keys = await db.orm.em.fork().execute<{ kid: string; status: string }[]>(`select kid, status from oauth_signing_key order by created_at`);
  const active = keys.filter((k) => k.status === 'ACTIVE');
  expect(active).toHaveLength(1);
  expect(out).toContain(`new signing key ${active[0]!.kid}`);
  for (const old of before) expect(keys).toContainEqual({ kid: old.kid, status: 'RETIRED' });
});

it('`onecard ca init-root` writes an encrypted root file; a second root cannot take over the hierarchy', async () => {
  await onecard('seed'); // installs the demo root and working CAs
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-ca-'));
  process.env.ONECARD_ROOT_CA_PASSPHRASE = 'another long passphrase';
  try {
    const file = path.join(dir, 'root.json');
    expect((await onecard('ca', 'init-root', '--out', file)).out).toContain(`root CA written to ${file}`);
    expect(await fs.readFile(file, 'utf8')).toContain('ENCRYPTED PRIVATE KEY');
    await expect(onecard('ca', 'init-root', '--out', file)).rejects.toThrow(/EEXIST/);
    await expect(onecard('ca', 'create-working', '--root', file, '--city', 'GZ')).rejects.toThrow(/another root CA is installed/);
  } finally {
    delete process.env.ONECARD_ROOT_CA_PASSPHRASE;
    await fs.rm(dir, { recursive: true, force: true });
  }
});

it('`onecard ca issue` makes a server certificate from a CSR that openssl accepts for TLS', async () => {
  await onecard('seed');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-issue-'));
  try {
    const run = promisify(execFile);
    await run('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-subj', '/CN=ignored', '-out', 'req.pem'], { cwd: dir });
    const out = (await onecard('ca', 'issue', '--ca', 'national', '--csr', path.join(dir, 'req.pem'), '--cn', 'api.onecard.test', '--dns', 'api.onecard.test', '--out', path.join(dir, 'chain.pem'))).out;
    expect(out).toMatch(/^issued serial [0-9a-f]+ \(server\) by national/);
    const chain = await fs.readFile(path.join(dir, 'chain.pem'), 'utf8');
    const certs = chain.split('-----END CERTIFICATE-----').filter((c) => c.includes('BEGIN'));
    expect(certs).toHaveLength(3);
    await fs.writeFile(path.join(dir, 'leaf.pem'), `${certs[0]}-----END CERTIFICATE-----\n`);
    await fs.writeFile(path.join(dir, 'ca.pem'), `${certs[1]}-----END CERTIFICATE-----\n`);
    await fs.writeFile(path.join(dir, 'root.pem'), `${certs[2]}-----END CERTIFICATE-----\n`);
    const { stdout } = await run('openssl', ['verify', '-CAfile', 'root.pem', '-untrusted', 'ca.pem', '-purpose', 'sslserver', '-verify_hostname', 'api.onecard.test', 'leaf.pem'], { cwd: dir });
    expect(stdout).toBe('leaf.pem: OK\n');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

const bin = path.resolve(import.meta.dirname, '../bin/onecard.js');

/** Runs the built `onecard` command as a process, to see its real exit code. */
async function onecardProcess(args: string[], env: Record<string, string>) {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout + e.stderr };
  }
}

it('the `onecard` process exits non-zero when a check fails (needs `npm run build`)', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-schema-'));
  try {
    const stale = path.join(dir, 'schema.graphql');
    await fs.writeFile(stale, 'type Query { stale: Int }\n');
    expect(await onecardProcess(['schema', 'check'], { ONECARD_SCHEMA_FILE: stale })).toMatchObject({ code: 1 });
    expect(await onecardProcess(['schema', 'check'], {})).toMatchObject({ code: 0, stdout: expect.stringContaining('up to date') });
    expect(await onecardProcess(['migrate'], { DATABASE_URL: 'mysql://nope' })).toEqual({ code: 1, stdout: expect.stringContaining('DATABASE_URL: expected a URL') });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
