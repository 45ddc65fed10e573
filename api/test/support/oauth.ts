import * as oauth from 'oauth4webapi';

export const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** The authorization server's metadata, as a real client discovers it. */
export async function discover(baseUrl: string): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(`${baseUrl}/oauth`);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }));
}

/** Client credentials with a secret in HTTP Basic; returns the access token response. */
export async function clientCredentialsToken(as: oauth.AuthorizationServer, clientId: string, secret: string, scope?: string, dpop?: oauth.DPoPHandle) {
  const client: oauth.Client = { client_id: clientId };
  const params = new URLSearchParams(scope ? { scope } : {});
  const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(secret), params, { ...insecure, DPoP: dpop });
  return oauth.processClientCredentialsResponse(as, client, response);
}

/** A cookie jar over fetch that stops at redirects, like a browser tab driven by hand. */
export class Browser {
  private cookies = new Map<string, string>();

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return res;
  }

  /** Follows redirects within `origin` until one leaves it (to the app's redirect URI). */
  async follow(res: Response, origin: string): Promise<Response | URL> {
    while (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, origin);
      if (next.origin !== origin) return next;
      res = await this.request(next.href);
    }
    return res;
  }
}

/**
 * A cardholder app's access token the way a real app gets one: authorization code with PKCE, the
 * holder signing in and consenting on the server's pages. The client is public (no secret).
 */
export async function cardholderAccessToken(serverUrl: string, opts: { clientId: string; redirectUri: string; username: string; password: string; scope: string }): Promise<string> {
  const as = await discover(serverUrl);
  const client: oauth.Client = { client_id: opts.clientId, token_endpoint_auth_method: 'none' };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authorize = new URL(as.authorization_endpoint!);
  authorize.search = new URLSearchParams({ client_id: opts.clientId, response_type: 'code', redirect_uri: opts.redirectUri, scope: opts.scope, state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString();
  const browser = new Browser();
  const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  const login = await browser.follow(await browser.request(authorize.href), serverUrl);
  if (login instanceof URL) throw new Error(`redirected away: ${login.href}`);
  const loginAction = new URL((await login.text()).match(/action="([^"]+\/login)"/)![1]!, serverUrl);
  const consent = await browser.follow(await browser.request(loginAction.href, { ...form, body: new URLSearchParams({ username: opts.username, password: opts.password }).toString() }), serverUrl);
  if (consent instanceof URL) throw new Error(`redirected away: ${consent.href}`);
  const confirmAction = new URL((await consent.text()).match(/action="([^"]+\/confirm)"/)![1]!, serverUrl);
  const back = await browser.follow(await browser.request(confirmAction.href, { ...form, body: 'decision=allow' }), serverUrl);
  if (!(back instanceof URL)) throw new Error(`the consent did not redirect back (status ${back.status})`);
  const params = oauth.validateAuthResponse(as, client, back, state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, opts.redirectUri, verifier, insecure);
  return (await oauth.processAuthorizationCodeResponse(as, client, response)).access_token;
}

/** A GraphQL caller with a ready bearer token; throws on GraphQL errors, like the SDK's client. */
export function bearerClient(serverUrl: string, accessToken: string) {
  return {
    async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const res = await fetch(`${serverUrl}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` }, body: JSON.stringify({ query, variables }) });
      const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
      if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
      return body.data as T;
    },
  };
}
