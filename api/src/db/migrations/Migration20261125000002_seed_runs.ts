import { Migration } from '@mikro-orm/migrations';

/** Which demo-seed steps have run, so that each runs once however often the platform starts. */
export class Migration20261125000002_seed_runs extends Migration {
  override name = 'Migration20261125000002_seed_runs';

  override up(): void {
    this.addSql(`
      create table seed_run (
        step text primary key,
        ran_at timestamptz not null default now(),
        output jsonb not null default '{}'
      )`);
  }
}
