import { BlockList, isIP } from 'node:net';
import { WebhookError } from './webhooks.errors.js';

const MAX_URL_LENGTH = 2048;
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Addresses a webhook must not reach in production: the platform's own machines and networks
 * (a webhook URL is chosen by a tenant, so it must not be a way into them).
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3]] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
// ::/96 covers the deprecated IPv4-compatible form (::127.0.0.1); NAT64 and 6to4 embed IPv4 addresses too.
for (const [net, prefix] of [['::', 96], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['2002::', 16]] as const) PRIVATE.addSubnet(net, prefix, 'ipv6');

/** A loopback, private, link-local or otherwise internal address (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true; // not an address at all: refuse rather than guess
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Where webhooks may go: https; outside production also http on a loopback host (tests, a receiver
 * on the developer's machine). No credentials in the URL (they would be logged and shown), and in
 * production no host that is, or names, an internal address.
 */
export function checkEndpointUrl(raw: string, env: 'development' | 'production' | 'test'): string {
  const refuse = (why: string) => new WebhookError('INVALID_WEBHOOK_URL', `${raw.slice(0, 200)}: ${why}`, 'url');
  if (raw.length > MAX_URL_LENGTH) throw refuse(`longer than ${MAX_URL_LENGTH} characters`);
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url) throw refuse('not an absolute URL');
  if (url.username || url.password) throw refuse('credentials do not belong in the URL; check the signature instead');
  if (url.hash) throw refuse('a fragment is never sent; leave it out');
  const production = env === 'production';
  if (url.protocol === 'https:') {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (production && (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) !== 0 && isPrivateAddress(host)))) throw refuse('an internal address cannot receive webhooks');
    return url.href;
  }
  if (url.protocol === 'http:') {
    if (production) throw refuse('webhooks are sent over https only');
    if (!LOOPBACK_HOSTS.includes(url.hostname)) throw refuse('http is allowed on a loopback host only (localhost, 127.0.0.1, [::1]); use https');
    return url.href;
  }
  throw refuse('webhooks are sent over https');
}
