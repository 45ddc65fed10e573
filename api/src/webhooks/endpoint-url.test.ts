import { describe, expect, it } from 'vitest';
import { checkEndpointUrl, checkEndpointUrlResolved, type InternalUrls, isPrivateAddress, type LookupAll } from './endpoint-url.js';

describe('where webhooks may go', () => {
  const cases: [string, InternalUrls, string | null][] = [
    ['https://shop.example/hooks/onecard', 'none', 'https://shop.example/hooks/onecard'],
    ['https://shop.example:8443/h?x=1', 'none', 'https://shop.example:8443/h?x=1'],
    ['http://shop.example/h', 'none', 'https only'],
    ['http://127.0.0.1:9000/h', 'none', 'https only'],
    ['https://localhost/h', 'none', 'internal address'],
    ['https://10.1.2.3/h', 'none', 'internal address'],
    ['https://192.168.0.10/h', 'none', 'internal address'],
    ['https://169.254.169.254/latest/meta-data', 'none', 'internal address'],
    ['https://[::1]/h', 'none', 'internal address'],
    ['https://[fd00::1]/h', 'none', 'internal address'],
    ['http://127.0.0.1:9000/h', 'loopback', 'http://127.0.0.1:9000/h'],
    ['http://localhost:9000/h', 'loopback', 'http://localhost:9000/h'],
    ['http://[::1]:9000/h', 'loopback', 'http://[::1]:9000/h'],
    ['https://10.1.2.3/h', 'loopback', 'internal address'],
    ['https://10.1.2.3/h', 'all', 'https://10.1.2.3/h'],
    ['https://169.254.169.254/latest/meta-data', 'loopback', 'internal address'],
    ['https://[fd00::1]/h', 'loopback', 'internal address'],
    ['https://127.0.0.1/h', 'loopback', 'https://127.0.0.1/h'],
    ['https://localhost./h', 'none', 'internal address'],
    ['https://api.localhost./h', 'none', 'internal address'],
    ['https://localhost./h', 'loopback', 'https://localhost./h'],
    ['http://shop.example/h', 'loopback', 'loopback host only'],
    ['ftp://127.0.0.1/h', 'loopback', 'over https'],
    ['https://user:secret@shop.example/h', 'none', 'credentials'],
    ['https://shop.example/h#frag', 'none', 'fragment'],
    ['/relative', 'loopback', 'absolute URL'],
    [`https://shop.example/${'a'.repeat(2100)}`, 'none', 'longer than'],
  ];
  it.each(cases)('%s with ALLOW_INTERNAL_URLS=%s', (url, internal, expected) => {
    if (expected?.includes('://')) expect(checkEndpointUrl(url, internal)).toBe(expected);
    else expect(() => checkEndpointUrl(url, internal)).toThrow(expected!);
  });

  it('knows internal addresses, IPv4-mapped IPv6 included', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fe80::1', 'fc00::1', '::ffff:10.0.0.1', 'not-an-ip']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '203.0.113.9', '2001:4860:4860::8888', '::ffff:8.8.8.8']) expect(isPrivateAddress(a), a).toBe(false);
  });
});

describe('names resolved at registration', () => {
  // A resolver of our own: what public DNS would answer for these names.
  const zone: Record<string, string[]> = {
    '127.0.0.1.nip.io': ['127.0.0.1'],
    'metadata.attacker.example': ['169.254.169.254'],
    'intranet.attacker.example': ['203.0.113.7', '10.0.0.8'],
    'shop.example': ['203.0.113.9'],
  };
  const lookup: LookupAll = async (host) => {
    const addresses = zone[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: 4 }));
  };
  const cases: [string, InternalUrls, string][] = [
    ['https://127.0.0.1.nip.io/h', 'none', 'resolves to 127.0.0.1'],
    ['https://127.0.0.1.nip.io/h', 'loopback', 'https://127.0.0.1.nip.io/h'],
    ['https://metadata.attacker.example/h', 'none', 'resolves to 169.254.169.254'],
    ['https://metadata.attacker.example/h', 'loopback', 'resolves to 169.254.169.254'],
    ['https://metadata.attacker.example/h', 'all', 'https://metadata.attacker.example/h'],
    ['https://intranet.attacker.example/h', 'none', 'resolves to 10.0.0.8'],
    ['https://shop.example/h', 'none', 'https://shop.example/h'],
    // Not resolvable yet: let through; delivery checks at every connection.
    ['https://not-yet.example/h', 'none', 'https://not-yet.example/h'],
  ];
  it.each(cases)('%s with ALLOW_INTERNAL_URLS=%s', async (url, internal, expected) => {
    if (expected.includes('://')) await expect(checkEndpointUrlResolved(url, internal, lookup)).resolves.toBe(expected);
    else await expect(checkEndpointUrlResolved(url, internal, lookup)).rejects.toThrow(expected);
  });
});
