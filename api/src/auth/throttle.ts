import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuthThrottleSettings, ThrottleRule } from '../config/config.js';

/**
 * Back-off after failed authentications (docs/security.md#throttling-of-sign-in-and-token-requests):
 * per key (a client id, a sign-in name, an IP), so many failures are free; each one after that
 * blocks the key for a back-off that doubles from the first one up to a ceiling. A success resets
 * the key; failures are forgotten a while after the last one. Kept in PostgreSQL (`auth_throttle`),
 * so every API process sees the same counts.
 */

export interface ThrottleState {
  failures: number;
  lastFailureAt: Date;
}

/** Pure: the count and the block after one more failure at `now`. */
export function afterFailure(previous: ThrottleState | undefined, rule: ThrottleRule, forgetAfterSeconds: number, now: Date): { failures: number; blockedUntil: Date | null } {
  const forgotten = !previous || now.getTime() - previous.lastFailureAt.getTime() > forgetAfterSeconds * 1000;
  const failures = forgotten ? 1 : previous.failures + 1;
  const over = failures - rule.freeFailures;
  if (over <= 0) return { failures, blockedUntil: null };
  const seconds = Math.min(rule.maxBackoffSeconds, rule.firstBackoffSeconds * 2 ** Math.min(over - 1, 30));
  return { failures, blockedUntil: new Date(now.getTime() + seconds * 1000) };
}

/** One throttled thing: what it is (hashed before it is stored) and its rule. */
export interface ThrottleKey {
  name: string;
  rule: ThrottleRule;
}

/** Keys are hashed: they hold sign-in names and addresses, and whatever an attacker typed. */
function stored(key: ThrottleKey): string {
  return createHash('sha256').update(key.name).digest('base64url');
}

export class AuthThrottle {
  constructor(readonly settings: AuthThrottleSettings) {}

  signInKeys(username: string, ip: string): ThrottleKey[] {
    return [
      { name: `sign-in:account:${username.trim().toLowerCase()}`, rule: this.settings.signInPerAccount },
      { name: `sign-in:ip:${ip}`, rule: this.settings.signInPerIp },
    ];
  }

  tokenClientKey(clientId: string): ThrottleKey {
    return { name: `token:client:${clientId}`, rule: this.settings.tokenPerClient };
  }

  tokenKeys(clientId: string | undefined, ip: string): ThrottleKey[] {
    return [...(clientId ? [this.tokenClientKey(clientId)] : []), { name: `token:ip:${ip}`, rule: this.settings.tokenPerIp }];
  }

  /** Whole seconds until the latest block of these keys ends; 0 when none is blocked. */
  async retryAfter(em: EntityManager, keys: ThrottleKey[]): Promise<number> {
    const [row] = await em.execute<{ ms: string | null }[]>(
      `select extract(epoch from max(blocked_until) - clock_timestamp()) * 1000 as ms from auth_throttle where key = any(?::text[]) and blocked_until > clock_timestamp()`,
      [`{${keys.map(stored).join(',')}}`],
    );
    return row?.ms == null ? 0 : Math.max(1, Math.ceil(Number(row.ms) / 1000));
  }

  /** Counts a failure against each key, row-locked so concurrent failures all count. */
  async failed(em: EntityManager, keys: ThrottleKey[]): Promise<void> {
    await em.transactional(async (tx) => {
      for (const key of keys) {
        const id = stored(key);
        await tx.execute(`insert into auth_throttle (key, failures, last_failure_at, expires_at) values (?, 0, clock_timestamp(), clock_timestamp()) on conflict (key) do nothing`, [id]);
        const [row] = await tx.execute<{ failures: number; last_failure_at: Date; now: Date }[]>(`select failures, last_failure_at, clock_timestamp() as now from auth_throttle where key = ? for update`, [id]);
        const previous = row!.failures === 0 ? undefined : { failures: row!.failures, lastFailureAt: new Date(row!.last_failure_at) };
        const now = new Date(row!.now);
        const next = afterFailure(previous, key.rule, this.settings.forgetAfterSeconds, now);
        const forgetAt = new Date(now.getTime() + this.settings.forgetAfterSeconds * 1000);
        const expiresAt = next.blockedUntil && next.blockedUntil > forgetAt ? next.blockedUntil : forgetAt;
        await tx.execute(`update auth_throttle set failures = ?, last_failure_at = ?, blocked_until = ?, expires_at = ? where key = ?`, [next.failures, now, next.blockedUntil, expiresAt, id]);
      }
    });
  }

  /** A success clears the key (the account or client that proved itself), not the IP's count. */
  async succeeded(em: EntityManager, key: ThrottleKey): Promise<void> {
    await em.execute(`delete from auth_throttle where key = ?`, [stored(key)]);
  }
}

/** "30 seconds", "15 minutes": for the pages and error messages. */
export function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}
