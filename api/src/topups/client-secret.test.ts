import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ClientSecretSeal } from './client-secret.js';

const SECRET = 'pi_123_secret_456';

describe('ClientSecretSeal: the key is handed in, one seal per app, none kept in the module', () => {
  it('opens what it sealed, for the same top-up only, and never holds the secret in clear', () => {
    const seal = new ClientSecretSeal(randomBytes(32));
    const sealed = seal.seal('top-up-1', SECRET)!;
    expect(sealed).not.toContain(SECRET);
    expect(seal.open('top-up-1', sealed)).toBe(SECRET);
    expect(() => seal.open('top-up-2', sealed)).toThrow();
  });

  it('two apps in one process keep their own keys: one cannot open what the other sealed', () => {
    // With one module-wide key, the app made last set the key for both.
    const first = new ClientSecretSeal(randomBytes(32));
    const second = new ClientSecretSeal(randomBytes(32));
    const sealedByFirst = first.seal('top-up-1', SECRET)!;
    expect(first.open('top-up-1', sealedByFirst)).toBe(SECRET);
    expect(() => second.open('top-up-1', sealedByFirst)).toThrow();
  });

  it('no secret, nothing sealed; nothing sealed, nothing opened', () => {
    const seal = new ClientSecretSeal(randomBytes(32));
    expect(seal.seal('top-up-1', null)).toBeNull();
    expect(seal.seal('top-up-1', '')).toBeNull();
    expect(seal.open('top-up-1', null)).toBeNull();
  });
});
