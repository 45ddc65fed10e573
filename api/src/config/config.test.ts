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
  ])('a bad %s=%s is refused, naming the variable and what is expected', (variable, value, expected) => {
    const attempt = () => loadConfig({ [variable]: value });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(new RegExp(`^${variable}: expected ${expected.replace(/[()]/g, '\\$&')}`));
  });

  it('turns introspection off in production unless asked for', () => {
    const production = { NODE_ENV: 'production', ONECARD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url') };
    expect(loadConfig(production).introspection).toBe(false);
    expect(loadConfig({ ...production, GRAPHQL_INTROSPECTION: 'true' }).introspection).toBe(true);
  });

  it('needs a 32-byte key-encryption key in production, and only there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/^ONECARD_KEY_ENCRYPTION_KEY: expected 32 random bytes .* required in production/);
    expect(() => loadConfig({ ONECARD_KEY_ENCRYPTION_KEY: 'c2hvcnQ' })).toThrow(/^ONECARD_KEY_ENCRYPTION_KEY: expected 32 random bytes/);
    expect(loadConfig({}).keyEncryptionKey).toBeUndefined();
  });
});
