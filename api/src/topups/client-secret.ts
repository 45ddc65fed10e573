import { seal, unseal } from '../secrets/kek.js';

/**
 * The gateway's payment-intent `client_secret` lets whoever holds it confirm the payment, so it is
 * kept sealed with the key-encryption key (docs/security.md#secrets-at-rest), bound to its top-up.
 * One is made with the key at the composition root (http/app.ts) and handed to every path a
 * gateway answer reaches a top-up by (create, webhook, poll) and to the GraphQL context.
 */
export class ClientSecretSeal {
  constructor(private readonly kek: Buffer) {}

  seal(topUpId: string, secret: string | null | undefined): string | null {
    return secret ? seal(this.kek, clientSecretContext(topUpId), Buffer.from(secret, 'utf8')) : null;
  }

  open(topUpId: string, sealed: string | null): string | null {
    return sealed ? unseal(this.kek, clientSecretContext(topUpId), sealed).toString('utf8') : null;
  }
}

export const clientSecretContext = (topUpId: string) => `top-up ${topUpId} gateway client secret`;
