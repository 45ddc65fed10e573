/**
 * Offline batches as a terminal uploads them (docs/settlement.md, "Offline transaction uploads"):
 * the body names the terminal number the PSAM used and lists the records; the terminal signs
 * `onecard-offline-batch-v1\n<terminal>\n<batchId>\n<body>` with its device key (the key of its
 * city certificate, RSA-SHA256), and its owner's client relays it with `uploadOfflineBatch`.
 */
import { createSign, type KeyObject } from 'node:crypto';
import type { OfflinePurchaseRecord } from './gate.js';

export interface OfflineBatch {
  terminal: string;
  batchId: string;
  body: string;
  signature: string;
  certificate: string;
}

/** The body: `{ terminalNumber, records }`; the server refuses a batch whose number is not the terminal's. */
export function offlineBatchBody(terminalNumber: string, records: OfflinePurchaseRecord[]): string {
  return JSON.stringify({ terminalNumber, records });
}

/** A signed batch, ready for `uploadOfflineBatch`. */
export function signOfflineBatch(input: { terminal: string; batchId: string; terminalNumber: string; records: OfflinePurchaseRecord[]; deviceKeyPem: string | KeyObject; cityCertificatePem: string }): OfflineBatch {
  const body = offlineBatchBody(input.terminalNumber, input.records);
  const signature = createSign('sha256').update(`onecard-offline-batch-v1\n${input.terminal}\n${input.batchId}\n${body}`, 'utf8').sign(input.deviceKeyPem).toString('base64');
  return { terminal: input.terminal, batchId: input.batchId, body, signature, certificate: input.cityCertificatePem };
}

export const UPLOAD_OFFLINE_BATCH = `mutation UploadOfflineBatch($input: UploadOfflineBatchInput!) {
  uploadOfflineBatch(input: $input) {
    batch { id batchId receivedAt records { index asn offlineCounter amount outcome accepted reason journalEntry } }
    replayed
    userErrors { code field message }
  }
}`;

export interface OfflineBatchAnswer {
  batch: { id: string; batchId: string; receivedAt: string; records: { index: number; asn: string; offlineCounter: number; amount: number; outcome: string; accepted: boolean; reason: string; journalEntry: string | null }[] } | null;
  replayed: boolean;
  userErrors: { code: string; field: string[] | null; message: string }[];
}

/**
 * Uploads a signed batch through the owner's client (a merchant with `payments:write`, a card company
 * with `topups:write`). The same batch again answers what was stored (`replayed`): after a lost
 * answer, send it again unchanged.
 */
export async function uploadOfflineBatch(client: { request<T>(query: string, variables?: Record<string, unknown>): Promise<T> }, batch: OfflineBatch): Promise<OfflineBatchAnswer> {
  const data = await client.request<{ uploadOfflineBatch: OfflineBatchAnswer }>(UPLOAD_OFFLINE_BATCH, { input: batch });
  return data.uploadOfflineBatch;
}
