import { constants, createCipheriv, createPublicKey, type KeyObject, publicEncrypt, randomBytes, sign, verify } from 'node:crypto';

/** What a reader signs for each message: domain, session (its global id), sequence, and the body it sends. */
export function signedBytes(sessionId: string, seq: number, body: string): Buffer {
  return Buffer.from(`onecard-card-session-v1\n${sessionId}\n${seq}\n${body}`, 'utf8');
}

/** RSA PKCS#1 v1.5 with SHA-256, by the reader's device key; false for anything malformed. */
export function verifyReaderSignature(publicKeyPem: string, sessionId: string, seq: number, body: string, signatureB64: string): boolean {
  try {
    return verify('sha256', signedBytes(sessionId, seq, body), createPublicKey(publicKeyPem), Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

/** A command for the reader that carries a secret (a MAC2, a MAC1), readable only inside it. */
export interface SealedCommand {
  /** A fresh AES-256 key, wrapped with RSA-OAEP (SHA-256) to the reader's device key. */
  wrappedKey: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

/** Encrypts an APDU to the reader: AES-256-GCM under a fresh key wrapped with RSA-OAEP. */
export function sealForReader(publicKeyPem: string, apdu: Buffer, associated: string): SealedCommand {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(associated));
  const ciphertext = Buffer.concat([cipher.update(apdu), cipher.final()]);
  const wrappedKey = publicEncrypt({ key: createPublicKey(publicKeyPem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key);
  return { wrappedKey: wrappedKey.toString('base64'), iv: iv.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/**
 * A host → reader message: what the reader may do next (its commands, the session's state and
 * result), bound to the session, the reader and the sequence number of the message it answers.
 * `payload` is the JSON the host signed; the reader acts on it, never on the unsigned GraphQL fields.
 */
export interface HostMessage {
  payload: string;
  /** Base64 ECDSA P-256 / SHA-256 (DER) over the payload's UTF-8 bytes, by the host key. */
  signature: string;
  /** The host certificate (server profile, from the reader's city working CA), then that CA's. */
  certificateChain: string[];
}

export const HOST_MESSAGE_PROTOCOL = 'onecard-host-v1';

export function signHostMessage(
  key: { privateKey: KeyObject; chainPem: string[] },
  /** `expiresAt`: the session's expiry; a reader runs nothing of the message after it (a script held by a relay goes stale). */
  content: { session: string; reader: string; seq: number; state: string; commands: unknown[]; result: unknown; expiresAt: string },
): HostMessage {
  const payload = JSON.stringify({ protocol: HOST_MESSAGE_PROTOCOL, ...content });
  return { payload, signature: sign('sha256', Buffer.from(payload, 'utf8'), key.privateKey).toString('base64'), certificateChain: key.chainPem };
}
