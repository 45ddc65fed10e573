import type { Logger } from 'pino';
import { NoticedCache } from '../db/noticed-cache.js';
import type { PrincipalKind } from './principal.js';

/** A token's client as it is now, and whether the token was revoked: what the verifier reads per request. */
export interface TokenStatus {
  kind: PrincipalKind;
  tenant_id: string | null;
  disabled: boolean;
  live: boolean;
}

/**
 * The token verifier's last step without the database on every request (issue 20): the status
 * of a (client, token) pair is read once and kept until a client changes or a token is revoked.
 * Those writes notify every API process at commit (a trigger, migration 20261207000001); each
 * process empties its cache on the notice (db/noticed-cache.ts: nothing served while the listening
 * connection is down or silent, and a read racing a revocation cannot put the old status back).
 */
export class TokenStatusCache extends NoticedCache {
  constructor(opts: { databaseUrl: string; log?: Logger; maxEntries?: number; heartbeat?: { everyMs: number; silenceMs: number } }) {
    super({ ...opts, channel: 'onecard_auth_changes' });
  }

  /** The status from the cache, or from `read` (and kept, if nothing changed meanwhile). Null: no such client. */
  statusOf(clientId: string, jti: string, read: () => Promise<TokenStatus | null>): Promise<TokenStatus | null> {
    return this.get(`${clientId} ${jti}`, async () => ({ value: await read(), keep: true }));
  }
}
