import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { addressAllowed, type InternalUrls, lookupAllowing } from '../webhooks/endpoint-url.js';
import { SIGNATURE_HEADER, signatureHeader } from '../webhooks/webhook-signature.js';
import { type BillDraft, checkBill } from './bill-input.js';
import { BillerUnavailable } from './bills.errors.js';

/**
 * Live bill look-up (docs/billers.md#live-look-up): OneCard POSTs `{"accountNumber": "…"}` to the
 * biller's fetch URL, signed like our webhooks (`onecard-signature: t=<unix>,v1=<hex HMAC-SHA256(
 * secret, "<t>.<body>")>`), and the biller answers with the account's current bills:
 *
 *     { "bills": [{ "billerReference", "period", "amountDue", "dueDate", "allowPartial"?, "lateFee"? }] }
 *
 * Anything else — no connection, no answer within the time-out, a status other than 2xx, a body
 * that is not that JSON, a bill that fails the checks every published bill passes — is
 * BillerUnavailable, with a reason for the log. Redirects are not followed.
 */

export const FETCH_TIMEOUT_MS = 5_000;
/** Bills of one account fit in far less; a bigger answer is not one. */
export const MAX_ANSWER_BYTES = 1024 * 1024;
export const MAX_BILLS_PER_ANSWER = 100;

export interface LookUpRequest {
  url: string;
  /** The biller's signing secret, in clear (unsealed by the caller). */
  secret: string;
  accountNumber: string;
  timeoutMs?: number;
  /** Which internal addresses the biller's URL may reach (ALLOW_INTERNAL_URLS). */
  internal: InternalUrls;
  now?: Date;
}

/** The body, the signature header and the other headers of a look-up request. */
export function lookUpMessage(secret: string, accountNumber: string, now: Date): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify({ accountNumber });
  return { body, headers: { [SIGNATURE_HEADER]: signatureHeader([secret], body, Math.floor(now.getTime() / 1000)), 'content-type': 'application/json', 'user-agent': 'OneCard-BillLookup/1', accept: 'application/json' } };
}

/** POSTs the look-up and returns the answer's body (2xx only); throws BillerUnavailable. */
export function postLookUp(req: LookUpRequest): Promise<string> {
  const timeoutMs = req.timeoutMs ?? FETCH_TIMEOUT_MS;
  const url = new URL(req.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0 && !addressAllowed(host, req.internal)) return Promise.reject(new BillerUnavailable(`${host} is an internal address`));
  const { body, headers } = lookUpMessage(req.secret, req.accountNumber, req.now ?? new Date());
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      reject(new BillerUnavailable(reason));
    };
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, agent: false, signal, lookup: lookupAllowing(req.internal) },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          res.resume();
          return fail(`the biller answered HTTP ${status}`);
        }
        const chunks: Buffer[] = [];
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) {
            res.destroy();
            fail(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          resolve(Buffer.concat(chunks).toString('utf8'));
        });
        const cut = () => fail(signal.aborted ? `no answer within ${timeoutMs} ms` : 'the answer was cut off');
        res.on('error', cut);
        res.on('close', () => {
          if (!res.complete) cut();
        });
      },
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return fail(`no answer within ${timeoutMs} ms`);
      fail(err.code ? `${err.code}: ${err.message}` : err.message);
    });
    request.end(body);
  });
}

/** The bills of the biller's answer, each checked like a published bill; throws BillerUnavailable. */
export function readLookUpAnswer(text: string, accountNumber: string): BillDraft[] {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new BillerUnavailable('the answer is not JSON');
  }
  const bills = (answer as { bills?: unknown } | null)?.bills;
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer) || !Array.isArray(bills)) throw new BillerUnavailable('the answer has no "bills" list');
  if (bills.length > MAX_BILLS_PER_ANSWER) throw new BillerUnavailable(`the answer has more than ${MAX_BILLS_PER_ANSWER} bills`);
  const drafts: BillDraft[] = [];
  const seen = new Set<string>();
  bills.forEach((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new BillerUnavailable(`bills[${i}] is not an object`);
    const b = item as Record<string, unknown>;
    const lateFee = b.lateFee;
    if (lateFee !== undefined && lateFee !== null && (typeof lateFee !== 'object' || Array.isArray(lateFee))) throw new BillerUnavailable(`bills[${i}].lateFee is not an object`);
    const checked = checkBill({ ...b, accountNumber, lateFee: lateFee as Record<string, never> | null | undefined });
    if (!checked.draft) throw new BillerUnavailable(`bills[${i}]: ${checked.problems.map((p) => p.message).join('; ')}`);
    if (seen.has(checked.draft.billerReference)) throw new BillerUnavailable(`bills[${i}]: billerReference ${checked.draft.billerReference} twice in the answer`);
    seen.add(checked.draft.billerReference);
    drafts.push(checked.draft);
  });
  return drafts;
}

/** Asks the biller for an account's bills: the request, then its answer checked. */
export async function lookUpBills(req: LookUpRequest): Promise<BillDraft[]> {
  return readLookUpAnswer(await postLookUp(req), req.accountNumber);
}
