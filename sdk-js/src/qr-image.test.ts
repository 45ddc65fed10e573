import { describe, expect, it } from 'vitest';
import { createQrDeviceKey, drawQrCode } from './qr.js';
import { qrSymbolOf, renderQrCode } from './qr-image.js';

/** A code of the real shape and length: a signed credential's parts (their bytes do not matter to the image), drawn by the SDK. */
function aCode(): string {
  const b64 = (n: number, fill: number) => Buffer.alloc(n, fill).toString('base64url');
  const credential = Buffer.alloc(146, 7);
  credential[0] = 1;
  const device = createQrDeviceKey();
  return drawQrCode(`OCQR1.${credential.toString('base64url')}.${b64(64, 9)}`, device.privateKey, { time: new Date('2026-12-07T09:00:00Z'), counter: 42 });
}

/** The dark modules an SVG from `qrcode` paints: its dark path is runs of `M x y h n` (moves relative after the first: `m dx dy`). */
function darkModulesOfSvg(svg: string, margin: number, size: number): boolean[] {
  const dark = svg.match(/<path fill="#000000" d="([^"]+)"/) ?? svg.match(/<path[^>]*stroke="#000000"[^>]*d="([^"]+)"/);
  if (!dark) throw new Error('no dark path in the SVG');
  const modules = new Array<boolean>(size * size).fill(false);
  let x = 0;
  let y = 0;
  for (const [, op, a, b] of dark[1]!.matchAll(/([MmHhVv])(-?\d+(?:\.\d+)?)(?:\s(-?\d+(?:\.\d+)?))?/g)) {
    const n = Number(a);
    if (op === 'M') [x, y] = [n, Number(b)];
    else if (op === 'm') [x, y] = [x + n, y + Number(b)];
    else if (op === 'h') {
      for (let i = 0; i < n; i++) modules[Math.floor(y - margin) * size + (x + i - margin)] = true;
      x += n;
    } else throw new Error(`unexpected path command ${op}`);
  }
  return modules;
}

describe('renderQrCode', () => {
  it('encodes exactly the code, in one byte-mode segment, as a version 15 symbol at level M (77 × 77 modules)', async () => {
    const code = aCode();
    expect(code).toHaveLength(387);
    const symbol = await qrSymbolOf(code);
    expect({ version: symbol.version, level: symbol.errorCorrectionLevel, size: symbol.size, segments: symbol.segments }).toEqual({ version: 15, level: 'M', size: 77, segments: [{ mode: 'Byte', data: code }] });
    // Another code (another counter) is another symbol.
    const other = await qrSymbolOf(code.replace(/\.([^.]+)\.([^.]+)$/, (_, fresh: string, sig: string) => `.${fresh.slice(0, -1)}${fresh.endsWith('A') ? 'B' : 'A'}.${sig}`));
    expect(other.modules).not.toEqual(symbol.modules);
  });

  it('draws that symbol as SVG: the dark modules of the image are the symbol’s, inside the quiet zone', async () => {
    const code = aCode();
    const symbol = await qrSymbolOf(code);
    const svg = await renderQrCode(code, { format: 'svg' });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 85 85"/);
    expect(darkModulesOfSvg(svg, 4, symbol.size)).toEqual(symbol.modules);
  });

  it('draws a PNG data URL and terminal blocks of the same size', async () => {
    const code = aCode();
    const png = await renderQrCode(code, { format: 'png', scale: 2 });
    const bytes = Buffer.from(png.replace(/^data:image\/png;base64,/, ''), 'base64');
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    // IHDR: width and height, (77 + 2 × 4) modules × 2 pixels.
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([170, 170]);
    const terminal = await renderQrCode(code, { format: 'terminal' });
    // Small mode: two module rows per text line (half blocks), with a border of its own of a module or so.
    expect(terminal).toMatch(/[▀▄█]/);
    const lines = terminal.trimEnd().split('\n').length;
    expect(lines).toBeGreaterThanOrEqual(Math.ceil(77 / 2));
    expect(lines).toBeLessThanOrEqual(Math.ceil(85 / 2));
  });

  it('refuses what is not a QR ride code, and an unknown format', async () => {
    await expect(renderQrCode('https://example.com', { format: 'svg' })).rejects.toThrow(TypeError);
    await expect(renderQrCode(aCode(), { format: 'gif' as 'svg' })).rejects.toThrow(/svg, png or terminal/);
  });
});
