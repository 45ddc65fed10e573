/**
 * Signing in: the console is a public OAuth client of the party (authorization code + PKCE, no
 * secret), through the SDK's browser sign-in. Before the redirect the PKCE verifier and state wait
 * in sessionStorage; after it, the access token lives there (this tab only, gone when it closes).
 * Tokens last 10 minutes and there are no refresh tokens: when one expires the console sends the
 * user through sign-in again (OneCard's sign-in session, 1 hour, usually makes that a redirect).
 */
import { type AccessToken, finishSignIn, OneCardClient, startSignIn } from '@onecard/sdk/browser';
import { signal } from './signal.ts';

export interface SignInClient {
  clientId: string;
  kind: 'MERCHANT' | 'BILLER' | 'ISSUER' | 'OPERATOR';
  name: string;
  scope: string;
}

export interface Session {
  client: SignInClient;
  token: AccessToken;
}

const PENDING = 'onecard-console-pending';
const SESSION = 'onecard-console-session';
const baseUrl = () => location.origin;
const redirectUri = () => `${location.origin}/console/`;

export const session = signal<Session | null>(readSession());

function readSession(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION) ?? 'null') as Session | null;
    return s && (s.token.expiresAt ?? 0) > Date.now() + 5_000 ? s : null;
  } catch {
    return null;
  }
}

/** The organisations' sign-in clients the API offers (GET /console/config.json). */
export async function signInClients(): Promise<SignInClient[]> {
  const res = await fetch('config.json', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  return ((await res.json()) as { clients: SignInClient[] }).clients;
}

/** Step 1: off to OneCard's sign-in page. */
export async function beginSignIn(client: SignInClient): Promise<void> {
  const pending = await startSignIn({ baseUrl: baseUrl(), clientId: client.clientId, redirectUri: redirectUri(), scope: client.scope });
  sessionStorage.setItem(PENDING, JSON.stringify({ client, state: pending.state, codeVerifier: pending.codeVerifier, returnTo: location.hash }));
  location.assign(pending.url);
}

/** Step 2, when the page loads with `?code=` or `?error=`: the token, or the reason it failed. */
export async function completeSignIn(): Promise<{ error?: string }> {
  const url = new URL(location.href);
  if (!url.searchParams.has('code') && !url.searchParams.has('error')) return {};
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null') as { client: SignInClient; state: string; codeVerifier: string; returnTo: string } | null;
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', `${location.pathname}${pending?.returnTo ?? ''}`);
  if (!pending) return { error: 'no sign-in was under way in this tab' };
  try {
    const token = await finishSignIn({ baseUrl: baseUrl(), clientId: pending.client.clientId, redirectUri: redirectUri(), callbackUrl: url, pending });
    const s = { client: pending.client, token };
    sessionStorage.setItem(SESSION, JSON.stringify(s));
    session.set(s);
    return {};
  } catch (err) {
    const e = err as { error_description?: string; error?: string; message?: string };
    return { error: e.error_description ?? e.error ?? e.message ?? String(err) };
  }
}

export function signOut(): void {
  sessionStorage.removeItem(SESSION);
  session.set(null);
}

let api: { clientId: string; client: OneCardClient } | undefined;

/** The API client of the signed-in session; an expired token sends the user through sign-in again. */
export function apiClient(): OneCardClient {
  const s = session.get();
  if (!s) throw new Error('not signed in');
  if (api?.clientId !== s.client.clientId) {
    api = {
      clientId: s.client.clientId,
      client: new OneCardClient({
        baseUrl: baseUrl(),
        clientId: s.client.clientId,
        accessToken: async () => {
          const current = session.get();
          if (current && (current.token.expiresAt ?? 0) > Date.now() + 5_000) return current.token;
          await beginSignIn(s.client);
          return new Promise<never>(() => {}); // the page is leaving
        },
      }),
    };
  }
  return api.client;
}
