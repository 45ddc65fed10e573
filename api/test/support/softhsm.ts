/**
 * A SoftHSM2 token of the test file's own, in a temporary folder: what the PKCS#11 key store's tests
 * run against instead of a hardware HSM. Needs Debian's `softhsm2` (.ci/run installs it); says so
 * where it is missing. SOFTHSM2_CONF is read when the library initialises: one token per process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pkcs11Config } from '../../src/readers/keys/pkcs11-token.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface TestToken {
  config: Pkcs11Config;
  remove(): void;
}

export function softHsmToken(label = 'onecard-test'): TestToken {
  if (!existsSync(SOFTHSM_MODULE)) throw new Error(`the PKCS#11 tests need SoftHSM2 (${SOFTHSM_MODULE}): apt-get install softhsm2; .ci/run installs it`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onecard-softhsm-'));
  mkdirSync(path.join(dir, 'tokens'));
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = '24681357';
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', '13572468'], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' });
  return { config: { module: SOFTHSM_MODULE, tokenLabel: label, pin }, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
