import dns, { type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Config } from '../config/config.js';
import { WebhookError } from './webhooks.errors.js';

const MAX_URL_LENGTH = 2048;
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** Which internal addresses webhook and bill look-up URLs may reach (ALLOW_INTERNAL_URLS; always 'none' in production). */
export type InternalUrls = Config['internalUrls'];

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

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopbackAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return LOOPBACK.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether an outbound request may connect to this address under the setting. */
export function addressAllowed(address: string, internal: InternalUrls): boolean {
  if (internal === 'all' || !isPrivateAddress(address)) return true;
  return internal === 'loopback' && isLoopbackAddress(address);
}

/** A URL's host without IPv6 brackets and without the trailing dot of a fully qualified name (`localhost.`). */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

function namesLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/**
 * Where webhooks (and bill look-ups) may go: https; http only to a loopback host where loopback is
 * allowed (tests, a receiver on the developer's machine). No credentials in the URL (they would be
 * logged and shown), and no host that is, or names, an internal address the setting does not
 * allow. Names are resolved too, by checkEndpointUrlResolved.
 */
export function checkEndpointUrl(raw: string, internal: InternalUrls): string {
  const refuse = (why: string) => new WebhookError('INVALID_WEBHOOK_URL', `${raw.slice(0, 200)}: ${why}`, 'url');
  if (raw.length > MAX_URL_LENGTH) throw refuse(`longer than ${MAX_URL_LENGTH} characters`);
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url) throw refuse('not an absolute URL');
  if (url.username || url.password) throw refuse('credentials do not belong in the URL; check the signature instead');
  if (url.hash) throw refuse('a fragment is never sent; leave it out');
  const host = hostOf(url);
  const internalHost = namesLoopback(host) ? internal === 'none' : isIP(host) !== 0 && !addressAllowed(host, internal);
  if (url.protocol === 'https:') {
    if (internalHost) throw refuse(INTERNAL_REFUSAL);
    return url.href;
  }
  if (url.protocol === 'http:') {
    if (internal === 'none') throw refuse('webhooks are sent over https only');
    if (!LOOPBACK_HOSTS.includes(url.hostname)) throw refuse('http is allowed on a loopback host only (localhost, 127.0.0.1, [::1]); use https');
    return url.href;
  }
  throw refuse('webhooks are sent over https');
}

const INTERNAL_REFUSAL = 'an internal address cannot receive webhooks (ALLOW_INTERNAL_URLS, docs/security.md#outbound-urls)';

export type LookupAll = (hostname: string) => Promise<LookupAddress[]>;
const systemLookup: LookupAll = (hostname) => dns.promises.lookup(hostname, { all: true });

/**
 * checkEndpointUrl, then the host's name resolved: a name that resolves to an address the setting
 * does not allow (`127.0.0.1.nip.io`, a name pointed at 169.254.169.254) is refused now rather than
 * at each delivery. A name that does not resolve yet is let through: delivery checks again at
 * every connection (lookupAllowing), which is what DNS changes cannot get around.
 */
export async function checkEndpointUrlResolved(raw: string, internal: InternalUrls, lookup: LookupAll = systemLookup): Promise<string> {
  const href = checkEndpointUrl(raw, internal);
  const url = new URL(href);
  const host = hostOf(url);
  if (internal === 'all' || isIP(host) !== 0) return href;
  const addresses = await lookup(host).catch(() => [] as LookupAddress[]);
  const refused = addresses.find((a) => !addressAllowed(a.address, internal));
  if (refused) throw new WebhookError('INVALID_WEBHOOK_URL', `${raw.slice(0, 200)}: ${url.hostname} resolves to ${refused.address}; ${INTERNAL_REFUSAL}`, 'url');
  return href;
}

/**
 * A dns.lookup for outbound connections that refuses names resolving to an address the setting
 * does not allow; undefined (the system's own) when all are allowed. Checked where we connect,
 * so a name re-pointed after registration does not get through.
 */
export function lookupAllowing(internal: InternalUrls): LookupFunction | undefined {
  if (internal === 'all') return undefined;
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const refused = addresses.find((a) => !addressAllowed(a.address, internal));
      if (refused) return callback(Object.assign(new Error(`${hostname} resolves to an internal address`), { code: 'EINTERNALADDRESS' }), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
