import type { EntityManager } from '@mikro-orm/postgresql';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { seal, unseal } from '../secrets/kek.js';
import { defineMachine, NOW, transitionWhere } from '../lifecycle/machine.js';

/** Access tokens are signed with ES256 (P-256): short signatures, fast verification. */
export const SIGNING_ALG = 'ES256';
/** A retired key stays published this long, well past the last token it signed (10 min TTL). */
export const RETIRED_KEY_GRACE_MS = 24 * 60 * 60 * 1000;

/** Sealed per kid, so a sealed key cannot be passed off as another. */
export function encryptJwk(kek: Buffer, kid: string, jwk: JWK): string {
  return seal(kek, `oauth-signing-key:${kid}`, Buffer.from(JSON.stringify(jwk), 'utf8'));
}

export function decryptJwk(kek: Buffer, kid: string, sealed: string): JWK {
  return JSON.parse(unseal(kek, `oauth-signing-key:${kid}`, sealed).toString('utf8')) as JWK;
}

export interface SigningKeys {
  /** Private keys for oidc-provider, the active one first (it signs). */
  privateJwks: JWK[];
  /** Public keys the resource server verifies against: active and recently retired. */
  publicJwks: JWK[];
}

async function newKey(em: EntityManager, kek: Buffer): Promise<string> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  const full = { ...jwk, kid, alg: SIGNING_ALG, use: 'sig' };
  const { d: _private, ...publicJwk } = full;
  await em.execute(`insert into oauth_signing_key (kid, encrypted_jwk, public_jwk, status) values (?, ?, ?, 'ACTIVE')`, [
    kid,
    encryptJwk(kek, kid, full),
    JSON.stringify(publicJwk),
  ]);
  return kid;
}

/** Makes the first signing key if there is none. Safe when several processes start at once. */
export async function ensureSigningKey(em: EntityManager, kek: Buffer): Promise<void> {
  await em.transactional(async (tx) => {
    await tx.execute(`lock table oauth_signing_key in share row exclusive mode`);
    const [active] = await tx.execute(`select kid from oauth_signing_key where status = 'ACTIVE'`);
    if (!active) await newKey(tx, kek);
  });
}

/** A signing key is ACTIVE (at most one) until a rotation retires it (lifecycle/machine.ts). */
export const signingKeyMachine = defineMachine<'ACTIVE' | 'RETIRED'>({
  name: 'oauth_signing_key',
  table: 'oauth_signing_key',
  key: 'kid',
  initial: ['ACTIVE'],
  transitions: { ACTIVE: ['RETIRED'], RETIRED: [] },
});

/**
 * Rotation: a new key signs from now on; the previous one is retired but stays published for
 * RETIRED_KEY_GRACE_MS, so every token it signed keeps verifying until it expires.
 */
export async function rotateSigningKey(em: EntityManager, kek: Buffer): Promise<{ kid: string; retired: string[] }> {
  return em.transactional(async (tx) => {
    await tx.execute(`lock table oauth_signing_key in share row exclusive mode`);
    const retired = (await transitionWhere(tx, signingKeyMachine, { from: ['ACTIVE'], to: 'RETIRED', patch: { retired_at: NOW }, where: 'true', cause: 'rotation' })) as { kid: string }[];
    const kid = await newKey(tx, kek);
    return { kid, retired: retired.map((r) => r.kid) };
  });
}

/** The keys in use now: the active key and the retired keys still within their grace period. */
export async function loadSigningKeys(em: EntityManager, kek: Buffer): Promise<SigningKeys> {
  const rows = await em.execute<{ kid: string; encrypted_jwk: string; public_jwk: JWK; status: string }[]>(
    `select kid, encrypted_jwk, public_jwk, status from oauth_signing_key
      where status = 'ACTIVE' or retired_at > now() - make_interval(secs => ?)
      order by status = 'ACTIVE' desc, created_at desc`,
    [RETIRED_KEY_GRACE_MS / 1000],
  );
  return {
    privateJwks: rows.map((r) => decryptJwk(kek, r.kid, r.encrypted_jwk)),
    publicJwks: rows.map((r) => r.public_jwk),
  };
}
