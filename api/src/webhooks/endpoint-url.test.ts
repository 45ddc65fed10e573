import { describe, expect, it } from 'vitest';
import { checkEndpointUrl, isPrivateAddress } from './endpoint-url.js';

describe('where webhooks may go', () => {
  const cases: [string, 'development' | 'production' | 'test', string | null][] = [
    ['https://shop.example/hooks/onecard', 'production', 'https://shop.example/hooks/onecard'],
    ['https://shop.example:8443/h?x=1', 'production', 'https://shop.example:8443/h?x=1'],
    ['http://shop.example/h', 'production', 'https only'],
    ['http://127.0.0.1:9000/h', 'production', 'https only'],
    ['https://localhost/h', 'production', 'internal address'],
    ['https://10.1.2.3/h', 'production', 'internal address'],
    ['https://192.168.0.10/h', 'production', 'internal address'],
    ['https://169.254.169.254/latest/meta-data', 'production', 'internal address'],
    ['https://[::1]/h', 'production', 'internal address'],
    ['https://[fd00::1]/h', 'production', 'internal address'],
    ['http://127.0.0.1:9000/h', 'test', 'http://127.0.0.1:9000/h'],
    ['http://localhost:9000/h', 'development', 'http://localhost:9000/h'],
    ['http://[::1]:9000/h', 'development', 'http://[::1]:9000/h'],
    ['https://10.1.2.3/h', 'development', 'https://10.1.2.3/h'],
    ['http://shop.example/h', 'development', 'loopback host only'],
    ['ftp://127.0.0.1/h', 'test', 'over https'],
    ['https://user:secret@shop.example/h', 'production', 'credentials'],
    ['https://shop.example/h#frag', 'production', 'fragment'],
    ['/relative', 'test', 'absolute URL'],
    [`https://shop.example/${'a'.repeat(2100)}`, 'production', 'longer than'],
  ];
  it.each(cases)('%s in %s', (url, env, expected) => {
    if (expected?.includes('://')) expect(checkEndpointUrl(url, env)).toBe(expected);
    else expect(() => checkEndpointUrl(url, env)).toThrow(expected!);
  });

  it('knows internal addresses, IPv4-mapped IPv6 included', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fe80::1', 'fc00::1', '::ffff:10.0.0.1', 'not-an-ip']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '203.0.113.9', '2001:4860:4860::8888', '::ffff:8.8.8.8']) expect(isPrivateAddress(a), a).toBe(false);
  });
});
