import { seal, unseal } from '../secrets/kek.js';

/**
 * The gateway's payment-intent `client_secret` lets whoever holds it confirm the payment, so it is
 * kept sealed with the key-encryption key (docs/security.md#secrets-at-rest), bound to its top-up.
 * The key is handed in once at the composition root (http/app.ts), like the top-up limits, because
 * the gateway's answers reach the top-up from several paths (create, webhook, poll).
 */
let kekInForce: Buffer | undefined;

export function useClientSecretKey(kek: Buffer): void {
  kekInForce = kek;
}

function kek(): Buffer {
  if (!kekInForce) throw new Error('the key for gateway client secrets is not configured (useClientSecretKey)');
  return kekInForce;
}

export const clientSecretContext = (topUpId: string) => `top-up ${topUpId} gateway client secret`;

export function sealClientSecret(topUpId: string, secret: string | null | undefined): string | null {
  return secret ? seal(kek(), clientSecretContext(topUpId), Buffer.from(secret, 'utf8')) : null;
}

export function openClientSecret(topUpId: string, sealed: string | null): string | null {
  return sealed ? unseal(kek(), clientSecretContext(topUpId), sealed).toString('utf8') : null;
}
