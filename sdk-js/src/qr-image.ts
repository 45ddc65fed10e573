/**
 * The QR ride code as an image the app shows (乘车码, docs/qr-rides.md): byte mode, error correction
 * level M, so the 387-character code is always a version 15 symbol (77 × 77 modules) that every
 * gate's imager is tuned for. `qrcode` is imported on first use: an app that never draws a code (a
 * merchant back end, a reader agent) does not load it, and a browser bundle splits it off.
 */

export type QrImageFormat = 'svg' | 'png' | 'terminal';

export interface QrImageOptions {
  /** `svg`: an SVG document (string); `png`: a `data:image/png;base64,…` URL; `terminal`: text blocks for a console. */
  format: QrImageFormat;
  /** Quiet zone in modules (4, the standard's minimum, by default). */
  margin?: number;
  /** PNG only: pixels per module (8 by default). */
  scale?: number;
}

/** What a code is drawn as: its symbol's version, level and modules (true = dark), row by row. */
export interface QrSymbol {
  version: number;
  errorCorrectionLevel: 'M';
  size: number;
  modules: boolean[];
  /** The segments encoded: one, in byte mode, carrying the code exactly. */
  segments: { mode: string; data: string }[];
}

import type { QRCodeSegment } from 'qrcode';

const ERROR_CORRECTION = 'M' as const;

const load = async () => (await import('qrcode')).default;
// One byte-mode segment: the code's dots, dashes and lower case would otherwise be cut into mixed
// segments, and the version would depend on the code's content.
const segmentsOf = (code: string): QRCodeSegment[] => [{ data: new TextEncoder().encode(code), mode: 'byte' }];

function checkCode(code: string): void {
  if (typeof code !== 'string' || !/^OCQR1(\.[A-Za-z0-9_-]+){4}$/.test(code)) throw new TypeError('a QR ride code is OCQR1 and four base64url parts, as drawQrCode returns it');
}

/** The symbol a code is drawn as (for a renderer of your own, or to check one). */
export async function qrSymbolOf(code: string): Promise<QrSymbol> {
  checkCode(code);
  const symbol = (await load()).create(segmentsOf(code), { errorCorrectionLevel: ERROR_CORRECTION });
  const modules = Array.from(symbol.modules.data as Uint8Array, (bit) => bit === 1);
  const segments = (symbol.segments as unknown as { mode: { id: string }; data: Uint8Array | string }[]).map((s) => ({ mode: s.mode.id, data: typeof s.data === 'string' ? s.data : new TextDecoder().decode(s.data) }));
  return { version: symbol.version, errorCorrectionLevel: ERROR_CORRECTION, size: symbol.modules.size, modules, segments };
}

/** Renders the code the app shows (redraw it with each new drawQrCode, every few seconds). */
export async function renderQrCode(code: string, options: QrImageOptions): Promise<string> {
  checkCode(code);
  const qrcode = await load();
  const margin = options.margin ?? 4;
  switch (options.format) {
    case 'svg':
      return qrcode.toString(segmentsOf(code), { type: 'svg', errorCorrectionLevel: ERROR_CORRECTION, margin });
    case 'terminal':
      return qrcode.toString(segmentsOf(code), { type: 'terminal', small: true, errorCorrectionLevel: ERROR_CORRECTION, margin });
    case 'png':
      return qrcode.toDataURL(segmentsOf(code), { type: 'image/png', errorCorrectionLevel: ERROR_CORRECTION, margin, scale: options.scale ?? 8 });
    default:
      throw new TypeError(`a QR image format is svg, png or terminal, not ${String((options as { format: unknown }).format)}`);
  }
}
