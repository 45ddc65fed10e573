import type { EntityManager } from '@mikro-orm/postgresql';

/** How often each API process sweeps; the deletes are idempotent, so processes need not agree. */
export const HOUSEKEEPING_INTERVAL_MS = 10 * 60 * 1000;

/**
 * Deletes what can no longer matter: expired authorization-server rows (codes, sessions,
 * interactions, grants), DPoP proof and assertion ids past their window, and revocations of
 * tokens that have expired anyway, and throttle counts past their window. Returns how many rows went.
 */
export async function purgeExpired(em: EntityManager): Promise<number> {
  const [row] = await em.execute<{ n: string }[]>(
    `with a as (delete from oidc_payload where expires_at < now() returning 1),
          b as (delete from seen_jti where expires_at < now() returning 1),
          c as (delete from revoked_access_token where expires_at < now() returning 1),
          d as (delete from auth_throttle where expires_at < now() returning 1)
     select (select count(*) from a) + (select count(*) from b) + (select count(*) from c) + (select count(*) from d) as n`,
  );
  return Number(row!.n);
}
