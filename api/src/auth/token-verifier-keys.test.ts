import type { MikroORM } from '@mikro-orm/postgresql';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenVerifier } from './token-verifier.js';

// The published keys the verifier trusts, and when it fetches them again: a key rotated in is
// picked up on the first token that names it, at most once a second (a flood of tokens naming
// made-up keys must not become a flood of key loads); a key retired out stops being trusted within
// five minutes. verifyJwt reads no database, so the clock is faked and nothing waits.

const ISSUER = 'https://onecard.test/oauth';
const RESOURCE = 'https://onecard.test/graphql';
const T0 = new Date('2026-03-01T08:00:00Z').getTime();

interface TestKey {
  sign: (claims?: Record<string, unknown>) => Promise<string>;
  publicJwk: JWK;
}

async function newKey(): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' },
    sign: (claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ client_id: 'c1', jti: crypto.randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
        .setIssuer(ISSUER)
        .setAudience(RESOURCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(privateKey);
    },
  };
}

/** A verifier over a published key set the test changes, counting how often it is fetched. */
function verifierOver(published: { keys: JWK[] }) {
  const loads = { count: 0 };
  const verifier = new TokenVerifier({} as MikroORM, {
    issuer: ISSUER,
    resource: RESOURCE,
    loadPublicKeys: async () => {
      loads.count++;
      return published.keys;
    },
  });
  return { verifier, loads };
}

/** The refusal reason of a token, or 'ACCEPTED'. */
async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verifyJwt(token);
    return 'ACCEPTED';
  } catch (err) {
    return String((err as { extensions?: { reason?: string } }).extensions?.reason);
  }
}

const at = (ms: number) => vi.setSystemTime(T0 + ms);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  at(0);
});
afterEach(() => vi.useRealTimers());

describe('a key the verifier has not loaded: rotated in, or nobody’s', () => {
  it('is trusted from the first token that names it, the published keys being fetched again at most once a second', async () => {
    const [old, rotated] = [await newKey(), await newKey()];
    const published = { keys: [old.publicJwk] };
    const { verifier, loads } = verifierOver(published);
    expect(await outcome(verifier, await old.sign())).toBe('ACCEPTED');
    expect(loads.count).toBe(1);

    published.keys = [rotated.publicJwk, old.publicJwk];
    // Within a second of the last fetch an unknown key is not fetched for: the token is refused.
    at(500);
    expect(await outcome(verifier, await rotated.sign())).toBe('BAD_SIGNATURE');
    at(1_000);
    expect(await outcome(verifier, await rotated.sign())).toBe('BAD_SIGNATURE');
    expect(loads.count).toBe(1);
    // Past the second, the first token naming it fetches the keys again and passes.
    at(1_001);
    expect(await outcome(verifier, await rotated.sign())).toBe('ACCEPTED');
    expect(loads.count).toBe(2);
    // Tokens of a known key fetch nothing.
    at(5_000);
    expect(await outcome(verifier, await old.sign())).toBe('ACCEPTED');
    expect(await outcome(verifier, await rotated.sign())).toBe('ACCEPTED');
    expect(loads.count).toBe(2);
  });

  it('a flood of tokens naming keys nobody published fetches the keys once a second, not once a token', async () => {
    const [known, madeUp] = [await newKey(), await newKey()];
    const { verifier, loads } = verifierOver({ keys: [known.publicJwk] });
    expect(await outcome(verifier, await known.sign())).toBe('ACCEPTED');
    for (let ms = 1_001; ms <= 1_901; ms += 100) {
      at(ms);
      expect(await outcome(verifier, await madeUp.sign())).toBe('BAD_SIGNATURE');
    }
    expect(loads.count).toBe(2);
  });

  it('a token of a known key whose signature does not verify fetches nothing', async () => {
    const [known, forger] = [await newKey(), await newKey()];
    const { verifier, loads } = verifierOver({ keys: [known.publicJwk] });
    expect(await outcome(verifier, await known.sign())).toBe('ACCEPTED');
    at(2_000);
    const [header] = (await known.sign()).split('.');
    const [, payload, signature] = (await forger.sign()).split('.');
    expect(await outcome(verifier, `${header}.${payload}.${signature}`)).toBe('BAD_SIGNATURE');
    expect(loads.count).toBe(1);
  });
});

describe('a signing key retired out', () => {
  it('is trusted until five minutes after the keys were last fetched, then refused', async () => {
    const [retired, current] = [await newKey(), await newKey()];
    const published = { keys: [retired.publicJwk] };
    const { verifier, loads } = verifierOver(published);
    expect(await outcome(verifier, await retired.sign())).toBe('ACCEPTED');

    published.keys = [current.publicJwk];
    at(5 * 60_000);
    expect(await outcome(verifier, await retired.sign())).toBe('ACCEPTED');
    expect(loads.count).toBe(1);
    at(5 * 60_000 + 1);
    expect(await outcome(verifier, await retired.sign())).toBe('BAD_SIGNATURE');
    expect(loads.count).toBe(2);
    expect(await outcome(verifier, await current.sign())).toBe('ACCEPTED');
  });
});
