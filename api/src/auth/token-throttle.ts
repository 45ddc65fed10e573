import type { MikroORM } from '@mikro-orm/postgresql';
import type Provider from 'oidc-provider';
import type { AuthThrottle } from './throttle.js';
import { waitText } from './throttle.js';

/** The client id of an HTTP Basic header (RFC 6749 §2.3.1: form-urlencoded before base64), if any. */
export function basicClientId(header: string | undefined): string | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return decoded.slice(0, colon);
  }
}

/** The answer to a throttled client: 429, Retry-After, and an OAuth error body saying how long. */
export function throttledAnswer(seconds: number) {
  return {
    status: 429,
    headers: { 'retry-after': String(seconds), 'cache-control': 'no-store' },
    body: { error: 'temporarily_unavailable', error_description: `too many failed client authentications; try again in ${waitText(seconds)}` },
  };
}

/**
 * Throttles oidc-provider's token endpoint (docs/security.md#throttling-of-sign-in-and-token-requests):
 * a blocked client id or IP is answered 429 before its credentials are looked at; a failed client
 * authentication (401) counts against both; a token issued resets the client's count. Runs inside
 * oidc-provider (a Koa middleware), so the count is written before the answer leaves.
 */
export function throttleTokenEndpoint(provider: Provider, orm: MikroORM, throttle: AuthThrottle): void {
  provider.use(async (ctx, next) => {
    if (ctx.path !== '/token' || ctx.method !== 'POST') return next();
    const keys = throttle.tokenKeys(basicClientId(ctx.get('authorization')), ctx.ip);
    const wait = await throttle.retryAfter(orm.em.fork(), keys);
    if (wait > 0) {
      const answer = throttledAnswer(wait);
      ctx.status = answer.status;
      ctx.set(answer.headers);
      ctx.body = answer.body;
      return;
    }
    await next();
    if (ctx.status === 401) {
      await throttle.failed(orm.em.fork(), keys);
    } else if (ctx.status === 200 && ctx.oidc?.client) {
      await throttle.succeeded(orm.em.fork(), throttle.tokenClientKey(ctx.oidc.client.clientId));
    }
  });
}
