import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';

const KEK_FILE = 'key-encryption-key';

/**
 * The key-encryption key that seals every private key the database holds (OAuth signing keys,
 * working CA keys, card master keys): from ONECARD_KEY_ENCRYPTION_KEY, or, outside production,
 * made once and kept (mode 600) in the data folder so that a demo needs no configuration.
 */
export async function loadKeyEncryptionKey(config: Config): Promise<Buffer> {
  if (config.keyEncryptionKey) return config.keyEncryptionKey;
  // Read (or made) once per data folder: resolvers ask for it on every card session message.
  const file = path.join(config.dataDir, KEK_FILE);
  let loading = fromFile.get(file);
  if (!loading) {
    loading = readOrCreate(file, config.dataDir);
    fromFile.set(file, loading);
    loading.catch(() => fromFile.delete(file));
  }
  return loading;
}

const fromFile = new Map<string, Promise<Buffer>>();

async function readOrCreate(file: string, dataDir: string): Promise<Buffer> {
  const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (existing) return Buffer.from(existing.trim(), 'base64url');
  await fs.mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    await fs.writeFile(file, key.toString('base64url'), { mode: 0o600, flag: 'wx' });
    return key;
  } catch {
    return Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64url'); // another process made it first
  }
}

/** AES-256-GCM: `iv.tag.ciphertext` in base64url; `context` (what the secret is) is bound as associated data. */
export function seal(kek: Buffer, context: string, plaintext: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv).setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64url')).join('.');
}

/** Opens what `seal` made; throws when the key, the context or the bytes are not the same. */
export function unseal(kek: Buffer, context: string, sealed: string): Buffer {
  const [iv, tag, body] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'));
  const decipher = createDecipheriv('aes-256-gcm', kek, iv!).setAAD(Buffer.from(context));
  decipher.setAuthTag(tag!);
  return Buffer.concat([decipher.update(body!), decipher.final()]);
}
