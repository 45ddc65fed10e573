import { Migration20261125000001_ledger } from './Migration20261125000001_ledger.js';
import { Migration20261125000002_seed_runs } from './Migration20261125000002_seed_runs.js';

/** Every migration, in order. Listed rather than globbed so the same list runs from src and dist. */
export const migrations = [Migration20261125000001_ledger, Migration20261125000002_seed_runs].map((migration) => ({
  name: migration.name,
  class: migration,
}));
