import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { createProgram } from '../src/cli/program.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { formatMinorUnits } from '../src/cli/settle-command.js';
import { recordClearingItem } from '../src/settlement/clearing-items.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';
import { payableAccount } from '../src/ledger/accounts.js';

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
  // The console's users likewise: their passwords printed once (issue 26).
  expect(first.console.users.merchant.password).toBeTruthy();
  expect(second.console.users.merchant).toEqual({ client_id: first.console.users.merchant.client_id, username: first.console.users.merchant.username });
  expect({ ...second, clients: undefined, pki: undefined, cardholders: undefined, console: undefined }).toEqual({ ...first, clients: undefined, pki: undefined, cardholders: undefined, console: undefined });
  expect(second.clients.merchant.client_id).toBe(first.clients.merchant.client_id);
});

it('the seed registers its transit terminal (the counter reader the QR ride example runs as a gate) as a QR scanner, on a line and stop', async () => {
  const scanners = await db.orm.em.fork().execute(`select r.serial, s.fare_cap::int as fare_cap, l.line, l.stop from qr_scanner s join reader r on r.id = s.reader_id left join terminal_location l on l.reader_id = r.id`);
  expect(scanners).toEqual([{ serial: 'GZ-COUNTER-0001', fare_cap: 1500, line: 'Metro Line 1', stop: 'Gongyuanqian' }]);
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

it('amounts in major units come from integer minor units by string arithmetic', () => {
  expect(formatMinorUnits(105_583n, 'CNY')).toBe('1,055.83');
  expect(formatMinorUnits('-1300', 'CNY')).toBe('-13.00');
  expect(formatMinorUnits(5n, 'CNY')).toBe('0.05');
  expect(formatMinorUnits(0n, 'CNY')).toBe('0.00');
  expect(formatMinorUnits(1_234_567n, 'JPY')).toBe('1,234,567');
  // Beyond what a float holds exactly.
  expect(formatMinorUnits(9_007_199_254_740_993n, 'CNY')).toBe('90,071,992,547,409.93');
});

it('`onecard settle` closes and clears a city’s day, prints its totals, reports stages on stderr, and changes nothing when run again', async () => {
  const em = db.orm.em.fork();
  const { city, cardCompany } = await createCity(em, { code: 'SETL', name: 'Settle City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Settle Card Co' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'CLI Shop' });
  const funding = await openAccount(em, { code: 'cli.card-purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, 'MERCHANT', shop.id, 'CNY');
  let n = 0;
  const book = async (kind: 'PAYMENT' | 'REFUND', amount: bigint, day = '2026-03-02') => {
    const key = `cli-settle:${++n}`;
    await em.transactional(async (tx) => {
      await post(tx, { key, description: kind, lines: kind === 'REFUND' ? [debit(payable.id, amount), credit(funding.id, amount)] : [debit(funding.id, amount), credit(payable.id, amount)] });
      await recordClearingItem(tx, { kind, participant: { kind: 'MERCHANT', id: shop.id }, cardCompanyId: cardCompany.id, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: new Date(`${day}T10:00:00+08:00`) });
    });
  };
  await book('PAYMENT', 123_456n);
  await book('PAYMENT', 544n);
  await book('REFUND', 1_000n);
  // The day before has a sale and no window yet: closing 2 March closes it first, and settle clears it first.
  await book('PAYMENT', 77n, '2026-03-01');

  /** `onecard settle ...` with what it wrote to stderr too. */
  const settle = async (...args: string[]) => {
    process.exitCode = undefined;
    const errors: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...parts) => void errors.push(parts.join(' ')));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
    try {
      return { ...(await onecard('settle', ...args)), errors: errors.join('\n'), stderr: stderr.join('') };
    } finally {
      vi.mocked(console.error).mockRestore();
      vi.mocked(process.stderr.write).mockRestore();
    }
  };

  const first = await settle('--city', 'setl', '--date', '2026-03-02', '--cutoff', '03:00');
  expect(first.exitCode).toBe(0);
  const table = (out: string) => out.slice(out.indexOf('  '), out.indexOf('\n\nwindow '));
  expect(first.out).toMatch(/^SETL 2026-03-02 \(CNY\) cleared:\n\(first cleared earlier windows left closed: 2026-03-01\)\nwindow \S+\n/);
  expect(table(first.out).split('\n').map((l) => l.trim().split(/\s{2,}/))).toEqual([
    ['count', 'amount (CNY)'],
    ['participants', '1'],
    ['items', '3'],
    ['gross sales', '2', '1,240.00'],
    ['refunds', '1', '10.00'],
    ['fees', '0.00'],
    ['net', '1,230.00'],
    ['carried in', '0.00'],
    ['payouts', '1', '1,230.00'],
    ['carried forward', '0', '0.00'],
    ['top-ups', '0', '0.00'],
    ['top-up refunds', '0.00'],
    ['interchange positions', '0', '0.00'],
    ['ledger entry', expect.stringMatching(/^settlement:[0-9a-f-]{36}:clearing \(2 postings\)$/)],
  ]);
  expect(first.out).toContain('window CLEARED, batch PAYING; payout instructions: 1 PENDING.');
  expect(first.out).toContain('not by this command');
  // Not a terminal: one plain line when each stage starts and one with its result.
  expect(first.stderr).toContain('settle: [1/6] closing SETL 2026-03-02 ...\n');
  expect(first.stderr).toMatch(/settle: \[1\/6\] closing SETL 2026-03-02: 3 items assigned \(\d+\.\d s\)\n/);
  expect(first.stderr).toMatch(/settle: \[2\/7\] clearing SETL 2026-03-01 \(an earlier window left closed\): batch PAYING/);
  expect(first.stderr).toMatch(/settle: \[3\/7\] clearing SETL 2026-03-02 \(3 items\): batch PAYING/);
  expect(first.stderr).toMatch(/settle: \[4\/7\] lines: 1 participant \(/);
  expect(first.stderr).toMatch(/settle: \[5\/7\] interchange: 0 positions/);
  expect(first.stderr).toMatch(/settle: \[6\/7\] ledger entry: settlement:\S+:clearing \(2 postings\)/);
  expect(first.stderr).toMatch(/settle: \[7\/7\] payouts: 1 PENDING/);
  const windows = await em.execute<{ day: string; status: string; closed_by: string; cutoff: string }[]>(
    `select business_day::text as day, status, closed_by, to_char(cutoff_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') as cutoff from settlement_window where city_id = ? order by business_day`,
    [city.id],
  );
  expect(windows).toEqual([
    { day: '2026-03-01', status: 'CLEARED', closed_by: 'cli', cutoff: '2026-03-02 03:00' },
    { day: '2026-03-02', status: 'CLEARED', closed_by: 'cli', cutoff: '2026-03-03 03:00' },
  ]);

  const counts = async () => (await em.execute<Record<string, string>[]>(`select (select count(*) from settlement_line) l, (select count(*) from journal_entry) e, (select count(*) from settlement_payout) p`))[0];
  const before = await counts();
  const again = await settle('--city', 'SETL', '--date', '2026-03-02');
  expect(again.exitCode).toBe(0);
  expect(again.out).toMatch(/^SETL 2026-03-02 \(CNY\) was already cleared at \S+: nothing changed/);
  expect(table(again.out)).toBe(table(first.out));
  expect(again.stderr).toMatch(/closing SETL 2026-03-02: already closed by cli: 3 items/);
  expect(again.stderr).toMatch(/already cleared, batch PAYING/);
  expect(await counts()).toEqual(before);

  // Refusals of the input: exit code 2 and a message, no stack.
  expect(await settle('--city', 'NOPE', '--date', '2026-03-02')).toMatchObject({ exitCode: 2, out: '', errors: expect.stringMatching(/^onecard settle: no city NOPE \(cities: .*SETL/) });
  expect(await settle('--city', 'SETL', '--date', '2999-01-01')).toMatchObject({ exitCode: 2, errors: expect.stringMatching(/^onecard settle: 2999-01-01 has not begun in this city \(today is \d{4}-\d{2}-\d{2}\)$/) });
  expect(await settle('--city', 'SETL', '--date', '2026-02-30')).toMatchObject({ exitCode: 2, errors: expect.stringContaining('--date is a business day YYYY-MM-DD') });
  expect(await settle('--city', 'SETL', '--date', '2026-03-03', '--cutoff', '25:00')).toMatchObject({ exitCode: 2, errors: expect.stringContaining('--cutoff is a time of day') });
  expect((await em.execute(`select 1 from settlement_window where city_id = ? and business_day > '2026-03-02'`, [city.id])).length).toBe(0);
  const help = createProgram().commands.find((c) => c.name() === 'settle')!.helpInformation();
  expect(help).toContain('It does not send payouts');
  expect(help).toContain('--cutoff <HH:MM>');
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
