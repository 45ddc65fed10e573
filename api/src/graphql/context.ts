import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';

/** Who is calling. Built from a verified access token (the auth context); null when anonymous. */
export interface Principal {
  kind: 'OPERATOR' | 'ISSUER' | 'MERCHANT' | 'BILLER' | 'CARDHOLDER_APP';
  clientId: string;
  /** The tenants the principal acts for (its merchant, biller, card company, or city). */
  tenantIds: string[];
  scopes: string[];
}

export interface GraphQLContext {
  /** A fork per request: no identity map is shared between requests. */
  em: EntityManager;
  principal: Principal | null;
  requestId: string;
  log: Logger;
  config: Config;
  /** The query cost computed before execution, reported in `extensions.cost`. */
  cost?: number;
}
