import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal, PrincipalKind } from './principal.js';
import type { OAuthClientRow } from './clients.service.js';
import { findPartyUser } from './party-users.service.js';
import { SCOPES, scopesForKind } from './scopes.js';

/** The kinds a client can be registered as, in the order people meet them. */
export const CLIENT_KINDS: PrincipalKind[] = ['MERCHANT', 'BILLER', 'ISSUER', 'CARDHOLDER_APP', 'OPERATOR'];

/** Each kind's scopes with what they allow: what a registration form offers (createClient refuses any other). */
export function scopesByKind(): { kind: PrincipalKind; scopes: { name: string; description: string }[] }[] {
  return CLIENT_KINDS.map((kind) => ({ kind, scopes: scopesForKind(kind).map((name) => ({ name, description: SCOPES[name]!.description })) }));
}

/**
 * Whose clients the caller may list, as a WHERE clause: the operator (clients:manage) every client;
 * a party's admin user, signed in to the console (users:manage), its own party's clients (its kind
 * and tenant); nobody else (a back end's token names no person, a clerk is no admin): null.
 */
async function listableBy(em: EntityManager, principal: Principal): Promise<{ sql: string; params: unknown[] } | null> {
  if (principal.kind === 'OPERATOR') return principal.scopes.includes('clients:manage') ? { sql: 'true', params: [] } : null;
  if (principal.kind === 'CARDHOLDER_APP' || !principal.scopes.includes('users:manage') || !principal.userId || !principal.tenantId) return null;
  const me = await findPartyUser(em, principal.userId);
  if (!me?.admin) return null;
  // The admin's own sign-in client says which party it belongs to; the token's kind and tenant must be that party.
  const [mine] = await em.execute<{ kind: PrincipalKind; tenant_id: string | null }[]>(`select kind, tenant_id from oauth_client where client_id = ?`, [me.clientId]);
  if (!mine || mine.kind !== principal.kind || mine.tenant_id !== principal.tenantId) return null;
  return { sql: 'kind = ? and tenant_id = ?', params: [principal.kind, principal.tenantId] };
}

/**
 * The OAuth clients the caller may see, newest first; keyset on (created_at, client_id). Rows carry
 * the secret's hash and the keys: the GraphQL view leaves both out. Null when the caller may list none.
 */
export async function listClientsFor(em: EntityManager, principal: Principal, filter: { kind?: PrincipalKind }, page: { after?: { createdAt: string; id: string }; limit: number }): Promise<OAuthClientRow[] | null> {
  const where = await listableBy(em, principal);
  if (!where) return null;
  const clauses = [`(${where.sql})`];
  const params: unknown[] = [...where.params];
  if (filter.kind) {
    clauses.push('kind = ?');
    params.push(filter.kind);
  }
  if (page.after) {
    if (Number.isNaN(Date.parse(page.after.createdAt))) return [];
    clauses.push('(created_at, client_id) < (coalesce((select created_at from oauth_client where client_id = ?), ?::timestamptz), ?)');
    params.push(page.after.id, page.after.createdAt, page.after.id);
  }
  return em.execute<OAuthClientRow[]>(`select * from oauth_client where ${clauses.join(' and ')} order by created_at desc, client_id desc limit ?`, [...params, page.limit]);
}
