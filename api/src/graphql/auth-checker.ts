import { GraphQLError } from 'graphql';
import type { AuthChecker } from 'type-graphql';
import type { GraphQLContext, Principal } from './context.js';

/**
 * `@Authorized(...)` entries are principal kinds ("OPERATOR") or scopes ("payments:write"); the
 * caller needs one of the kinds listed (if any) and every scope listed. Ownership of the data is
 * checked again in each service query (DESIGN.md §5).
 */
export const authChecker: AuthChecker<GraphQLContext> = ({ context }, requirements) => {
  const principal = context.principal;
  if (!principal) throw new GraphQLError('Authentication required: send an OAuth access token', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: new Map([['www-authenticate', 'Bearer realm="OneCard"']]) } } });
  const kinds = requirements.filter((r) => /^[A-Z_]+$/.test(r)) as Principal['kind'][];
  const scopes = requirements.filter((r) => !/^[A-Z_]+$/.test(r));
  const kindOk = kinds.length === 0 || kinds.includes(principal.kind);
  const missing = scopes.filter((s) => !principal.scopes.includes(s));
  if (!kindOk || missing.length) {
    throw new GraphQLError(kindOk ? `Missing scope: ${missing.join(' ')}` : `Not allowed for a ${principal.kind} client`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
  }
  return true;
};
