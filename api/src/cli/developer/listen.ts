import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from '../../webhooks/webhook-signature.js';
import type { ApiClient } from './api-client.js';
import { type FeedEvent, followEvents } from './event-feed.js';

/**
 * The secret `onecard listen` signs with when none is given: made once and kept beside demo.json,
 * so the developer configures their verifier with it once (like a real endpoint's `whsec_…`).
 */
export async function listenerSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'listen-secret');
  const kept = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (kept) return kept;
  const made = `whsec_${randomBytes(24).toString('base64url')}`;
  await fs.mkdir(dataDir, { recursive: true });
  // wx: two listeners started at once keep the first one's secret.
  await fs.writeFile(file, `${made}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return (await fs.readFile(file, 'utf8')).trim();
}

/** The body and headers of a delivery, exactly as the delivery worker builds them (webhooks/deliver.ts). */
export function signedDelivery(event: FeedEvent, secret: string, at = new Date()): { body: string; headers: Record<string, string> } {
  // The key order of eventBody() (webhooks/events.service.ts): receivers hash the raw bytes.
  const body = JSON.stringify({ id: event.id, type: event.type, created: event.created, data: event.data });
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'OneCard-Webhooks/1',
      [SIGNATURE_HEADER]: signatureHeader([secret], body, Math.floor(at.getTime() / 1000)),
      [EVENT_ID_HEADER]: event.id,
    },
  };
}

export interface ForwardResult {
  status: number | null;
  error?: string;
  ms: number;
}

/** POSTs one signed event to the developer's local URL; never throws (a refused connection is a result). */
export async function forward(url: string, event: FeedEvent, secret: string, timeoutMs = 10_000): Promise<ForwardResult> {
  const { body, headers } = signedDelivery(event, secret);
  const started = performance.now();
  try {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer(); // the answer's body is ignored, as a real delivery ignores it
    return { status: res.status, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { status: null, error: cause ?? (err instanceof Error ? err.name : String(err)), ms: Math.round(performance.now() - started) };
  }
}

/** One line per forwarded event: when, type, id, and what the local URL answered. */
export function forwardLine(event: FeedEvent, url: string, result: ForwardResult): string {
  const answer = result.status === null ? `failed: ${result.error}` : `[${result.status}]`;
  return `${new Date().toISOString()}  --> ${event.type} ${event.id}  ${url}  <-- ${answer} (${result.ms} ms)`;
}

/**
 * `onecard listen`: follows this client's events (the public `events` query, so it works against any
 * OneCard) and POSTs each, signed with `secret`, to `forwardTo`. Unlike a real endpoint it does not
 * retry: the event stays readable with `events` and replayable with `replayWebhookEvent`.
 */
export async function listen(api: ApiClient, opts: { forwardTo: string; secret: string; types?: string[]; signal: AbortSignal; print: (line: string) => void }): Promise<void> {
  await followEvents(api, {
    types: opts.types,
    signal: opts.signal,
    onReady: () => opts.print(`Ready! Forwarding ${opts.types?.length ? opts.types.join(', ') : 'every'} event of ${api.name} (${api.baseUrl}) to ${opts.forwardTo}. Ctrl-C stops.`),
    onEvent: async (event) => opts.print(forwardLine(event, opts.forwardTo, await forward(opts.forwardTo, event, opts.secret))),
  });
}
