import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';

/**
 * What the kit reads of the caller (the auth checker, cost buckets, idempotency keys). The auth
 * context declares the whole principal and puts it on the request context (`principal`, by module
 * augmentation in auth/principal.ts), so the kit imports no context.
 */
export interface Caller {
  kind: string;
  clientId: string;
  holderId: string | null;
  scopes: string[];
}

/**
 * One GraphQL request's context. Contexts add what they hand their resolvers by module augmentation
 * (`principal` from auth/principal.ts, `gateway` from topups/, `cardSessions` from readers/); the
 * HTTP app at the top builds it.
 */
export interface GraphQLContext {
  /** A fork per request: no identity map is shared between requests. */
  em: EntityManager;
  requestId: string;
  log: Logger;
  config: Config;
  /** The query cost computed before execution, reported in `extensions.cost`. */
  cost?: number;
  /** The caller's IP address (behind a trusted proxy, the forwarded one): anonymous calls' cost bucket. */
  clientIp?: string;
}
