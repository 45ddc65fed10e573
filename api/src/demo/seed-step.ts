import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../config/config.js';

/** The shape of a demo seed step, apart from the list of steps (demo/seed.ts), which imports every context's steps. */

/** What a person needs to try the platform; written to `$ONECARD_DATA_DIR/demo.json`. */
export type DemoData = Record<string, unknown>;

/** What a seed step may use besides the database. */
export interface SeedContext {
  /** The output of the steps before it (ids to build on). */
  earlier: DemoData;
  config: Config;
  /** The key-encryption key, for steps that store private keys. */
  kek: Buffer;
}

/** One step of the demo seed. Each runs once per database; its output is kept and merged into demo.json. */
export interface SeedStep {
  name: string;
  run(em: EntityManager, ctx: SeedContext): Promise<DemoData>;
}
