import type { Logger } from 'pino';
import { ChangeNotices } from '../db/change-notices.js';
import type { PrincipalKind } from './principal.js';

/** A token's client as it is now, and whether the token was revoked: what the verifier reads per request. */
export interface TokenStatus {
  kind: PrincipalKind;
  tenant_id: string | null;
  disabled: boolean;
  live: boolean;
}

/** Far more tokens than are in use at once; beyond it the oldest entry goes first. */
const MAX_ENTRIES = 10_000;

/**
 * The token verifier's last step without the database on every request (issue 20): the status
 * of a (client, token) pair is read once and kept until a client changes or a token is revoked.
 * Those writes notify every API process at commit (a trigger, migration 20261207000001); each
 * process empties its cache on the notice. While the listening connection is down, or has not
 * answered its heartbeat lately (it may have died silently), nothing is served from the cache. A status read that started before a notice is not kept after it
 * (the generation), so a read racing a revocation cannot put the old status back.
 */
export class TokenStatusCache {
  private readonly entries = new Map<string, TokenStatus | null>();
  private generation = 0;
  private readonly notices: ChangeNotices;

  constructor(opts: { databaseUrl: string; log?: Logger; maxEntries?: number; heartbeat?: { everyMs: number; silenceMs: number } }) {
    this.maxEntries = opts.maxEntries ?? MAX_ENTRIES;
    this.notices = new ChangeNotices({ databaseUrl: opts.databaseUrl, channel: 'onecard_auth_changes', log: opts.log, heartbeat: opts.heartbeat, onChange: () => this.clear() });
  }

  private readonly maxEntries: number;

  start(): Promise<void> {
    return this.notices.start();
  }

  close(): Promise<void> {
    return this.notices.close();
  }

  get size(): number {
    return this.entries.size;
  }

  private clear(): void {
    this.generation++;
    this.entries.clear();
  }

  /** The status from the cache, or from `read` (and kept, if nothing changed meanwhile). Null: no such client. */
  async statusOf(clientId: string, jti: string, read: () => Promise<TokenStatus | null>): Promise<TokenStatus | null> {
    const key = `${clientId} ${jti}`;
    if (this.notices.live && this.entries.has(key)) return this.entries.get(key)!;
    const generation = this.generation;
    const status = await read();
    if (this.notices.live && generation === this.generation) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, status);
    }
    return status;
  }
}
