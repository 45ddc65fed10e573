import type { PrincipalKind } from './principal.js';

/**
 * Every scope, and the client kinds that may hold it. A client is registered with a subset of
 * its kind's scopes; a token carries a subset of its client's.
 */
export const SCOPES: Record<string, { description: string; kinds: PrincipalKind[] }> = {
  'payments:read': { description: 'read your payments and refunds', kinds: ['MERCHANT', 'OPERATOR'] },
  'payments:write': { description: 'create and cancel payments', kinds: ['MERCHANT'] },
  'refunds:write': { description: 'refund payments', kinds: ['MERCHANT'] },
  'bills:read': { description: 'read your bills, bill payments and reconciliation', kinds: ['BILLER', 'OPERATOR'] },
  'bills:write': { description: 'publish, amend and withdraw bills', kinds: ['BILLER'] },
  'settlements:read': { description: 'read settlement windows, batches and your statements', kinds: ['MERCHANT', 'BILLER', 'ISSUER', 'OPERATOR'] },
  'settlements:manage': { description: 'close settlement windows, clear them, reconcile them with the gateway and resolve differences', kinds: ['OPERATOR'] },
  'cards:read': { description: 'read the cards your card company issued', kinds: ['ISSUER', 'OPERATOR'] },
  'cards:write': { description: 'issue, block and replace cards', kinds: ['ISSUER'] },
  'topups:write': { description: 'top up cards at a counter', kinds: ['ISSUER'] },
  'cardkeys:manage': { description: 'import, activate and retire your card master keys (no API ever returns one)', kinds: ['ISSUER'] },
  'readers:manage': { description: 'register and revoke certified readers', kinds: ['ISSUER', 'OPERATOR'] },
  'tenants:manage': { description: 'create and update cities, card companies, merchants, billers and fee plans', kinds: ['OPERATOR'] },
  'clients:manage': { description: 'register OAuth clients, and the console users of any party', kinds: ['OPERATOR'] },
  'users:manage': { description: 'make your organisation’s console users (for an admin user, signed in to the console)', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] },
  'webhooks:manage': { description: 'register and change your webhook endpoints, see their deliveries, replay events', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] },
  'events:read': { description: 'read your events (what webhooks deliver), to catch up on missed ones', kinds: ['MERCHANT', 'BILLER', 'ISSUER'] },
  'ledger:read': { description: 'read ledger accounts, journal entries and the ledger checks', kinds: ['OPERATOR'] },
  'ledger:write': { description: 'post and reverse manual journal entries (moves money by hand)', kinds: ['OPERATOR'] },
  'card:read': { description: 'see the cardholder’s cards, balances and history', kinds: ['CARDHOLDER_APP'] },
  'card:topup': { description: 'top up the cardholder’s cards and pay with them', kinds: ['CARDHOLDER_APP'] },
  'card:manage': { description: 'register, report lost and replace the cardholder’s cards, and bind their utility accounts', kinds: ['CARDHOLDER_APP'] },
};

export const ALL_SCOPES = Object.keys(SCOPES);

export function scopesForKind(kind: PrincipalKind): string[] {
  return ALL_SCOPES.filter((s) => SCOPES[s]!.kinds.includes(kind));
}

/**
 * For a field several kinds may call, each under its own scope:
 * `@Authorized(...scopeByKind({ CARDHOLDER_APP: 'card:manage', ISSUER: 'cards:write' }))`. Each entry
 * reads `KIND=scope`; the auth checker (graphql/auth-checker.ts) lets in only the kinds named, each
 * holding its scope.
 */
export function scopeByKind(scopes: Partial<Record<PrincipalKind, string>>): string[] {
  return Object.entries(scopes).map(([kind, scope]) => `${kind}=${scope}`);
}
