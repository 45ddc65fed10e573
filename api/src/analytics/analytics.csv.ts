import type { CsvColumns } from '../csv/csv-writer.js';
import type { OriginDestinationPairRow } from './origin-destination.service.js';
import type { RidershipGroupRow } from './ridership.service.js';

/**
 * The columns of the analytics CSV downloads (analytics.routes.ts), written by the one CSV writer:
 * the fields of the GraphQL answers, fares in integer minor units of `currency`.
 */

export const RIDERSHIP_COLUMNS: CsvColumns<RidershipGroupRow & { currency: string }> = [
  ['group', 'text', (r) => r.key],
  ['rides', 'int', (r) => String(r.rides)],
  ['riders', 'int', (r) => String(r.riders)],
  ['fares', 'int', (r) => String(r.fares)],
  ['currency', 'text', (r) => r.currency],
];

export const OD_COLUMNS: CsvColumns<OriginDestinationPairRow> = [
  ['origin', 'text', (r) => r.origin],
  ['destination', 'text', (r) => r.destination],
  ['transfer', 'text', (r) => String(r.transfer)],
  ['trips', 'int', (r) => String(r.trips)],
  ['riders', 'int', (r) => String(r.riders)],
];
