import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import type { SeedStep } from '../demo/seed.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { registerReader } from './readers.service.js';

/**
 * A home reader of the demo cardholder `lin` (a Guangzhou reader she owns, as one plugged into her
 * phone or computer), so her card can pay a merchant's payment at home through her card company's
 * app (docs/payments.md). Its device key is written to a file, like the counter reader's: the
 * merchant-checkout example runs it as a simulated reader.
 */
export const readersHomeDemo: SeedStep = {
  name: 'readers-home-demo',
  async run(em, { earlier, config, kek }) {
    const tenants = earlier.tenants as { cities: Record<string, string> };
    const [lin] = await em.execute<{ id: string }[]>(`select id from cardholder where username = 'lin'`);
    if (!lin) throw new Error('readers-home-demo: the demo cardholder lin is missing (auth-demo runs first)');

    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    csr.sign(key, forge.md.sha256.create());
    const csrPem = forge.pki.certificationRequestToPem(csr);
    const serial = 'GZ-HOME-LIN-0001';
    const registered = await registerReader(em, kek, {
      serial,
      model: 'OneCard virtual home reader',
      owner: { kind: 'CARDHOLDER', id: lin.id, name: 'lin' },
      cityId: fromGlobalId(tenants.cities.GZ!, 'City').id,
      cityCode: 'GZ',
      nationalCsrPem: csrPem,
      cityCsrPem: csrPem,
      publicUrl: config.publicUrl,
    });
    const readerId = toGlobalId('Reader', registered.reader.id);
    await fs.mkdir(config.dataDir, { recursive: true });
    const readerFile = path.join(config.dataDir, 'demo-home-reader.json');
    const reader = { readerId, serial, holder: 'lin', deviceKeyPem: privateKey, nationalCertificatePem: registered.nationalChainPem[0], cityCertificatePem: registered.cityChainPem[0] };
    await fs.writeFile(readerFile, `${JSON.stringify(reader, null, 2)}\n`, { mode: 0o600 });
    // demo.json merges each step's output at the top level: keep the counter reader beside this one.
    return { readers: { ...(earlier.readers as Record<string, unknown>), home: { id: readerId, serial, holder: 'lin', file: readerFile } } };
  },
};
