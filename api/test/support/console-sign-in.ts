/**
 * A party user's console token over HTTP, as the console gets it: authorization code + PKCE through
 * OneCard's sign-in page (a login form, then consent), for a party's public sign-in client whose
 * redirect URI is `<server>/console/`.
 */
import * as oauth from 'oauth4webapi';
import { Browser, discover, insecure } from './oauth.js';

const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } };

export async function consoleToken(serverUrl: string, clientId: string, username: string, password: string, scope: string): Promise<string> {
  const as = await discover(serverUrl);
  const redirectUri = `${serverUrl}/console/`;
  const browser = new Browser();
  // Follows redirects on our origin until one goes to the console's redirect URI.
  const follow = async (res: Response): Promise<Response | URL> => {
    while (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, serverUrl);
      if (next.href.startsWith(redirectUri)) return next;
      res = await browser.request(next.href);
    }
    return res;
  };
  const page = async (res: Response | URL) => {
    if (res instanceof URL) throw new Error(`expected a page, got the redirect back ${res.href}`);
    return res.text();
  };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope, state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString();
  const login = await page(await follow(await browser.request(url.href)));
  const loginAction = new URL(login.match(/action="([^"]+\/login)"/)![1]!, serverUrl);
  const hidden = Object.fromEntries([...login.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
  const consent = await page(await follow(await browser.request(loginAction.href, { ...form, body: new URLSearchParams({ ...hidden, username, password }).toString() })));
  const confirm = consent.match(/action="([^"]+\/confirm)"/);
  if (!confirm) throw new Error(`no consent page after signing in as ${username}`);
  const back = await follow(await browser.request(new URL(confirm[1]!, serverUrl).href, { ...form, body: 'decision=allow' }));
  if (!(back instanceof URL)) throw new Error(`no redirect back (status ${back.status})`);
  const client: oauth.Client = { client_id: clientId, token_endpoint_auth_method: 'none' };
  const params = oauth.validateAuthResponse(as, client, back, state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, insecure);
  return (await oauth.processAuthorizationCodeResponse(as, client, response)).access_token;
}
