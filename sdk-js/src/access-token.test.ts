/**
 * A client for an app signed in for a cardholder (the `accessToken` option, e.g. from finishSignIn):
 * it sends the token it is given, asks for a new one when the API refuses it, and never asks the
 * token endpoint itself.
 */
import { describe, expect, it } from 'vitest';
import { BASE_URL, data, fakeApi } from './fake-api.test-support.js';
import { OneCardClient } from './index.js';

describe('an app signed in for a cardholder (accessToken)', () => {
  it('uses the token it is given, asks for it again when the API refuses it, and never calls the token endpoint', async () => {
    const api = fakeApi(() => data({ viewer: { kind: 'CARDHOLDER_APP', clientId: 'oc_app', tenantId: null, scopes: ['card:read'] } }));
    const given = ['first', 'second'];
    let asked = 0;
    const onecard = new OneCardClient({ baseUrl: BASE_URL, clientId: 'oc_app', fetch: api.fetch, accessToken: () => ({ accessToken: given[asked++]!, tokenType: 'bearer', expiresAt: undefined, scope: 'card:read' }) });
    api.revoke('first');
    await onecard.viewer();
    expect(asked).toBe(2);
    expect(api.calls.map((c) => c.authorization)).toEqual(['Bearer first', 'Bearer second']);
    expect(api.tokenRequests()).toBe(0);
  });

  it('a DPoP-bound token without its key pair is refused before any request', async () => {
    const api = fakeApi(() => data({}));
    const onecard = new OneCardClient({ baseUrl: BASE_URL, clientId: 'oc_app', fetch: api.fetch, accessToken: () => ({ accessToken: 't', tokenType: 'dpop', expiresAt: undefined, scope: undefined }) });
    await expect(onecard.viewer()).rejects.toThrow(/a DPoP-bound accessToken needs the dpopKeyPair it was bound to/);
    expect(api.calls).toEqual([]);
  });
});
