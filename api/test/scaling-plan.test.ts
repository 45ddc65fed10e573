/**
 * docs/scaling.md places every table of the schema for the distributed engine (Citus, by city).
 * A migration that adds a table fails here until the table is placed there; a table placed as
 * distributed must carry its distribution column, unless it is one of the tables whose column is
 * still to add (that list may only shrink).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/database.js';

const PLAN = path.resolve(import.meta.dirname, '..', '..', 'docs', 'scaling.md');

/** Distributed tables whose `city_id` is not in the schema yet (docs/scaling.md, "Not done yet"). */
const KEY_STILL_TO_ADD = new Set([
  'bill', 'bill_account_binding', 'bill_import', 'bill_lookup', 'bill_payment', 'card', 'card_auto_top_up', 'card_balance_discrepancy', 'card_balance_transfer',
  'card_blacklist', 'card_counter', 'card_load_proof', 'card_m1_write', 'card_master_key', 'card_purchase_proof', 'card_session', 'card_session_audit',
  'card_status_history', 'event_outbox', 'interchange_position', 'issued_certificate', 'journal_entry', 'ledger_account', 'offline_batch', 'offline_transaction',
  'payment', 'payment_refund', 'posting', 'reader_terminal_serial', 'reconciliation_difference', 'reconciliation_run', 'settlement_batch', 'settlement_line',
  'settlement_payout', 'status_history', 'top_up', 'top_up_history', 'webhook_attempt', 'webhook_delivery', 'webhook_endpoint',
  // Tables of issues 24 and 25 that landed beside the plan (terminal kit, transit wallets and QR rides).
  'psam_provisioning', 'qr_blocklist', 'qr_credential', 'qr_ride', 'qr_ride_batch', 'qr_scanner', 'terminal_location', 'transit_wallet',
  // The ledger's key table and carry-forward (issue 23, item 3), which take their city with journal_entry and ledger_account.
  'journal_entry_key', 'ledger_opening',
]);

interface Placement {
  table: string;
  placement: string;
  key: string;
  present: string;
}

/** The rows of the plan's table: | `table` | placement | key | present | … |. */
function placements(): Placement[] {
  return fs
    .readFileSync(PLAN, 'utf8')
    .split('\n')
    .map((line) => /^\| `([a-z0-9_]+)` \| (\w+) \| (`[a-z_]+`|–) \| ([\w –]+?) \|/.exec(line))
    .filter((m) => m !== null)
    .map((m) => ({ table: m[1]!, placement: m[2]!, key: m[3]!.replaceAll('`', ''), present: m[4]! }));
}

let db: TestDatabase;
let columns: Map<string, Set<string>>;

beforeAll(async () => {
  db = await freshDatabase();
  const rows = await db.orm.em.fork().execute<{ table_name: string; column_name: string }[]>(
    `select c.table_name, c.column_name from information_schema.columns c join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'
        -- a partition (clearing_item_y2026m11) is part of its table, placed with it
        and not exists (select 1 from pg_class p join pg_namespace ns on ns.oid = p.relnamespace where ns.nspname = c.table_schema and p.relname = c.table_name and p.relispartition)`,
  );
  columns = new Map();
  for (const r of rows) columns.set(r.table_name, (columns.get(r.table_name) ?? new Set()).add(r.column_name));
});
afterAll(() => db.close());

describe('docs/scaling.md places every table', () => {
  it('lists each table of the schema once, and no table the schema does not have', () => {
    const listed = placements().map((p) => p.table);
    expect(new Set(listed).size).toBe(listed.length);
    expect([...listed].sort()).toEqual([...columns.keys()].sort());
  });

  it('places each as distributed (by a key), reference or local', () => {
    for (const p of placements()) {
      expect(['distributed', 'reference', 'local'], p.table).toContain(p.placement);
      if (p.placement === 'distributed') expect(p.key, p.table).toBe('city_id');
      else expect(p.key, p.table).toBe('–');
    }
  });

  it('a distributed table carries its key, unless it is one of those whose key is still to add', () => {
    for (const p of placements().filter((x) => x.placement === 'distributed')) {
      const has = columns.get(p.table)!.has(p.key);
      if (KEY_STILL_TO_ADD.has(p.table)) {
        // Once the column is there, the plan says so and the table leaves the list.
        expect(has, `${p.table} has ${p.key} now: mark it present and take it off KEY_STILL_TO_ADD`).toBe(false);
        expect(p.present, p.table).toBe('to add');
      } else {
        expect(has, `${p.table} is distributed by ${p.key} but has no such column`).toBe(true);
        expect(p.present, p.table).toBe('yes');
      }
    }
  });
});
