/**
 * A stand-in for the OneCard API behind a fake `fetch`: OAuth discovery and client credentials, and a
 * /graphql endpoint whose answers a test writes. No server, no network.
 */
import { OneCardClient, type OneCardClientOptions } from './index.js';

export const BASE_URL = 'https://api.onecard.test';

/** One POST to /graphql as the fake API received it. */
export interface GraphQLCall {
  query: string;
  variables: Record<string, any> | undefined;
  authorization: string | null;
}

/** What /graphql answers: a response (status 200 and no extra headers unless given), or a thrown network error. */
export type Answer = { status?: number; body?: unknown; headers?: Record<string, string> } | Error;

export const data = (d: unknown): Answer => ({ body: { data: d } });
export const gqlError = (code: string, status = 200, headers?: Record<string, string>): Answer => ({
  status,
  headers,
  body: { errors: [{ message: `refused: ${code}`, extensions: { code } }], data: null },
});
export const networkError = () => new TypeError('fetch failed', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export function fakeApi(answer: (call: GraphQLCall, index: number) => Answer | Promise<Answer>, opts: { expiresIn?: number } = {}) {
  const calls: GraphQLCall[] = [];
  let tokens = 0;
  const revoked = new Set<string>();
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (url.pathname === '/oauth/.well-known/openid-configuration') {
      return json({ issuer: `${BASE_URL}/oauth`, token_endpoint: `${BASE_URL}/oauth/token`, token_endpoint_auth_methods_supported: ['client_secret_basic'] });
    }
    if (url.pathname === '/oauth/token') {
      tokens++;
      return json({ access_token: `token-${tokens}`, token_type: 'Bearer', expires_in: opts.expiresIn ?? 600 });
    }
    if (url.pathname === '/graphql' && init?.method === 'POST') {
      const headers = new Headers(init.headers);
      const body = JSON.parse(String(init.body)) as { query: string; variables?: Record<string, unknown> };
      const call: GraphQLCall = { query: body.query, variables: body.variables, authorization: headers.get('authorization') };
      calls.push(call);
      const token = call.authorization?.split(' ')[1] ?? '';
      if (revoked.has(token)) {
        return json({ errors: [{ message: 'revoked', extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' } }], data: null }, 401);
      }
      const a = await answer(call, calls.length - 1);
      if (a instanceof Error) throw a;
      return json(a.body ?? { data: {} }, a.status ?? 200, a.headers);
    }
    return json({ error: 'not found' }, 404);
  };
  return {
    fetch,
    calls,
    tokenRequests: () => tokens,
    /** Makes the API refuse a token from now on, as after a revocation. */
    revoke: (token: string) => revoked.add(token),
    client: (options: Partial<OneCardClientOptions> = {}) =>
      new OneCardClient({ baseUrl: BASE_URL, clientId: 'oc_merchant_test', clientSecret: 'secret', fetch, retry: { baseDelayMs: 1, maxDelayMs: 5 }, ...options }),
  };
}
