export type PrincipalKind = 'OPERATOR' | 'ISSUER' | 'MERCHANT' | 'BILLER' | 'CARDHOLDER_APP';

/** Who is calling. Built from a verified access token (auth/token-verifier.ts); null when anonymous. */
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
  /** For a party's console sign-in token: the party user who signed in (the token's `sub`). */
  userId?: string | null;
  scopes: string[];
}

// The request context carries the principal; declared here so the GraphQL kit imports no context.
declare module '../graphql/context.js' {
  interface GraphQLContext {
    principal: Principal | null;
  }
}
