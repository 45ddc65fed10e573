import { Migration } from '@mikro-orm/migrations';

/** Cities, their card companies, the operator's fee plans, merchants and billers (DESIGN.md §2 `tenancy/`). */
export class Migration20261125000003_tenancy extends Migration {
  override name = 'Migration20261125000003_tenancy';

  override up(): void {
    this.addSql(`
      create table city (
        id uuid primary key,
        code text not null unique check (code ~ '^[A-Z]{2,8}$'),
        name text not null check (length(btrim(name)) between 1 and 200),
        time_zone text not null check (time_zone <> ''),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        created_at timestamptz not null default now(),
        -- the target of the (city, currency) keys below
        unique (id, currency)
      )`);
    this.addSql(`
      create table card_company (
        id uuid primary key,
        -- the issuer (通卡公司): exactly one per city
        city_id uuid not null unique references city (id),
        name text not null check (length(btrim(name)) between 1 and 200),
        created_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table fee_plan (
        id uuid primary key,
        name text not null unique check (length(btrim(name)) between 1 and 200),
        basis_points integer not null check (basis_points between 0 and 10000),
        fixed_fee bigint not null check (fixed_fee >= 0),
        minimum_fee bigint not null check (minimum_fee >= 0),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        created_at timestamptz not null default now(),
        unique (id, currency)
      )`);
    // A merchant's or biller's currency is its city's, and its fee plan (when it has one) is in that
    // currency too: both are foreign keys over (id, currency), so no row can break the rule.
    // A city's and a fee plan's currency never change.
    this.addSql(`
      create table merchant (
        id uuid primary key,
        city_id uuid not null,
        currency char(3) not null,
        name text not null check (length(btrim(name)) between 1 and 200),
        fee_plan_id uuid,
        status text not null default 'ACTIVE' check (status in ('ACTIVE','SUSPENDED')),
        created_at timestamptz not null default now(),
        constraint merchant_city_fk foreign key (city_id, currency) references city (id, currency),
        constraint merchant_fee_plan_fk foreign key (fee_plan_id, currency) references fee_plan (id, currency),
        constraint merchant_city_name_key unique (city_id, name)
      )`);
    this.addSql(`create index merchant_name_idx on merchant (name, id)`);
    this.addSql(`create index merchant_fee_plan_idx on merchant (fee_plan_id)`);
    this.addSql(`
      create table biller (
        id uuid primary key,
        city_id uuid not null,
        currency char(3) not null,
        name text not null check (length(btrim(name)) between 1 and 200),
        kind text not null check (kind in ('WATER','GAS','HEATING','ELECTRICITY','TELECOM')),
        fee_plan_id uuid,
        status text not null default 'ACTIVE' check (status in ('ACTIVE','SUSPENDED')),
        created_at timestamptz not null default now(),
        constraint biller_city_fk foreign key (city_id, currency) references city (id, currency),
        constraint biller_fee_plan_fk foreign key (fee_plan_id, currency) references fee_plan (id, currency),
        constraint biller_city_name_key unique (city_id, name)
      )`);
    this.addSql(`create index biller_name_idx on biller (name, id)`);
    this.addSql(`create index biller_fee_plan_idx on biller (fee_plan_id)`);
  }
}
