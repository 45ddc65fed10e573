import fs from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { TENANT_TYPE, tenantExists } from '../auth/auth.resolver.js';
import { createClient } from '../auth/clients.service.js';
import { createPartyUserAs } from '../auth/party-users.service.js';
import { rotateSigningKey } from '../auth/keys.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { loadConfig, type Config } from '../config/config.js';
import { createWorkingCa, issueFromCsr, publishRootCrl, revokeCertificate } from '../pki/pki.service.js';
import { initRootCa, openRootCa } from '../pki/root-ca.js';
import { findCityByCode } from '../tenancy/tenancy.service.js';
import type { PrincipalKind } from '../auth/principal.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { openDatabase } from '../db/database.js';
import { migrate, openOrm, type Orm } from '../db/orm.js';
import { seedDemoFile } from '../demo/seed.js';
import { apiSchema, printApiSchema } from '../schema.js';
import { type AllowedBreakingChange, checkSchemaEvolution } from '../graphql/schema-evolution.js';
import { REFERENCE_FILE, syncReference } from '../graphql/reference-doc.js';
import { createLogger } from '../http/logger.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { settleCommand } from './settle-command.js';
import { partitionsCommand } from './partitions-command.js';
import { ridershipCommand } from './ridership-command.js';
import { cardKeysCommand } from './card-keys-command.js';
import { cardProfileCommand } from './card-profile-command.js';
import { developerCommands, type StopSignal, stopOnSignals } from './developer/developer-commands.js';
import { sandboxKeys, startFixedSandbox } from '../topups/gateway/sandbox-process.js';

/** Opens the configured database (embedded or DATABASE_URL) for one command, and closes it after. */
/**
 * Where the API is, for demo.json: said by PUBLIC_URL or PORT, else the publicUrl of the demo.json
 * the running `npm start` wrote. `PORT=4700 npm start`, then `npx onecard seed` in another shell
 * (without PORT) would otherwise point every example at port 4000.
 */
async function publicUrlForSeed(config: Config): Promise<string> {
  if (process.env.PUBLIC_URL || process.env.PORT) return config.publicUrl;
  const previous = await fs.readFile(path.join(config.dataDir, 'demo.json'), 'utf8').then((text) => JSON.parse(text) as { publicUrl?: unknown }, () => undefined);
  return typeof previous?.publicUrl === 'string' ? previous.publicUrl : config.publicUrl;
}

async function withOrm<T>(work: (orm: Orm, config: Config, database: { url: string; embedded: boolean }) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger({ logLevel: process.env.LOG_LEVEL ? config.logLevel : 'warn' });
  const database = await openDatabase(config, log);
  try {
    const orm = await openOrm(database.url, { poolMax: 4 });
    try {
      return await work(orm, config, database);
    } finally {
      await orm.close(true);
    }
  } finally {
    await database.stop();
  }
}

const schemaFile = () => path.resolve(process.cwd(), process.env.ONECARD_SCHEMA_FILE || 'schema/schema.graphql');

/**
 * The `onecard` command: one sub-command per administrative task, and the developer commands
 * (token, listen, trigger, events tail), each with --help. `stop` tells the long-running ones when to
 * stop (Ctrl-C by default; tests hand in their own).
 */
export function createProgram(io: { stop?: StopSignal } = {}): Command {
  const program = new Command()
    .name('onecard')
    .description('OneCard platform administration. Reads the same environment as `npm start` (DATABASE_URL, ONECARD_DATA_DIR, ...).')
    .showHelpAfterError();

  for (const command of developerCommands(io.stop ?? stopOnSignals)) program.addCommand(command);

  program
    .command('migrate')
    .description('apply the checked-in database migrations that have not run yet')
    .action(async () => {
      const applied = await withOrm((orm) => migrate(orm));
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database is up to date');
    });

  program
    .command('seed')
    .description('apply migrations, then the demo data steps that have not run yet; prints the demo data')
    .action(async () => {
      const demo = await withOrm(async (orm, config, database) => {
        await migrate(orm);
        // The very demo.json `npm start` writes (publicUrl included); it keeps the secrets this run printed.
        const publicUrl = await publicUrlForSeed(config);
        return (await seedDemoFile(orm.em.fork(), createLogger({ logLevel: 'warn' }), { config: { ...config, publicUrl }, kek: await loadKeyEncryptionKey(config), database })).seeded;
      });
      console.log(JSON.stringify(demo, null, 2));
    });

  const ledger = program.command('ledger').description('the double-entry ledger');
  ledger
    .command('check')
    .description('check every ledger invariant; exit code 1 and a list when one is broken')
    .option('--json', 'print the problems as JSON')
    .action(async (opts: { json?: boolean }) => {
      const problems = await withOrm((orm) => checkLedger(orm.em.fork()));
      if (opts.json) console.log(JSON.stringify(problems, null, 2));
      else if (problems.length === 0) console.log('ledger OK: entries balance, balances match their postings, no non-negative account is below zero');
      else for (const p of problems) console.log(`${p.rule}\t${p.subject}\t${p.detail}`);
      process.exitCode = problems.length ? 1 : 0;
    });

  program.addCommand(settleCommand(withOrm));
  program.addCommand(partitionsCommand(withOrm));
  program.addCommand(ridershipCommand(withOrm));

  const clients = program.command('clients').description('OAuth clients of the platform');
  clients
    .command('create')
    .description('register an OAuth client; prints its id and, once, its secret')
    .requiredOption('--kind <kind>', 'merchant, biller, issuer, operator or cardholder-app')
    .option('--tenant <id>', 'global id (or uuid) of its Merchant, Biller or CardCompany; not for operator')
    .requiredOption('--scope <scopes>', 'space-separated scopes, e.g. "payments:read payments:write"')
    .option('--name <name>', 'a name people recognise', 'OAuth client')
    .option('--jwks <file>', 'a JWK Set file of public keys: authenticate with private_key_jwt instead of a secret')
    .option('--dpop', 'require DPoP-bound access tokens')
    .option('--redirect-uri <uri...>', 'cardholder apps: where the authorization code goes')
    .option('--json', 'print JSON')
    .action(async (opts: { kind: string; tenant?: string; scope: string; name: string; jwks?: string; dpop?: boolean; redirectUri?: string[]; json?: boolean }) => {
      const kinds: Record<string, PrincipalKind> = { merchant: 'MERCHANT', biller: 'BILLER', issuer: 'ISSUER', operator: 'OPERATOR', 'cardholder-app': 'CARDHOLDER_APP' };
      const kind = kinds[opts.kind];
      if (!kind) throw new Error(`--kind must be one of ${Object.keys(kinds).join(', ')}`);
      const tenantType = TENANT_TYPE[kind];
      if (!tenantType && opts.tenant) throw new Error('an operator client has no tenant; leave out --tenant');
      if (tenantType && !opts.tenant) throw new Error(`a ${opts.kind} client needs --tenant (the global id of its ${tenantType})`);
      const tenantId = opts.tenant && (/^[0-9a-f-]{36}$/i.test(opts.tenant) ? opts.tenant.toLowerCase() : fromGlobalId(opts.tenant, tenantType ?? undefined).id);
      const jwks = opts.jwks ? JSON.parse(await fs.readFile(opts.jwks, 'utf8')) : undefined;
      const created = await withOrm(async (orm) => {
        if (tenantId && !(await tenantExists(orm.em.fork(), kind, tenantId))) throw new Error(`no ${tenantType} ${opts.tenant}`);
        return createClient(orm.em.fork(), { kind, tenantId: tenantId || null, name: opts.name, scopes: opts.scope.split(/\s+/).filter(Boolean), jwks, dpopBound: opts.dpop, redirectUris: opts.redirectUri });
      });
      const out = { client_id: created.client.client_id, client_secret: created.clientSecret, kind, token_endpoint_auth_method: created.client.auth_method, scope: created.client.scopes.join(' '), dpop_bound: created.client.dpop_bound };
      if (opts.json) console.log(JSON.stringify(out, null, 2));
      else {
        console.log(`client_id      ${out.client_id}`);
        if (out.client_secret) console.log(`client_secret  ${out.client_secret}   (shown once; only its hash is kept)`);
        console.log(`auth method    ${out.token_endpoint_auth_method}${out.dpop_bound ? ', DPoP-bound tokens' : ''}\nscope          ${out.scope}`);
      }
    });

  const users = program.command('users').description('the people of the parties who sign in to the web console (docs/console.md#party-users)');
  users
    .command('create')
    .description('make a console user of a party; prints, once, the initial password the person replaces at the first sign-in')
    .requiredOption('--client <client_id>', 'the party’s console sign-in client (clients create … --redirect-uri $PUBLIC_URL/console/)')
    .requiredOption('--username <name>', '3 to 64 letters, digits, ".", "_", "-" or "@"')
    .requiredOption('--name <display-name>', 'how the console names the person')
    .option('--admin', 'the person may make the party’s other users')
    .option('--json', 'print JSON')
    .action(async (opts: { client: string; username: string; name: string; admin?: boolean; json?: boolean }) => {
      const { user, initialPassword } = await withOrm((orm) => createPartyUserAs(orm.em.fork(), { kind: 'OPERATOR', tenantId: null }, { clientId: opts.client, username: opts.username, displayName: opts.name, admin: opts.admin ?? false }));
      const out = { username: user.username, sign_in_client: user.clientId, admin: user.admin, initial_password: initialPassword };
      if (opts.json) console.log(JSON.stringify(out, null, 2));
      else {
        console.log(`username          ${out.username}${out.admin ? ' (admin)' : ''}\nsign-in client    ${out.sign_in_client}`);
        console.log(`initial password  ${out.initial_password}   (shown once; the first sign-in asks for the person's own)`);
      }
    });

  const keys = program.command('keys').description('the authorization server signing keys');
  keys
    .command('rotate')
    .description('sign new access tokens with a new key; the old key stays published until its tokens have expired')
    .action(async () => {
      const result = await withOrm(async (orm, config) => rotateSigningKey(orm.em.fork(), await loadKeyEncryptionKey(config)));
      console.log(`new signing key ${result.kid}${result.retired.length ? `; retired ${result.retired.join(', ')} (still published for verification)` : ''}`);
      console.log('API processes sign with the new key after their next restart; until then they keep signing with the old one, which stays valid.');
    });

  program.addCommand(cardKeysCommand(withOrm));
  program.addCommand(cardProfileCommand(withOrm));

  const ca = program.command('ca').description('the certificate authorities of the reader trust chain');
  const passphrase = async (file?: string) => {
    const value = file ? (await fs.readFile(file, 'utf8')).trim() : process.env.ONECARD_ROOT_CA_PASSPHRASE;
    if (!value) throw new Error('give the root CA passphrase with --passphrase-file FILE or ONECARD_ROOT_CA_PASSPHRASE');
    return value;
  };
  ca.command('init-root')
    .description('create the offline root CA: certificate and passphrase-encrypted key, written to a file and never to the database')
    .requiredOption('--out <file>', 'where to write it (refuses to overwrite)')
    .option('--passphrase-file <file>', 'the passphrase (else ONECARD_ROOT_CA_PASSPHRASE)')
    .option('--name <cn>', 'the root certificate common name', 'OneCard Root CA')
    .action(async (opts: { out: string; passphraseFile?: string; name: string }) => {
      const root = await initRootCa(opts.out, await passphrase(opts.passphraseFile), { commonName: opts.name });
      console.log(`root CA written to ${opts.out}; serial ${root.certificate.serialNumber}, valid until ${root.certificate.validity.notAfter.toISOString()}`);
      console.log('Keep the file offline. It signs the working CAs: `onecard ca create-working`.');
    });
  ca.command('create-working')
    .description('create the national working CA or a city working CA, signed by the root')
    .requiredOption('--root <file>', 'the root CA file')
    .option('--passphrase-file <file>', 'the root passphrase (else ONECARD_ROOT_CA_PASSPHRASE)')
    .option('--national', 'the national working CA')
    .option('--city <code>', 'the working CA of this city (e.g. GZ)')
    .action(async (opts: { root: string; passphraseFile?: string; national?: boolean; city?: string }) => {
      if (!opts.national === !opts.city) throw new Error('give exactly one of --national and --city CODE');
      const root = await openRootCa(opts.root, await passphrase(opts.passphraseFile));
      const created = await withOrm(async (orm, config) => {
        const kek = await loadKeyEncryptionKey(config);
        if (opts.national) return createWorkingCa(orm.em.fork(), kek, root, { kind: 'NATIONAL', name: 'OneCard National Working CA', publicUrl: config.publicUrl });
        const city = await findCityByCode(orm.em.fork(), opts.city!.toUpperCase());
        if (!city) throw new Error(`no city ${opts.city}`);
        return createWorkingCa(orm.em.fork(), kek, root, { kind: 'CITY', cityId: city.id, cityCode: city.code, name: `OneCard ${city.code} City Working CA`, publicUrl: config.publicUrl });
      });
      console.log(`created CA ${created.id}`);
    });
  ca.command('root-crl')
    .description('sign the root CRL (revoked working CAs) with the offline root and publish it at /pki/root.crl')
    .requiredOption('--root <file>', 'the root CA file')
    .option('--passphrase-file <file>', 'the root passphrase (else ONECARD_ROOT_CA_PASSPHRASE)')
    .option('--days <n>', 'how long it is valid', '30')
    .action(async (opts: { root: string; passphraseFile?: string; days: string }) => {
      const root = await openRootCa(opts.root, await passphrase(opts.passphraseFile));
      const der = await withOrm((orm) => publishRootCrl(orm.em.fork(), root, new Date(), Number(opts.days)));
      console.log(`root CRL published (${der.length} bytes), valid ${opts.days} days`);
    });
  ca.command('issue')
    .description('issue a certificate from a CSR: a server (TLS) or terminal certificate, from a working CA')
    .requiredOption('--ca <id>', 'the working CA: national or city-<code>')
    .requiredOption('--csr <file>', 'the PEM CSR (RSA)')
    .requiredOption('--cn <name>', 'the subject common name (the CSR subject is not used)')
    .option('--profile <profile>', 'server or terminal', 'server')
    .option('--dns <names...>', 'server: DNS names for subjectAltName')
    .option('--days <n>', 'validity in days', '365')
    .requiredOption('--out <file>', 'where to write the certificate chain (PEM)')
    .action(async (opts: { ca: string; csr: string; cn: string; profile: string; dns?: string[]; days: string; out: string }) => {
      if (opts.profile !== 'server' && opts.profile !== 'terminal') throw new Error('--profile is server or terminal (readers are registered with registerReader)');
      const csrPem = await fs.readFile(opts.csr, 'utf8');
      const issued = await withOrm(async (orm, config) =>
        issueFromCsr(orm.em.fork(), await loadKeyEncryptionKey(config), opts.ca, {
          csrPem,
          profile: opts.profile as 'server' | 'terminal',
          subject: { commonName: opts.cn, organization: 'OneCard', country: 'CN' },
          validityDays: Number(opts.days),
          publicUrl: config.publicUrl,
          dnsNames: opts.dns,
        }),
      );
      await fs.writeFile(opts.out, issued.chainPem.join(''));
      console.log(`issued serial ${issued.row.serial} (${opts.profile}) by ${opts.ca}; chain written to ${opts.out}`);
    });
  ca.command('revoke')
    .description('revoke a certificate a working CA issued; its next CRL lists it')
    .requiredOption('--serial <hex>', 'the serial number')
    .option('--reason <code>', 'RFC 5280 CRLReason: 1 keyCompromise, 4 superseded, 5 cessationOfOperation', '0')
    .action(async (opts: { serial: string; reason: string }) => {
      const row = await withOrm((orm) => revokeCertificate(orm.em.fork(), opts.serial, Number(opts.reason)));
      console.log(`revoked ${row.serial} (${row.subject}) issued by ${row.ca_id}`);
    });

  program
    .command('sandbox-gateway')
    .description(
      'run the sandbox payment gateway as a process of its own (outside production, without GATEWAY_URL), on GATEWAY_SANDBOX_PORT (4010), with its keys and state in ONECARD_DATA_DIR; it sends its webhooks to PUBLIC_URL. An API started beside it uses it, and killing the API does not kill it. Ctrl-C stops it.',
    )
    .action(async () => {
      const config = loadConfig();
      if (config.gateway) throw new Error('GATEWAY_URL is set: the API uses that gateway, not the sandbox');
      const log = createLogger(config);
      const sandbox = await startFixedSandbox({ dataDir: config.dataDir, port: config.sandboxGatewayPort, keys: await sandboxKeys(config.dataDir), webhookUrl: `${config.publicUrl}/webhooks/gateway`, log });
      console.log(`sandbox gateway at ${sandbox.url} (webhooks to ${config.publicUrl}/webhooks/gateway); Ctrl-C stops it`);
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve());
      });
      await sandbox.close();
    });

  const schema = program.command('schema').description('the GraphQL schema emitted from the code');
  schema
    .command('emit')
    .description('write schema/schema.graphql from the code')
    .action(async () => {
      await fs.mkdir(path.dirname(schemaFile()), { recursive: true });
      await fs.writeFile(schemaFile(), await printApiSchema());
      console.log(`wrote ${path.relative(process.cwd(), schemaFile())}`);
    });
  schema
    .command('check')
    .description('exit code 1 when schema/schema.graphql is not what the code emits')
    .action(async () => {
      const current = await fs.readFile(schemaFile(), 'utf8').catch(() => '');
      if (current === (await printApiSchema())) {
        console.log('schema/schema.graphql is up to date');
        return;
      }
      console.error('schema/schema.graphql is stale: run `npm run schema:emit` and commit it');
      process.exitCode = 1;
    });
  schema
    .command('breaking')
    .description('exit code 1 on a breaking change from schema/released.graphql not allowed by schema/changes.json')
    .action(async () => {
      const dir = path.dirname(schemaFile());
      const released = process.env.ONECARD_RELEASED_SCHEMA_FILE || path.join(dir, 'released.graphql');
      const list = JSON.parse(await fs.readFile(process.env.ONECARD_SCHEMA_CHANGES_FILE || path.join(dir, 'changes.json'), 'utf8')) as { allowedBreakingChanges: AllowedBreakingChange[] };
      const report = await checkSchemaEvolution({ released: await fs.readFile(released, 'utf8'), current: await fs.readFile(schemaFile(), 'utf8'), allowed: list.allowedBreakingChanges });
      for (const c of report.allowed) console.log(`allowed breaking change  ${c.type} ${c.path}: ${c.message}`);
      for (const c of report.refused) console.error(`breaking change  ${c.type} ${c.path}: ${c.message}\n  ${c.why}`);
      if (report.refused.length) process.exitCode = 1;
      else console.log(`no breaking change against ${path.relative(process.cwd(), released)} beyond the ${report.allowed.length} listed`);
    });
  schema
    .command('reference')
    .description(`print ${REFERENCE_FILE}, the API reference generated from the schema; --write writes it, --check exits 1 when it is stale`)
    .option('--write', `write ${REFERENCE_FILE}`)
    .option('--check', `exit code 1 when ${REFERENCE_FILE} is not what the schema generates`)
    .action(async (opts: { write?: boolean; check?: boolean }) => {
      process.exitCode = await syncReference(await apiSchema(), opts.write ? 'write' : opts.check ? 'check' : 'print');
    });
  return program;
}
