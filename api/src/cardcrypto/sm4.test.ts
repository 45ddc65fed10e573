import { describe, expect, it } from 'vitest';
import { sm3, sm4CbcDecrypt, sm4CbcEncrypt, sm4EcbDecrypt, sm4EcbEncrypt, sm4EcbEncryptor } from './sm4.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const GB_KEY = hex('0123456789ABCDEFFEDCBA9876543210');

describe('SM4 (GB/T 32907-2016)', () => {
  it('the standard example: key = plaintext = 0123…3210 encrypts to 681EDF34…4246, and back', () => {
    const cipher = '681EDF34D206965E86B3E94F536E4246';
    expect(HEX(sm4EcbEncrypt(GB_KEY, GB_KEY))).toBe(cipher);
    expect(sm4EcbDecrypt(GB_KEY, hex(cipher))).toEqual(GB_KEY);
  });

  it('the standard example encrypted 1,000,000 times gives 595298C7…3F66', () => {
    const encrypt = sm4EcbEncryptor(GB_KEY);
    let block: Uint8Array = GB_KEY;
    for (let i = 0; i < 1_000_000; i++) block = encrypt(block);
    expect(HEX(block)).toBe('595298C7C6FD271F0402F804C33D3F66');
  });

  it('the reusable encryptor agrees with one-shot ECB over several blocks', () => {
    const data = hex('00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210');
    expect(sm4EcbEncryptor(GB_KEY)(data)).toEqual(sm4EcbEncrypt(GB_KEY, data));
  });

  it.each([
    // draft-ribose-cfrg-sm4-10 A.2.2.1 and A.2.2.2 (SM4-CBC, IV 000102…0F).
    { key: '0123456789ABCDEFFEDCBA9876543210', cipher: '78EBB11CC40B0A48312AAEB2040244CB4CB7016951909226979B0D15DC6A8F6D' },
    { key: 'FEDCBA98765432100123456789ABCDEF', cipher: '0D3A6DDC2D21C698857215587B7BB59A91F2C147911A4144665E1FA1D40BAE38' },
  ])('CBC matches the published draft-ribose-cfrg-sm4 vector for key $key, both ways', ({ key, cipher }) => {
    const plain = hex('AAAAAAAABBBBBBBBCCCCCCCCDDDDDDDDEEEEEEEEFFFFFFFFAAAAAAAABBBBBBBB');
    const iv = hex('000102030405060708090A0B0C0D0E0F');
    expect(HEX(sm4CbcEncrypt(hex(key), plain, iv))).toBe(cipher);
    expect(sm4CbcDecrypt(hex(key), hex(cipher), iv)).toEqual(plain);
  });

  it('CBC uses a zero IV by default', () => {
    const data = Buffer.alloc(32, 0x5a);
    expect(sm4CbcEncrypt(GB_KEY, data)).toEqual(sm4CbcEncrypt(GB_KEY, data, Buffer.alloc(16)));
  });

  it.each([
    { rule: 'an SM4 key is 16 bytes', call: () => sm4EcbEncrypt(Buffer.alloc(8), Buffer.alloc(16)) },
    { rule: 'SM4 data is whole 16-byte blocks', call: () => sm4EcbEncrypt(GB_KEY, Buffer.alloc(8)) },
    { rule: 'SM4 decrypt data is whole 16-byte blocks', call: () => sm4EcbDecrypt(GB_KEY, Buffer.alloc(17)) },
    { rule: 'SM4 CBC data is whole 16-byte blocks', call: () => sm4CbcEncrypt(GB_KEY, Buffer.alloc(24)) },
    { rule: 'an SM4 IV is 16 bytes', call: () => sm4CbcDecrypt(GB_KEY, Buffer.alloc(16), Buffer.alloc(8)) },
    { rule: 'the encryptor takes a 16-byte key', call: () => sm4EcbEncryptor(Buffer.alloc(15)) },
    { rule: 'the encryptor takes whole blocks', call: () => sm4EcbEncryptor(GB_KEY)(Buffer.alloc(4)) },
  ])('bad lengths throw a RangeError: $rule', ({ call }) => {
    expect(call).toThrow(RangeError);
  });
});

describe('SM3 (GB/T 32905-2016)', () => {
  it.each([
    { input: 'abc', digest: '66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0' },
    { input: 'abcd'.repeat(16), digest: 'DEBE9FF92275B8A138604889C18E5A4D6FDB70E5387E5765293DCBA39C0C5732' },
  ])('the standard example SM3("$input") is published', ({ input, digest }) => {
    expect(HEX(sm3(Buffer.from(input, 'ascii')))).toBe(digest);
  });
});
