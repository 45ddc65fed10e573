import { createHash, randomBytes } from 'node:crypto';

const b64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * A demo cardholder signing in to the card company's app, as her browser would: authorization code
 * with PKCE, her username and password typed on OneCard's sign-in page, access allowed on the consent
 * page (both pages' forms posted here), the code exchanged for an access token. For `onecard trigger`
 * only: a real app opens the browser for the person.
 */
export async function cardholderAccessToken(baseUrl: string, app: { client_id: string; redirect_uri: string }, holder: { username: string; password: string }, scope: string): Promise<string> {
  const metadata = (await (await fetch(`${baseUrl}/oauth/.well-known/openid-configuration`)).json()) as { issuer: string; authorization_endpoint: string; token_endpoint: string };
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const authorize = new URL(metadata.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: app.client_id,
    response_type: 'code',
    redirect_uri: app.redirect_uri,
    scope,
    state,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  }).toString();

  // A minimal browser: cookies kept, redirects followed by hand until one leaves for the app's redirect URI.
  const cookies = new Map<string, string>();
  const go = async (url: string, form?: Record<string, string>) => {
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  };
  let url = authorize.href;
  let res = await go(url);
  for (let steps = 0; steps < 20; steps++) {
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url);
      if (next.href.startsWith(app.redirect_uri)) return exchange(metadata, app, next, state, verifier);
      url = next.href;
      res = await go(url);
      continue;
    }
    const html = await res.text();
    const action = (suffix: string) => html.match(new RegExp(`action="([^"]+/${suffix})"`))?.[1];
    const login = action('login');
    const confirm = action('confirm');
    if (login) res = await go((url = new URL(login, url).href), { username: holder.username, password: holder.password });
    else if (confirm) res = await go((url = new URL(confirm, url).href), { decision: 'allow' });
    else throw new Error(`the cardholder sign-in stopped at HTTP ${res.status} (${url})`);
  }
  throw new Error('too many steps signing the cardholder in');
}

async function exchange(metadata: { issuer: string; token_endpoint: string }, app: { client_id: string; redirect_uri: string }, callback: URL, state: string, verifier: string): Promise<string> {
  const params = callback.searchParams;
  if (params.get('error')) throw new Error(`the cardholder sign-in was refused: ${params.get('error')}`);
  if (params.get('state') !== state) throw new Error('the cardholder sign-in came back with another state');
  if (params.get('iss') && params.get('iss') !== metadata.issuer) throw new Error('the cardholder sign-in came back from another issuer');
  const res = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code')!, redirect_uri: app.redirect_uri, client_id: app.client_id, code_verifier: verifier }),
  });
  const token = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !token.access_token) throw new Error(`the cardholder token was refused: ${token.error} ${token.error_description ?? ''}`);
  return token.access_token;
}
