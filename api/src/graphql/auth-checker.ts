import { GraphQLError } from 'graphql';
import type { AuthChecker } from 'type-graphql';
import type { Caller, GraphQLContext } from './context.js';

const KIND = /^[A-Z_]+$/;
const KIND_SCOPE = /^([A-Z_]+)=(.+)$/;

/**
 * `@Authorized(...)` entries are principal kinds ("OPERATOR"), scopes ("payments:write") or a kind
 * with its own scope ("CARDHOLDER_APP=card:manage", see auth/scopes.ts scopeByKind). The caller needs
 * one of the kinds listed (if any), every plain scope listed, and its kind's own scope. Ownership of
 * the data is checked again in each service query (DESIGN.md §5).
 */
export const authChecker: AuthChecker<GraphQLContext> = ({ context }, requirements) => {
  const principal: Caller | null = context.principal;
  if (!principal) throw new GraphQLError('Authentication required: send an OAuth access token', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: new Map([['www-authenticate', 'Bearer realm="OneCard"']]) } } });
  const kinds: string[] = [];
  const scopes: string[] = [];
  const scopeOfKind = new Map<string, string>();
  for (const r of requirements) {
    const keyed = KIND_SCOPE.exec(r);
    if (keyed) {
      kinds.push(keyed[1]!);
      scopeOfKind.set(keyed[1]!, keyed[2]!);
    } else if (KIND.test(r)) kinds.push(r);
    else scopes.push(r);
  }
  const kindOk = kinds.length === 0 || kinds.includes(principal.kind);
  const own = scopeOfKind.get(principal.kind);
  const missing = [...scopes, ...(own ? [own] : [])].filter((s) => !principal.scopes.includes(s));
  if (!kindOk || missing.length) {
    throw new GraphQLError(kindOk ? `Missing scope: ${missing.join(' ')}` : `Not allowed for a ${principal.kind} client`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
  }
  return true;
};
