import { createPublicKey, verify } from 'node:crypto';

/**
 * What a terminal signs for an offline batch: a domain of its own (so a card-session signature can
 * never pass for a batch, nor the reverse), the terminal's global id, the batch id, and the body
 * exactly as sent.
 */
export function offlineBatchSignedBytes(terminalId: string, batchId: string, body: string): Buffer {
  return Buffer.from(`onecard-offline-batch-v1\n${terminalId}\n${batchId}\n${body}`, 'utf8');
}

/** RSA PKCS#1 v1.5 with SHA-256 by the terminal's device key, as for card sessions; false for anything malformed. */
export function verifyOfflineBatchSignature(publicKeyPem: string, terminalId: string, batchId: string, body: string, signatureB64: string): boolean {
  try {
    return verify('sha256', offlineBatchSignedBytes(terminalId, batchId, body), createPublicKey(publicKeyPem), Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
