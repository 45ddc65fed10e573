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
