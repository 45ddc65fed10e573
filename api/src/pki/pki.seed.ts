import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { SeedStep } from '../demo/seed-step.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { initRootCa, openRootCa } from './root-ca.js';
import { ensureHostKey } from './host-key.js';
import { createWorkingCa } from './pki.service.js';

/**
 * A demo CA hierarchy: a root whose encrypted key file lives in the data folder (a real root is
 * made on an offline machine with `onecard ca init-root`), the national working CA, and one
 * working CA per demo city.
 */
export const pkiDemo: SeedStep = {
  name: 'pki-demo',
  async run(em, { earlier, config, kek }) {
    const file = path.join(config.dataDir, 'demo-root-ca.json');
    const passphrase = `demo-${randomBytes(12).toString('base64url')}`;
    await fs.mkdir(config.dataDir, { recursive: true });
    await fs.rm(file, { force: true }); // a file left by a seed that did not commit
    await initRootCa(file, passphrase, { commonName: 'OneCard Demo Root CA' });
    const root = await openRootCa(file, passphrase);
    const cities = (earlier.tenants as { cities: Record<string, string> }).cities;
    await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'OneCard National Working CA', publicUrl: config.publicUrl });
    const cas: Record<string, string> = { root: 'root', national: 'national' };
    for (const [code, cityId] of Object.entries(cities)) {
      const ca = await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: fromGlobalId(cityId, 'City').id, cityCode: code, name: `OneCard ${code} City Working CA`, publicUrl: config.publicUrl });
      cas[code] = ca.id;
      // The key that signs what the city's card company sends its readers.
      await ensureHostKey(em, kek, ca.id, config.publicUrl);
    }
    return { pki: { certificateAuthorities: cas, rootCaFile: file, rootCaPassphrase: passphrase } };
  },
};
