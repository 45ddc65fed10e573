/**
 * Signing a cardholder in for an app (authorization code with PKCE, RFC 7636): the app is a public
 * client (no secret; a browser or a phone cannot keep one), the holder signs in and consents on
 * OneCard's pages, and the app exchanges the code for an access token, bound to its DPoP key when it
 * has one. Two calls around the redirect:
 *
 * ```ts
 * // 1. Before: keep `state` and `codeVerifier` (e.g. sessionStorage), then go to `url`.
 * const pending = await startSignIn({ baseUrl, clientId, redirectUri, scope: 'card:read card:topup' });
 * sessionStorage.setItem('onecard-sign-in', JSON.stringify(pending));
 * location.assign(pending.url);
 * // 2. On the redirect URI's page:
 * const token = await finishSignIn({ baseUrl, clientId, redirectUri, callbackUrl: location.href, pending, dpopKeyPair });
 * const onecard = new OneCardClient({ baseUrl, clientId, accessToken: () => token, dpopKeyPair });
 * ```
 *
 * WebCrypto and `fetch` only: it runs in browsers and in Node.
 */
import * as oauth from 'oauth4webapi';

/** Where the app signs holders in, and as whom. */
export interface SignInOptions {
  /** Where the API is served; the authorization server is `<baseUrl>/oauth`. */
  baseUrl: string | URL;
  /** The app's OAuth client id (a cardholder app, registered with `redirectUri`). */
  clientId: string;
  /** One of the app's registered redirect URIs, exactly. */
  redirectUri: string;
  /** A `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** Allow plain `http:` (default: only for loopback hosts, as OneCardClient). */
  allowInsecureHttp?: boolean;
}

/** A sign-in under way: go to `url`; keep `state` and `codeVerifier` for {@link finishSignIn}. */
export interface PendingSignIn {
  url: string;
  state: string;
  codeVerifier: string;
}

/** An access token for OneCardClient's `accessToken` option. */
export interface AccessToken {
  accessToken: string;
  /** `dpop` when bound to the DPoP key it was asked with: requests then carry proofs with that key. */
  tokenType: 'bearer' | 'dpop';
  /** When it expires, in ms since the epoch (undefined when the server did not say). */
  expiresAt: number | undefined;
  /** The scopes granted. */
  scope: string | undefined;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function httpOptions(opts: SignInOptions, issuer: URL) {
  const insecure = opts.allowInsecureHttp ?? LOOPBACK_HOSTS.has(issuer.hostname);
  const f = opts.fetch;
  return {
    ...(f ? { [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, unknown>) => f(url, init as RequestInit) } : {}),
    ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

async function discover(opts: SignInOptions) {
  const base = new URL(opts.baseUrl);
  const issuer = new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}/oauth`);
  const http = httpOptions(opts, issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }));
  const client: oauth.Client = { client_id: opts.clientId, token_endpoint_auth_method: 'none' };
  return { as, http, client };
}

/** Step 1: the authorization URL to send the holder to, with a fresh PKCE verifier (S256) and state. */
export async function startSignIn(opts: SignInOptions & { scope: string }): Promise<PendingSignIn> {
  const { as } = await discover(opts);
  if (!as.authorization_endpoint) throw new TypeError('startSignIn: the authorization server has no authorization endpoint');
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: opts.clientId,
    response_type: 'code',
    redirect_uri: opts.redirectUri,
    scope: opts.scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  }).toString();
  return { url: url.href, state, codeVerifier };
}

/**
 * Step 2, on the redirect URI: checks the answer's `state`, exchanges the code (with the verifier,
 * and a DPoP proof when `dpopKeyPair` is given) and returns the access token.
 *
 * @throws the authorization server's refusal (e.g. `access_denied` when the holder declined) as an
 * oauth4webapi error with `error` and `error_description`.
 */
export async function finishSignIn(opts: SignInOptions & { callbackUrl: string | URL; pending: Pick<PendingSignIn, 'state' | 'codeVerifier'>; dpopKeyPair?: oauth.CryptoKeyPair }): Promise<AccessToken> {
  const { as, http, client } = await discover(opts);
  const params = oauth.validateAuthResponse(as, client, new URL(opts.callbackUrl), opts.pending.state);
  const DPoP = opts.dpopKeyPair ? oauth.DPoP(client, opts.dpopKeyPair) : undefined;
  const exchange = async () =>
    oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, opts.redirectUri, opts.pending.codeVerifier, { ...http, DPoP }));
  const requestedAt = Date.now();
  let result: oauth.TokenEndpointResponse;
  try {
    result = await exchange();
  } catch (err) {
    // RFC 9449 §8: the server wants a nonce in the proof; the DPoP handle has kept it.
    if (!(DPoP && oauth.isDPoPNonceError(err))) throw err;
    result = await exchange();
  }
  return {
    accessToken: result.access_token,
    tokenType: result.token_type === 'dpop' ? 'dpop' : 'bearer',
    expiresAt: typeof result.expires_in === 'number' ? requestedAt + result.expires_in * 1000 : undefined,
    scope: result.scope,
  };
}
