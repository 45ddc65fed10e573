import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('needs no configuration at all', () => {
    const config = loadConfig({}, '/srv/onecard');
    expect(config).toMatchObject({ port: 4000, publicUrl: 'http://localhost:4000', databaseUrl: undefined, dataDir: '/srv/onecard/.onecard', env: 'development' });
  });

  it('derives PUBLIC_URL from PORT, and trims a trailing slash from a given one', () => {
    expect(loadConfig({ PORT: '8080' }).publicUrl).toBe('http://localhost:8080');
    expect(loadConfig({ PUBLIC_URL: 'https://onecard.example/' }).publicUrl).toBe('https://onecard.example');
  });

  it.each([
    ['PORT', 'eighty', 'a TCP port number'],
    ['PORT', '70000', 'a TCP port number'],
    ['PUBLIC_URL', 'localhost:4000', 'a URL'],
    ['DATABASE_URL', 'mysql://x', 'a URL (postgres: or postgresql:)'],
    ['LOG_LEVEL', 'loud', 'one of fatal, error'],
    ['NODE_ENV', 'staging', 'one of development, production, test'],
    ['GRAPHQL_INTROSPECTION', 'maybe', 'true or false'],
    ['TOPUP_MAX', '12.50', 'a positive whole number of minor units'],
    ['CARD_BALANCE_TRANSFER_DELAY', '-1', 'a whole number of seconds'],
    ['GATEWAY_URL', 'ftp://gateway', 'a URL (http: or https:)'],
  ])('a bad %s=%s is refused, naming the variable and what is expected', (variable, value, expected) => {
    const attempt = () => loadConfig({ [variable]: value });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(new RegExp(`^${variable}: expected ${expected.replace(/[()]/g, '\\$&')}`));
  });

  const gateway = { GATEWAY_URL: 'https://pay.example/', GATEWAY_SECRET_KEY: 'sk_live_1', GATEWAY_WEBHOOK_SECRET: 'whsec_0123456789abcdef' };

  it('turns introspection off in production unless asked for', () => {
    const production = { NODE_ENV: 'production', ONECARD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url') };
    expect(loadConfig({ ...production, ...gateway }).introspection).toBe(false);
    expect(loadConfig({ ...production, ...gateway, GRAPHQL_INTROSPECTION: 'true' }).introspection).toBe(true);
  });

  it('seeds no demo data in production unless asked for; elsewhere it does unless told not to', () => {
    const production = { NODE_ENV: 'production', ONECARD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url') };
    expect(loadConfig({ ...production, ...gateway }).demoData).toBe(false);
    expect(loadConfig({ ...production, ...gateway, ONECARD_DEMO: 'true' }).demoData).toBe(true);
    expect(loadConfig({}).demoData).toBe(true);
    expect(loadConfig({ ONECARD_DEMO: 'false' }).demoData).toBe(false);
    expect(() => loadConfig({ ONECARD_DEMO: 'maybe' })).toThrow(/^ONECARD_DEMO: expected true or false/);
  });

  it('needs a payment gateway in production; elsewhere the sandbox stands in', () => {
    const production = { NODE_ENV: 'production', ONECARD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url') };
    expect(() => loadConfig(production)).toThrow(/^GATEWAY_URL: expected .* required in production/);
    expect(() => loadConfig({ ...production, GATEWAY_URL: 'https://pay.example' })).toThrow(/^GATEWAY_SECRET_KEY: /);
    expect(() => loadConfig({ ...production, ...gateway, GATEWAY_WEBHOOK_SECRET: 'short' })).toThrow(/^GATEWAY_WEBHOOK_SECRET: .*got "5 characters"/);
    expect(loadConfig({ ...production, ...gateway }).gateway).toEqual({ url: 'https://pay.example', secretKey: 'sk_live_1', webhookSecret: 'whsec_0123456789abcdef', timeoutMs: 10_000 });
    expect(loadConfig({}).gateway).toBeUndefined();
  });

  it('reads top-up limits in minor units and refuses a minimum above the maximum', () => {
    expect(loadConfig({}).topUpLimits).toEqual({ purseMax: 100_000n, min: 100n, max: 100_000n, dailyMax: 200_000n });
    expect(() => loadConfig({ TOPUP_MIN: '5000', TOPUP_MAX: '1000' })).toThrow(/^TOPUP_MIN: expected at most TOPUP_MAX/);
  });

  it('refuses a purse maximum no card can hold (an M1 value block is a signed 32-bit number)', () => {
    expect(loadConfig({ TOPUP_PURSE_MAX: '2147483647' }).topUpLimits.purseMax).toBe(2_147_483_647n);
    expect(() => loadConfig({ TOPUP_PURSE_MAX: '2147483648' })).toThrow(/^TOPUP_PURSE_MAX: expected at most 2147483647 .*got "2147483648"/);
  });

  it('needs a 32-byte key-encryption key in production, and only there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/^ONECARD_KEY_ENCRYPTION_KEY: expected 32 random bytes .* required in production/);
    expect(() => loadConfig({ ONECARD_KEY_ENCRYPTION_KEY: 'c2hvcnQ' })).toThrow(/^ONECARD_KEY_ENCRYPTION_KEY: expected 32 random bytes/);
    expect(loadConfig({}).keyEncryptionKey).toBeUndefined();
  });

  it('bounds the HTTP server by default, and refuses limits that would lift the bounds', () => {
    expect(loadConfig({}).http).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 65_000, idleTimeoutMs: 120_000, maxConnections: 1024 });
    expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '0' })).toThrow(/^HTTP_REQUEST_TIMEOUT_MS: expected more than 0/);
    expect(() => loadConfig({ HTTP_MAX_CONNECTIONS: '0' })).toThrow(/^HTTP_MAX_CONNECTIONS: expected more than 0/);
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '90000' })).toThrow(/^HTTP_HEADERS_TIMEOUT_MS: expected at most HTTP_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000' })).toThrow(/^HTTP_KEEP_ALIVE_TIMEOUT_MS: expected at most 300000/);
  });

  it('reads the sign-in and token throttles, and refuses a ceiling below the first back-off', () => {
    expect(loadConfig({}).authThrottle).toEqual({
      signInPerAccount: { freeFailures: 5, firstBackoffSeconds: 30, maxBackoffSeconds: 900 },
      signInPerIp: { freeFailures: 50, firstBackoffSeconds: 60, maxBackoffSeconds: 3600 },
      tokenPerClient: { freeFailures: 10, firstBackoffSeconds: 30, maxBackoffSeconds: 900 },
      tokenPerIp: { freeFailures: 50, firstBackoffSeconds: 60, maxBackoffSeconds: 3600 },
      forgetAfterSeconds: 86_400,
    });
    expect(loadConfig({ TOKEN_THROTTLE_CLIENT_FAILURES: '3' }).authThrottle.tokenPerClient.freeFailures).toBe(3);
    expect(() => loadConfig({ SIGNIN_THROTTLE_ACCOUNT_BACKOFF_SECONDS: '600', SIGNIN_THROTTLE_ACCOUNT_MAX_BACKOFF_SECONDS: '60' })).toThrow(/^SIGNIN_THROTTLE_ACCOUNT_MAX_BACKOFF_SECONDS: expected at least/);
    expect(() => loadConfig({ TOKEN_THROTTLE_IP_BACKOFF_SECONDS: '0' })).toThrow(/^TOKEN_THROTTLE_IP_BACKOFF_SECONDS: expected more than 0/);
  });

  it('allows internal webhook and look-up URLs on loopback outside production, never in production', () => {
    const production = { NODE_ENV: 'production', ONECARD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url'), ...gateway };
    expect(loadConfig({}).internalUrls).toBe('loopback');
    expect(loadConfig({ ALLOW_INTERNAL_URLS: 'all' }).internalUrls).toBe('all');
    expect(loadConfig(production).internalUrls).toBe('none');
    expect(() => loadConfig({ ...production, ALLOW_INTERNAL_URLS: 'loopback' })).toThrow(/^ALLOW_INTERNAL_URLS: expected none in production/);
    expect(() => loadConfig({ ALLOW_INTERNAL_URLS: 'yes' })).toThrow(/^ALLOW_INTERNAL_URLS: expected one of none, loopback, all/);
  });

  it('takes a metrics token of 16 characters or more', () => {
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN: 'scrape-0123456789' }).metricsToken).toBe('scrape-0123456789');
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/^METRICS_TOKEN: expected a bearer token of 16 characters or more/);
  });

  it('puts the sandbox gateway on a fixed port (4010; a free one in tests) unless GATEWAY_SANDBOX_PORT says otherwise', () => {
    expect(loadConfig({}).sandboxGatewayPort).toBe(4010);
    expect(loadConfig({ NODE_ENV: 'test' }).sandboxGatewayPort).toBe(0);
    expect(loadConfig({ GATEWAY_SANDBOX_PORT: '4242' }).sandboxGatewayPort).toBe(4242);
    expect(() => loadConfig({ GATEWAY_SANDBOX_PORT: 'x' })).toThrow(/^GATEWAY_SANDBOX_PORT: expected a TCP port number/);
  });

  it('lets only tests make the process kill itself at its crash points', () => {
    expect(loadConfig({}).testCrashProbability).toBe(0);
    expect(loadConfig({ NODE_ENV: 'test', ONECARD_TEST_CRASH_PROBABILITY: '0.05' }).testCrashProbability).toBe(0.05);
    expect(() => loadConfig({ ONECARD_TEST_CRASH_PROBABILITY: '0.05' })).toThrow(/^ONECARD_TEST_CRASH_PROBABILITY: expected nothing outside NODE_ENV=test/);
    expect(() => loadConfig({ NODE_ENV: 'test', ONECARD_TEST_CRASH_PROBABILITY: '2' })).toThrow(/expected a probability from 0 to 1/);
  });
});
