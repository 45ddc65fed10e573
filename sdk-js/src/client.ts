import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import * as oauth from 'oauth4webapi';
import { prepareOperation, type GraphQLDocument, type OperationVariables } from './documents.js';
import type { PrincipalKind } from './generated/graphql.js';
import { resourcesOf, type BillsResource, type CardsResource, type MerchantsResource, type PaymentsResource, type ReadersResource, type TopUpsResource, type WebhooksResource } from './resources.js';
import { toMutationResult, type Connection, type MutationResult } from './results.js';
import type { AccessToken } from './sign-in.js';
import { backoffDelay, isNetworkError, markingNetworkErrors, parseRetryAfter, retryPolicy, sleep, type RetryOptions } from './retry.js';

/** The kinds of OAuth client (principal) the API knows. */
export type { PrincipalKind };

/** The caller as the API sees it (`query { viewer { … } }`). */
export interface Viewer {
  kind: PrincipalKind;
  /** The OAuth client id. */
  clientId: string;
  /** Global id of the tenant the client acts for; null for the operator. */
  tenantId: string | null;
  /** The scopes the access token carries. */
  scopes: string[];
}

/**
 * `baseUrl` checked before use: options often come from a config file (demo.json), and a missing
 * value must be named, not surface as `new URL`'s "Invalid URL … input: 'undefined'".
 */
function baseUrlOf(value: unknown): URL {
  if (value === undefined || value === null || value === '') {
    throw new TypeError('OneCardClient: baseUrl is required (where the API is served, e.g. https://api.onecard.example; in demo.json it is publicUrl)');
  }
  if (value instanceof URL) return value;
  if (typeof value === 'string' && URL.canParse(value) && /^https?:$/.test(new URL(value).protocol)) return new URL(value);
  throw new TypeError(`OneCardClient: baseUrl must be an absolute http(s) URL, got ${JSON.stringify(String(value))}`);
}

/** One entry of a GraphQL response's `errors`. */
export interface GraphQLErrorEntry {
  message: string;
  path?: ReadonlyArray<string | number>;
  locations?: ReadonlyArray<{ line: number; column: number }>;
  extensions?: { code?: string; reason?: string; [key: string]: unknown };
}

/**
 * Options of {@link OneCardClient}. Give exactly one of `clientSecret` and `privateKey` (a client
 * that gets its own tokens: client credentials), or `accessToken` (an app acting for a cardholder,
 * signed in with PKCE: see sign-in.ts).
 */
export interface OneCardClientOptions {
  /** Where the API is served, e.g. `https://api.onecard.example`; the SDK uses `/oauth` and `/graphql` below it. */
  baseUrl: string | URL;
  /** The OAuth client id, e.g. `oc_merchant_…`. */
  clientId: string;
  /** The client secret, sent with `client_secret_basic`. */
  clientSecret?: string;
  /** The private key registered (as a public JWK) for `private_key_jwt`. */
  privateKey?: oauth.CryptoKey;
  /** The `kid` of `privateKey`, put in the assertion's header. */
  keyId?: string;
  /**
   * For an app acting for a cardholder (a public client: no secret): gives the access token to use,
   * e.g. the one {@link finishSignIn} returned. Called when the client first needs a token, when it is
   * about to expire, and once more when the API refuses it; sign the holder in again from here.
   */
  accessToken?: () => AccessToken | Promise<AccessToken>;
  /**
   * A key pair to bind access tokens to with DPoP (RFC 9449); required for clients registered as
   * DPoP-bound. Its public key must be extractable. Each API request then carries a fresh proof.
   */
  dpopKeyPair?: oauth.CryptoKeyPair;
  /**
   * Space-separated scopes to ask for, among those the client was registered with. Ask for what you
   * need: without it the server issues a token that carries no scopes.
   */
  scope?: string;
  /** A `fetch` to use for every request (token and API), e.g. to add logging or a proxy. */
  fetch?: typeof fetch;
  /**
   * Allow plain `http:`. Defaults to true only for loopback hosts (`localhost`, `127.0.0.1`, `[::1]`);
   * anything else must be `https:` unless this is set.
   */
  allowInsecureHttp?: boolean;
  /** The clock, in milliseconds since the epoch (default `Date.now`); token expiry is judged by it. */
  now?: () => number;
  /**
   * How calls that may safely be sent again are retried (queries, and money mutations with their
   * idempotency key): see {@link RetryOptions}. `false` turns retries off.
   */
  retry?: RetryOptions | false;
  /** Makes the idempotency key of a money mutation called without one (default `crypto.randomUUID`). */
  newIdempotencyKey?: () => string;
}

/** Options of one call ({@link OneCardClient.execute}, `mutate`, `paginate`, `request`). */
export interface RequestOptions {
  /**
   * The idempotency key for the call's money mutation, when its input has none; by default the client
   * makes one (a UUID) per call. Give your own to retry a call later, e.g. after a crash, with the
   * same effect as once.
   */
  idempotencyKey?: string;
  /** Aborts the call, including the waits between retries. */
  signal?: AbortSignal;
  /** This call's retry policy, over the client's. */
  retry?: RetryOptions | false;
}

/** The arguments after the document: the variables (optional when every one is), then the options. */
export type OperationArgs<TVariables> =
  {} extends OperationVariables<TVariables> ? [variables?: OperationVariables<TVariables>, options?: RequestOptions] : [variables: OperationVariables<TVariables>, options?: RequestOptions];

/**
 * An error from the OneCard API, or from getting an access token for it.
 *
 * `code` is the GraphQL `extensions.code` of the first error (e.g. `UNAUTHENTICATED`, `FORBIDDEN`,
 * `BAD_USER_INPUT`, `GRAPHQL_VALIDATION_FAILED`), or one of the SDK's own:
 * - `TOKEN_REQUEST_FAILED`: the authorization server refused or failed the token request; `reason`
 *   is the OAuth error (`invalid_client`, `invalid_scope`, `invalid_dpop_proof`, …);
 * - `DISCOVERY_FAILED`: the authorization server metadata could not be read;
 * - `HTTP_ERROR`: the API answered with an HTTP error and no GraphQL errors.
 *
 * Network failures are not wrapped: they reject with `fetch`'s own error.
 */
export class OneCardError extends Error {
  override readonly name = 'OneCardError';
  /** The error code (see the class description). */
  readonly code: string;
  /** A finer reason, e.g. `TOKEN_EXPIRED` or `TOKEN_REVOKED` for `UNAUTHENTICATED`. */
  readonly reason: string | undefined;
  /** The server's `x-request-id` for the failing response: quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** The HTTP status of the failing response, when there was one. */
  readonly status: number | undefined;
  /** How long the server asked to wait before retrying (its `Retry-After`), in ms. */
  readonly retryAfterMs: number | undefined;
  /** Every GraphQL error of the response (the first one gives `code`, `reason` and `message`). */
  readonly errors: readonly GraphQLErrorEntry[];
  /** Partial `data` that came with the errors, if any. */
  readonly data: unknown;

  constructor(
    message: string,
    init: {
      code: string;
      reason?: string;
      requestId?: string | null;
      status?: number;
      retryAfterMs?: number;
      errors?: readonly GraphQLErrorEntry[];
      data?: unknown;
      cause?: unknown;
    },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.reason = init.reason;
    this.requestId = init.requestId ?? undefined;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
    this.errors = init.errors ?? [];
    this.data = init.data;
  }
}

interface CachedToken {
  accessToken: string;
  /** Whether the token is DPoP-bound (sent as `Authorization: DPoP` with a proof). */
  dpop: boolean;
  /** When to stop using it (ms on the client's clock): shortly before it expires. */
  refreshAt: number;
}

/** Refresh a token when less than this remains (or half its lifetime, if that is shorter). */
const REFRESH_MARGIN_MS = 60_000;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const VIEWER_QUERY = 'query Viewer { viewer { kind clientId tenantId scopes } }';

/**
 * A client of the OneCard GraphQL API that authenticates with OAuth 2.0 client credentials, or
 * with the access token of an app signed in for a cardholder (`accessToken`, from {@link finishSignIn}).
 *
 * It discovers the authorization server once, caches the access token and renews it shortly before
 * it expires (concurrent callers share one token request), and when the API still answers 401 it
 * gets a new token and retries the request once.
 *
 * Operations are typed documents generated from the schema (`execute`, `mutate`, `paginate`), or
 * text (`request`). Money mutations get an idempotency key when the caller gives none, and calls
 * that may safely be sent again are retried after network errors, 5xx and `IDEMPOTENCY_CONFLICT`;
 * any call after `THROTTLED` (the cost bucket is empty: nothing ran; the wait honours `Retry-After`).
 *
 * @example
 * ```ts
 * const onecard = new OneCardClient({ baseUrl: 'https://api.onecard.example', clientId, clientSecret });
 * const { viewer } = await onecard.execute(ViewerDocument);
 * const r = await onecard.mutate(CreatePaymentDocument, { input: { amount: 1200, currency: 'CNY', orderReference: 'o-1' } });
 * // or, the same call as a resource:
 * const same = await onecard.payments.create({ amount: 1200, currency: 'CNY', orderReference: 'o-1' });
 * if (same.ok) console.log(same.data.createPayment.payment.id);
 * ```
 */
/** The longest `Retry-After` of a THROTTLED answer that a call waits out by itself before sending again. */
const MAX_THROTTLE_WAIT_MS = 60_000;

export class OneCardClient {
  private readonly issuer: URL;
  private readonly graphqlUrl: URL;
  private readonly client: oauth.Client;
  private readonly clientAuth: oauth.ClientAuth;
  private readonly dpop: oauth.DPoPHandle | undefined;
  private readonly scope: string | undefined;
  private readonly now: () => number;
  private readonly http: { [oauth.customFetch]?: CustomFetch; [oauth.allowInsecureRequests]?: boolean };
  private readonly retry: RetryOptions | false | undefined;
  private readonly newIdempotencyKey: () => string;
  private readonly tokenSource: (() => AccessToken | Promise<AccessToken>) | undefined;

  /** Merchant payments: `create`, `get`, `list`, `cancel`, `refund` (see resources.ts). */
  readonly payments: PaymentsResource;
  /** Top-ups: `create`, `get`, `refund`, `resolvePendingLoad`. */
  readonly topUps: TopUpsResource;
  /** Bills: `publish`, `publishMany`, `importCsv`, `amend`, `withdraw`, `get`, `list`, `forAccount`, `pay`. */
  readonly bills: BillsResource;
  /** Cards: `issue`, `get`, `list`, `history`, `reportLost`, `replace`, `block`, `unblock`. */
  readonly cards: CardsResource;
  /** Merchants: `create`, `update`, `get`, `list`. */
  readonly merchants: MerchantsResource;
  /** Readers: `register`, `get`, `list`. */
  readonly readers: ReadersResource;
  /** Webhooks: `createEndpoint`, `endpoints`, `events`. */
  readonly webhooks: WebhooksResource;

  private as: Promise<oauth.AuthorizationServer> | undefined;
  private token: CachedToken | undefined;
  private pendingToken: Promise<CachedToken> | undefined;

  constructor(options: OneCardClientOptions) {
    const base = baseUrlOf(options.baseUrl);
    const root = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
    this.issuer = new URL(`${root}/oauth`);
    this.graphqlUrl = new URL(`${root}/graphql`);

    const insecure = options.allowInsecureHttp ?? LOOPBACK_HOSTS.has(base.hostname);
    if (base.protocol !== 'https:' && !(base.protocol === 'http:' && insecure)) {
      throw new TypeError(`OneCardClient: ${base.href} must be https (set allowInsecureHttp to allow plain http)`);
    }
    if (!options.clientId) throw new TypeError('OneCardClient: clientId is required (the OAuth client id, e.g. oc_merchant_…)');
    if (options.clientSecret !== undefined && typeof options.clientSecret !== 'string') throw new TypeError('OneCardClient: clientSecret must be a string');
    if ([options.clientSecret, options.privateKey, options.accessToken].filter((o) => o !== undefined).length !== 1) {
      throw new TypeError('OneCardClient: give exactly one of clientSecret and privateKey (client credentials), or accessToken (an app signed in for a cardholder)');
    }
    if (options.accessToken !== undefined && typeof options.accessToken !== 'function') throw new TypeError('OneCardClient: accessToken must be a function that gives the token');

    this.client = { client_id: options.clientId };
    this.clientAuth = options.privateKey ? oauth.PrivateKeyJwt({ key: options.privateKey, kid: options.keyId }) : options.clientSecret !== undefined ? oauth.ClientSecretBasic(options.clientSecret) : oauth.None();
    this.tokenSource = options.accessToken;
    this.dpop = options.dpopKeyPair ? oauth.DPoP(this.client, options.dpopKeyPair) : undefined;
    this.scope = options.scope;
    this.now = options.now ?? Date.now;
    this.retry = options.retry;
    if (options.retry !== undefined) retryPolicy(options.retry); // check it now
    this.newIdempotencyKey = options.newIdempotencyKey ?? (() => crypto.randomUUID());
    // Every request goes through this fetch, so that a network failure can be told from the rest.
    const f = options.fetch;
    this.http = {
      [oauth.customFetch]: customFetch(markingNetworkErrors(() => f ?? globalThis.fetch)),
      ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
    };
    ({ payments: this.payments, topUps: this.topUps, bills: this.bills, cards: this.cards, merchants: this.merchants, readers: this.readers, webhooks: this.webhooks } = resourcesOf(this));
  }

  /**
   * Runs a GraphQL operation given as text and returns its `data`; prefer {@link execute} with a typed
   * document. Money mutations get an idempotency key when their input has none, and calls that may
   * safely be sent again are retried (see {@link execute}).
   *
   * @throws {OneCardError} when the response has GraphQL errors (even alongside partial data), when
   * the API answers with an HTTP error, or when no access token can be had.
   */
  async request<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, options?: RequestOptions): Promise<T> {
    return (await this.run<T>(query, variables, options)).data;
  }

  /**
   * Runs a typed operation (e.g. `PaymentDocument` of the SDK's generated operations) and returns its
   * `data`, typed by the document.
   *
   * A money mutation (one whose input takes `idempotencyKey`) without a key gets one, a new UUID for
   * the call (or `options.idempotencyKey`). Calls that may safely be sent again are retried with the
   * same variables, so with the same key: a query, or a mutation whose every root field is a money
   * mutation with its key, after a network error, an HTTP 5xx or `IDEMPOTENCY_CONFLICT` (the first
   * call with the key still runs); and any call after `THROTTLED` (HTTP 429: the client's cost bucket
   * is empty, and nothing ran). With backoff, at least the server's `Retry-After`, up to
   * `retry.attempts` in all. Nothing else is retried:
   * not a 4xx, not a GraphQL error, never another mutation.
   *
   * @throws {OneCardError} as {@link request}; a network failure that outlasts the retries rejects with
   * `fetch`'s own error.
   */
  async execute<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, ...[variables, options]: OperationArgs<TVariables>): Promise<TData> {
    return (await this.run<TData>(document, variables as Record<string, unknown> | undefined, options)).data;
  }

  /**
   * Runs a mutation as {@link execute} does, and sorts its outcome by the payloads' `userErrors`
   * (business refusals, e.g. `PURSE_LIMIT_EXCEEDED`): `{ ok: true, data }` when there are none, else
   * `{ ok: false, userErrors, data }`, each user error typed by the document's selection (its `code` is
   * a `UserErrorCode`). GraphQL and HTTP errors still reject with {@link OneCardError}.
   *
   * @example
   * ```ts
   * const r = await onecard.mutate(CreatePaymentDocument, { input: { amount: 1200, currency: 'CNY', orderReference: 'o-1' } });
   * if (!r.ok) throw new Error(r.userErrors.map((e) => e.code).join());
   * console.log(r.data.createPayment.payment?.id, r.idempotencyKey);
   * ```
   */
  async mutate<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, ...[variables, options]: OperationArgs<TVariables>): Promise<MutationResult<TData>> {
    const { data, idempotencyKeys } = await this.run<TData>(document, variables as Record<string, unknown> | undefined, options);
    return toMutationResult(data, idempotencyKeys[0]);
  }

  /**
   * Walks a Relay connection page by page and yields its nodes: `pick` finds the connection in each
   * page's data (e.g. `(d) => d.payments`, or `(d) => d.card?.history`), and the next page is asked
   * for with `after` set to the last `pageInfo.endCursor`, until `hasNextPage` is false. Page size is
   * `variables.first` (the API's default otherwise); `variables.after` starts later.
   *
   * @example
   * ```ts
   * for await (const payment of onecard.paginate(PaymentsDocument, { first: 25 }, (d) => d.payments)) {
   *   console.log(payment.id, payment.status);
   * }
   * ```
   */
  async *paginate<TData, TVariables extends { after?: string | null }, TNode>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: OperationVariables<TVariables>,
    pick: (data: TData) => Connection<TNode> | null | undefined,
    options?: RequestOptions,
  ): AsyncGenerator<TNode, void, undefined> {
    let after = (variables as { after?: string | null }).after ?? undefined;
    for (;;) {
      const vars = after === undefined ? variables : { ...variables, after };
      const { data } = await this.run<TData>(document, vars as Record<string, unknown>, options);
      const connection = pick(data);
      if (!connection) return;
      for (const edge of connection.edges) if (edge) yield edge.node;
      const next = connection.pageInfo.endCursor;
      if (!connection.pageInfo.hasNextPage || next == null || next === after) return;
      after = next;
    }
  }

  /** The caller as the API sees it: kind, client id, tenant and the token's scopes. */
  async viewer(): Promise<Viewer> {
    const { viewer } = await this.request<{ viewer: Viewer | null }>(VIEWER_QUERY);
    if (!viewer) throw new OneCardError('The API did not recognise the client', { code: 'UNAUTHENTICATED' });
    return viewer;
  }

  /** Drops the cached access token, so that the next request gets a new one. */
  clearToken(): void {
    this.token = undefined;
  }

  /** One logical call: keys filled in, then attempts until one succeeds or may not be retried. */
  private async run<T>(document: GraphQLDocument<unknown, unknown>, variables: Record<string, unknown> | undefined, options: RequestOptions = {}): Promise<{ data: T; idempotencyKeys: string[] }> {
    const op = prepareOperation(document, variables, this.newIdempotencyKey, options.idempotencyKey);
    const body = JSON.stringify(op.variables === undefined ? { query: op.query } : { query: op.query, variables: op.variables });
    const policy = retryPolicy(this.retry, options.retry);
    for (let attempt = 1; ; attempt++) {
      try {
        return { data: await this.send<T>(body, options.signal), idempotencyKeys: op.idempotencyKeys };
      } catch (err) {
        // THROTTLED is answered before anything runs: any operation may be sent again, a mutation without a key too,
        // after the wait the server names, when that wait is short (a cost bucket refilling); a long one (an hourly
        // look-up limit) goes back to the caller with `retryAfterMs` rather than holding the call for it.
        const throttled = err instanceof OneCardError && err.code === 'THROTTLED' && (err.retryAfterMs ?? 0) <= MAX_THROTTLE_WAIT_MS;
        const retryable = throttled || (op.idempotent && (isNetworkError(err) || (err instanceof OneCardError && ((err.status ?? 0) >= 500 || err.code === 'IDEMPOTENCY_CONFLICT'))));
        if (!retryable || attempt >= policy.attempts || options.signal?.aborted) throw err;
        const retryAfterMs = err instanceof OneCardError ? err.retryAfterMs : undefined;
        // Sending a throttled call again before its Retry-After only spends an attempt.
        await sleep(throttled ? Math.max(backoffDelay(policy, attempt, undefined), retryAfterMs ?? 0) : backoffDelay(policy, attempt, retryAfterMs), options.signal);
      }
    }
  }

  /** One attempt: POSTs the body with a token; on a 401, once more with a new token. */
  private async send<T>(body: string, signal: AbortSignal | undefined): Promise<T> {
    let token = await this.accessToken();
    let response = await this.post(token, body, signal);
    if (response.status === 401) {
      // Revoked, expired early, or the server's keys changed: one more try with a new token.
      await response.body?.cancel();
      this.forget(token);
      token = await this.accessToken();
      response = await this.post(token, body, signal);
    }
    return readGraphQLResponse<T>(response);
  }

  /** POSTs the body to /graphql with the token (and a fresh DPoP proof); answers with any response. */
  private async post(token: CachedToken, body: string, signal: AbortSignal | undefined): Promise<Response> {
    const options = { ...this.http, DPoP: token.dpop ? this.dpop : undefined, signal };
    const send = () =>
      oauth.protectedResourceRequest(token.accessToken, 'POST', this.graphqlUrl, new Headers({ 'content-type': 'application/json', accept: 'application/json' }), body, options);
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err;
      // The DPoP handle has kept the nonce the server asked for; a proof with it should pass.
      if (token.dpop && oauth.isDPoPNonceError(err)) {
        await err.response.body?.cancel();
        try {
          return await send();
        } catch (again) {
          if (again instanceof oauth.WWWAuthenticateChallengeError) return again.response;
          throw again;
        }
      }
      return err.response; // a 401 (or 403) with a challenge: its body has the GraphQL error
    }
  }

  /** A usable access token: the cached one, or one new token request shared by all callers. */
  private accessToken(): Promise<CachedToken> {
    if (this.token && this.now() < this.token.refreshAt) return Promise.resolve(this.token);
    this.pendingToken ??= this.requestToken()
      .then((token) => (this.token = token))
      .finally(() => {
        this.pendingToken = undefined;
      });
    return this.pendingToken;
  }

  /** Forgets a token the API refused, unless a newer one has replaced it already. */
  private forget(token: CachedToken): void {
    if (this.token === token) this.token = undefined;
  }

  private authorizationServer(): Promise<oauth.AuthorizationServer> {
    this.as ??= (async () => {
      const response = await oauth.discoveryRequest(this.issuer, { ...this.http, algorithm: 'oidc' });
      return oauth.processDiscoveryResponse(this.issuer, response);
    })().catch((err: unknown) => {
      this.as = undefined; // try again next time
      throw wrapOAuthError(err, 'DISCOVERY_FAILED', 'Could not read the authorization server metadata');
    });
    return this.as;
  }

  private async requestToken(): Promise<CachedToken> {
    if (this.tokenSource) {
      const given = await this.tokenSource();
      const lifetimeMs = given.expiresAt === undefined ? Number.POSITIVE_INFINITY : given.expiresAt - this.now();
      if (given.tokenType === 'dpop' && !this.dpop) throw new TypeError('OneCardClient: a DPoP-bound accessToken needs the dpopKeyPair it was bound to');
      return { accessToken: given.accessToken, dpop: given.tokenType === 'dpop', refreshAt: this.now() + lifetimeMs - Math.min(REFRESH_MARGIN_MS, Math.max(0, lifetimeMs) / 2) };
    }
    const as = await this.authorizationServer();
    const params = new URLSearchParams(this.scope ? { scope: this.scope } : {});
    const attempt = async () => {
      const response = await oauth.clientCredentialsGrantRequest(as, this.client, this.clientAuth, params, { ...this.http, DPoP: this.dpop });
      return oauth.processClientCredentialsResponse(as, this.client, response);
    };
    const requestedAt = this.now();
    let result: oauth.TokenEndpointResponse;
    try {
      try {
        result = await attempt();
      } catch (err) {
        // RFC 9449 §8: the server wants a nonce in the proof; the DPoP handle has kept it.
        if (!(this.dpop && oauth.isDPoPNonceError(err))) throw err;
        result = await attempt();
      }
    } catch (err) {
      throw wrapOAuthError(err, 'TOKEN_REQUEST_FAILED', 'The token request failed');
    }
    const lifetimeMs = typeof result.expires_in === 'number' ? result.expires_in * 1000 : Number.POSITIVE_INFINITY;
    return {
      accessToken: result.access_token,
      dpop: result.token_type === 'dpop',
      refreshAt: requestedAt + lifetimeMs - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2),
    };
  }
}

/** oauth4webapi's custom fetch hook, for any of its requests. */
type CustomFetch = (url: string, init: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>;

/** Adapts a standard `fetch` to oauth4webapi's hook (whose bodies are all valid `fetch` bodies). */
function customFetch(f: typeof fetch): CustomFetch {
  return (url, init) => f(url, init as RequestInit);
}

/** Turns oauth4webapi's errors about a server answer into a OneCardError; others pass through. */
function wrapOAuthError(err: unknown, code: string, fallback: string): unknown {
  if (err instanceof OneCardError) return err;
  if (err instanceof oauth.ResponseBodyError) {
    return new OneCardError(err.error_description ?? err.error, { code, reason: err.error, status: err.status, requestId: err.response.headers.get('x-request-id'), cause: err });
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const params = err.cause[0]?.parameters;
    return new OneCardError(params?.error_description ?? params?.error ?? fallback, {
      code,
      reason: params?.error,
      status: err.status,
      requestId: err.response.headers.get('x-request-id'),
      cause: err,
    });
  }
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
    return new OneCardError(`${fallback}: ${err.message}`, { code, cause: err });
  }
  return err;
}

/** Reads a GraphQL response: `data`, or a OneCardError for its errors or HTTP status. */
async function readGraphQLResponse<T>(response: Response): Promise<T> {
  const requestId = response.headers.get('x-request-id');
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  const text = await response.text();
  let body: { data?: T | null; errors?: GraphQLErrorEntry[] } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const first = body?.errors?.[0];
  if (first) {
    throw new OneCardError(first.message, {
      code: first.extensions?.code ?? 'INTERNAL_SERVER_ERROR',
      reason: first.extensions?.reason,
      requestId,
      status: response.status,
      retryAfterMs,
      errors: body!.errors,
      data: body!.data ?? undefined,
    });
  }
  if (!response.ok || body?.data == null) {
    throw new OneCardError(response.ok ? 'The API answered without data' : `The API answered HTTP ${response.status}`, { code: 'HTTP_ERROR', requestId, status: response.status, retryAfterMs });
  }
  return body.data;
}
