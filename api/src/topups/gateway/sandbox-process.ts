import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type SandboxGateway, startSandboxGateway } from './sandbox-gateway.js';

/**
 * The sandbox gateway of an installation without GATEWAY_URL, on a fixed port (GATEWAY_SANDBOX_PORT,
 * 4010 by default) with its keys and state kept in the data folder, so that checkout links handed
 * out before a restart still work after it. It runs inside the API, or on its own
 * (`onecard sandbox-gateway`), so that killing the API does not kill the gateway; an API that finds
 * it running on its port uses it instead of starting one.
 */
export interface SandboxKeys {
  secretKey: string;
  webhookSecret: string;
}

const KEYS_FILE = 'sandbox-gateway-keys.json';
const STATE_FILE = 'sandbox-gateway.json';

/** The sandbox's keys, made once per data folder (mode 0600) and read back after. */
export async function sandboxKeys(dataDir: string): Promise<SandboxKeys> {
  const file = path.join(dataDir, KEYS_FILE);
  const read = async () => JSON.parse(await fs.readFile(file, 'utf8')) as SandboxKeys;
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(dataDir, { recursive: true });
  const keys = { secretKey: `sk_sandbox_${randomBytes(16).toString('hex')}`, webhookSecret: `whsec_${randomBytes(24).toString('hex')}` };
  // wx: of two processes making them at once, one writes and both read the same.
  await fs.writeFile(file, JSON.stringify(keys), { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return read();
}

/** Whether a sandbox gateway with these keys answers at `url` (one started by `onecard sandbox-gateway`). */
export async function sandboxAnswers(url: string, keys: SandboxKeys): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v1/balance_transactions?limit=1`, { headers: { authorization: `Bearer ${keys.secretKey}` }, signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

export function startFixedSandbox(opts: { dataDir: string; port: number; keys: SandboxKeys; webhookUrl?: string; log?: Parameters<typeof startSandboxGateway>[0]['log'] }): Promise<SandboxGateway> {
  return startSandboxGateway({ ...opts.keys, port: opts.port, statePath: path.join(opts.dataDir, STATE_FILE), webhookUrl: opts.webhookUrl, log: opts.log });
}
