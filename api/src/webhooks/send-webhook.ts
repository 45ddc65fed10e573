import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { addressAllowed, type InternalUrls, lookupAllowing } from './endpoint-url.js';

/** What one attempt ended with; `interrupted` when our own shutdown cut it short (not the receiver's fault). */
export interface SendResult {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  interrupted: boolean;
}

/** How much of the receiver's answer we read (and throw away) before closing. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs one webhook: no redirects followed, `timeoutMs` for the whole exchange (connect to
 * status), and `stop` (the worker shutting down) aborts it. Never throws: the outcome is data.
 */
export function sendWebhook(opts: { url: string; body: string; headers: Record<string, string>; timeoutMs: number; internal: InternalUrls; stop?: AbortSignal }): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const url = new URL(opts.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0 && !addressAllowed(host, opts.internal)) {
    return Promise.resolve({ statusCode: null, error: `${host} is an internal address`, durationMs: 0, interrupted: false });
  }
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.stop ? AbortSignal.any([timeout, opts.stop]) : timeout;
  return new Promise((resolve) => {
    let settled = false;
    const done = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      resolve({ statusCode, error, durationMs: elapsed(), interrupted: statusCode === null && !!opts.stop?.aborted && !timeout.aborted });
    };
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        headers: { ...opts.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(opts.body), 'user-agent': 'OneCard-Webhooks/1' },
        agent: false,
        signal,
        lookup: lookupAllowing(opts.internal),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        // The status is what counts; the body is drained so the exchange ends cleanly.
        res.on('end', () => done(status, status >= 200 && status < 300 ? null : `HTTP ${status}`));
        res.on('close', () => done(status, status >= 200 && status < 300 ? null : `HTTP ${status}`));
        res.on('error', () => done(status, status >= 200 && status < 300 ? null : `HTTP ${status}`));
      },
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      if (timeout.aborted) return done(null, `no answer within ${opts.timeoutMs} ms`);
      if (opts.stop?.aborted) return done(null, 'interrupted: the delivery worker stopped');
      done(null, err.code ? `${err.code}: ${err.message}` : err.message);
    });
    request.end(opts.body);
  });
}
