import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { GatewayClient } from '../topups/gateway/gateway-client.js';

export type PrincipalKind = 'OPERATOR' | 'ISSUER' | 'MERCHANT' | 'BILLER' | 'CARDHOLDER_APP';

/** Who is calling. Built from a verified access token (the auth context); null when anonymous. */
export interface Principal {
  kind: PrincipalKind;
  clientId: string;
  /**
   * The tenant the client acts for: the merchant's, biller's or card company's id for those kinds;
   * for a cardholder app, the card company that runs it; null for the operator.
   */
  tenantId: string | null;
  /** For a cardholder app's token: the cardholder who signed in and consented. */
  holderId: string | null;
  scopes: string[];
}

export interface GraphQLContext {
  /** A fork per request: no identity map is shared between requests. */
  em: EntityManager;
  principal: Principal | null;
  requestId: string;
  log: Logger;
  config: Config;
  /** The payment gateway (top-ups, refunds, payouts); null when none is configured. */
  gateway?: GatewayClient | null;
  /** The query cost computed before execution, reported in `extensions.cost`. */
  cost?: number;
}
