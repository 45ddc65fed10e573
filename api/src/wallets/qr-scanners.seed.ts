import type { SeedStep } from '../demo/seed-step.js';
import { setTerminalLocation } from '../analytics/ridership.service.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { findReaderFor } from '../readers/readers.service.js';
import { setQrScanner } from './qr-scanners.js';

/** The demo gate's fare cap: a Guangzhou metro single fare's highest (15.00). */
const DEMO_FARE_CAP = 1500n;

/**
 * The demo's transit terminal — the Guangzhou counter reader, which the QR ride example runs as a
 * metro gate (examples/reader-simulator/qr-ride.mjs) — registered by its card company as a QR
 * scanner with a fare cap, as setQrScanner does, and placed on a line and stop so its rides show in
 * ridership analytics (docs/analytics.md).
 */
export const qrScannersDemo: SeedStep = {
  name: 'qr-scanners-demo',
  async run(em, { earlier }) {
    const readers = earlier.readers as { counter?: { id: string } } | undefined;
    const tenants = earlier.tenants as { cardCompanies: Record<string, string> };
    if (!readers?.counter) throw new Error('qr-scanners-demo: the demo counter reader is missing (readers-demo runs first)');
    const companyId = fromGlobalId(tenants.cardCompanies.GZ!, 'CardCompany').id;
    const principal = { kind: 'ISSUER' as const, clientId: 'demo-seed', tenantId: companyId, holderId: null, scopes: ['readers:manage'] };
    const gate = await findReaderFor(em, principal, fromGlobalId(readers.counter.id, 'Reader').id);
    if (!gate) throw new Error('qr-scanners-demo: the demo counter reader is not Guangzhou’s');
    await setQrScanner(em, principal, gate, { acceptsQrRides: true, fareCap: DEMO_FARE_CAP });
    await setTerminalLocation(em, gate.id, { line: 'Metro Line 1', stop: 'Gongyuanqian', vehicle: null });
    return { qrScanners: [{ reader: gate.serial, fareCap: Number(DEMO_FARE_CAP), line: 'Metro Line 1', stop: 'Gongyuanqian' }] };
  },
};
