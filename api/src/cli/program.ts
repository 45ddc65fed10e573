import fs from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { TENANT_TYPE, tenantExists } from '../auth/auth.resolver.js';
import { createClient } from '../auth/clients.service.js';
import { rotateSigningKey } from '../auth/keys.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { loadConfig, type Config } from '../config/config.js';
import type { PrincipalKind } from '../graphql/context.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { openDatabase } from '../db/database.js';
import { migrate, openOrm, type Orm } from '../db/orm.js';
import { seedDemoData } from '../demo/seed.js';
import { printApiSchema } from '../graphql/schema.js';
import { createLogger } from '../http/logger.js';
import { checkLedger } from '../ledger/ledger-check.js';

/** Opens the configured database (embedded or DATABASE_URL) for one command, and closes it after. */
async function withOrm<T>(work: (orm: Orm, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger({ logLevel: process.env.LOG_LEVEL ? config.logLevel : 'warn' });
  const database = await openDatabase(config, log);
  try {
    const orm = await openOrm(database.url, { poolMax: 4 });
    try {
      return await work(orm, config);
    } finally {
      await orm.close(true);
    }
  } finally {
    await database.stop();
  }
}

const schemaFile = () => path.resolve(process.cwd(), process.env.ONECARD_SCHEMA_FILE || 'schema/schema.graphql');

/** The `onecard` command: one sub-command per administrative task, each with --help. */
export function createProgram(): Command {
  const program = new Command()
    .name('onecard')
    .description('OneCard platform administration. Reads the same environment as `npm start` (DATABASE_URL, ONECARD_DATA_DIR, ...).')
    .showHelpAfterError();

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
      const demo = await withOrm(async (orm) => {
        await migrate(orm);
        return seedDemoData(orm.em.fork(), createLogger({ logLevel: 'warn' }));
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

  const keys = program.command('keys').description('the authorization server signing keys');
  keys
    .command('rotate')
    .description('sign new access tokens with a new key; the old key stays published until its tokens have expired')
    .action(async () => {
      const result = await withOrm(async (orm, config) => rotateSigningKey(orm.em.fork(), await loadKeyEncryptionKey(config)));
      console.log(`new signing key ${result.kid}${result.retired.length ? `; retired ${result.retired.join(', ')} (still published for verification)` : ''}`);
      console.log('API processes sign with the new key after their next restart; until then they keep signing with the old one, which stays valid.');
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
  return program;
}
