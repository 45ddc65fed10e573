import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { signingKeyMachine } from '../src/auth/keys.js';
import { billPaymentMachine } from '../src/bills/bill-payments.service.js';
import { billMachine } from '../src/bills/bills.service.js';
import { cardMachine } from '../src/cards/cards.service.js';
import { defineMachine, type StateTable, unreachableStates } from '../src/lifecycle/machine.js';
import { paymentMachine } from '../src/payments/payments.service.js';
import { certificateMachine } from '../src/pki/pki.service.js';
import { readerMachine } from '../src/readers/readers.service.js';
import { sessionMachine } from '../src/readers/session/session-machine.js';
import { batchMachine, differenceMachine, lineMachine, payoutMachine, windowMachine } from '../src/settlement/settlement-machines.js';
import { topUpMachine } from '../src/topups/top-up-moves.js';
import { deliveryMachine } from '../src/webhooks/delivery-machine.js';

/**
 * Every lifecycle is a table moved by one helper (lifecycle/machine.ts, docs/architecture.md
 * "Lifecycles"): each table reaches all its states, every status column has one, and no code under
 * api/src writes a status column by hand.
 */

const SRC = path.resolve(__dirname, '../src');

const MACHINES: StateTable<string>[] = [
  paymentMachine,
  billMachine,
  billPaymentMachine,
  topUpMachine,
  cardMachine,
  readerMachine,
  sessionMachine,
  windowMachine,
  batchMachine,
  lineMachine,
  payoutMachine,
  differenceMachine,
  deliveryMachine,
  certificateMachine,
  signingKeyMachine,
] as StateTable<string>[];

/** Tables with a status column and no machine, each for a reason. None may be added without one. */
const NO_MACHINE: Record<string, string> = {
  merchant: 'ACTIVE or SUSPENDED as created (tenancy); no code moves it',
  biller: 'ACTIVE or SUSPENDED as created (tenancy); no code moves it',
  bill_import: 'IMPORTED or REFUSED as recorded, once; never moves',
  idempotency_record: 'a claim of an idempotency key (IN_FLIGHT, DONE), the request layer’s lock, not a business lifecycle',
};

/**
 * Files that write a `status`/`state` that is not a lifecycle row's, or that may, each for a reason.
 * The helper itself and migrations are not read at all.
 */
const WRITERS_ALLOWED: Record<string, string> = {
  'auth/token-throttle.ts': 'Koa’s ctx.status: an HTTP status',
  'topups/gateway/sandbox-state.ts': 'the sandbox gateway’s own intents, refunds and payouts (the fake gateway, not OneCard rows)',
  'topups/gateway/gateway-client.ts': 'the HTTP status carried by a GatewayError',
  'graphql/idempotency.ts': 'idempotency_record.state, the request layer’s lock (NO_MACHINE)',
  'bench/payments.bench.ts': 'the benchmark drives the payment rows straight in SQL to measure the raw path (owned by the bench harness)',
};

/** Places in one source file where a status column is written by hand; empty when there are none. */
export function handWrittenStatus(source: string): string[] {
  const found: string[] = [];
  const lineOf = (index: number) => source.slice(0, index).split('\n').length;
  // SQL: update <table> [alias] set … status = … (up to where/from/returning or the end of the string).
  for (const m of source.matchAll(/\bupdate\s+\w+(?:\s+(?!set\b)\w+)?\s+set\s+([\s\S]*?)(?=\bwhere\b|\bfrom\b|\breturning\b|[`'"])/gi)) {
    if (/(?:^|[\s,(])(?:\w+\.)?(?:status|state)\s*=/i.test(m[1]!)) found.push(`line ${lineOf(m.index!)}: ${m[0].replace(/\s+/g, ' ').slice(0, 80)}`);
  }
  // SQL: an upsert's do update set … status = ….
  for (const m of source.matchAll(/\bdo\s+update\s+set\s+([\s\S]*?)(?=\bwhere\b|[`'"])/gi)) {
    if (/(?:^|[\s,(])(?:status|state)\s*=/i.test(m[1]!)) found.push(`line ${lineOf(m.index!)}: ${m[0].replace(/\s+/g, ' ').slice(0, 80)}`);
  }
  // MikroORM: row.status = …, and nativeUpdate(…, { status: … }).
  // (A statement of its own, so that an SQL alias in a where clause, `p.status = 'OPEN'`, is not one.)
  // An HTTP response's status (`response.http.status = 401`) is not a lifecycle.
  for (const m of source.matchAll(/^[ \t]*(?:[\w$]+\.)+(?<!\bhttp\.)(?:status|state)\s*=(?![=>])[^\n]*;[ \t]*$/gm)) found.push(`line ${lineOf(m.index!)}: ${m[0].trim().slice(0, 80)}`);
  for (const m of source.matchAll(/nativeUpdate\([^;]*?\b(?:status|state)\s*:/g)) found.push(`line ${lineOf(m.index!)}: ${m[0].slice(0, 80)}`);
  return found;
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return ['lifecycle', 'migrations'].includes(e.name) ? [] : sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Tables created with a `status` or `state` column, by reading the migrations. */
function tablesWithStatus(): string[] {
  const dir = path.join(SRC, 'db/migrations');
  const tables = new Set<string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.startsWith('Migration'))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const blocks = text.split(/create table /i).slice(1);
    for (const block of blocks) {
      // A name made at run time (`format('create table %I partition of …')`) is a partition: no columns of its own.
      const named = /^(\w+)/.exec(block);
      if (!named) continue;
      const name = named[1]!;
      const body = block.split(/`\)/)[0]!;
      if (/^\s*(?:status|state)\s+text\b/im.test(body)) tables.add(name);
    }
  }
  return [...tables].sort();
}

describe('lifecycles: one table per status column, moved only by the helper', () => {
  it('every state of every table is reachable from where its rows start', () => {
    for (const machine of MACHINES) expect({ machine: machine.name, unreachable: unreachableStates(machine) }).toEqual({ machine: machine.name, unreachable: [] });
  });

  it('the reachability check finds a state no move leads to', () => {
    const broken = defineMachine<'A' | 'B' | 'C'>({ name: 'broken', table: 'none', initial: ['A'], transitions: { A: ['B'], B: [], C: ['A'] } });
    expect(unreachableStates(broken)).toEqual(['C']);
  });

  it('a table naming a state it does not have is refused where it is declared', () => {
    expect(() => defineMachine<'A' | 'B'>({ name: 'typo', table: 'none', initial: ['A'], transitions: { A: ['C' as 'B'], B: [] } })).toThrow(/C is not one of its states/);
  });

  it('every table with a status column has a machine (or a reason not to)', () => {
    const found = tablesWithStatus();
    expect(found.length).toBeGreaterThan(15);
    const covered = new Set([...MACHINES.map((m) => (m as { table?: string }).table!), ...Object.keys(NO_MACHINE)]);
    expect(found.filter((t) => !covered.has(t))).toEqual([]);
  });

  it('the hand-write detector sees each way of writing a status', () => {
    expect(handWrittenStatus("await em.execute(`update payment set status = 'PROCESSING', card_claim = ? where id = ?`, [c, id]);")).toHaveLength(1);
    expect(handWrittenStatus('`update settlement_window w\n   set closed_at = now(), status = ? from city c where c.id = w.city_id`')).toHaveLength(1);
    expect(handWrittenStatus("`insert into d (id, status) values (?, 'OPEN') on conflict (id) do update set note = excluded.note, status = 'OPEN' where d.id = ?`")).toHaveLength(1);
    expect(handWrittenStatus("`update card_session set state = 'FAILED' where id = ?`")).toHaveLength(1);
    expect(handWrittenStatus("payment.status = 'SUCCEEDED';")).toHaveLength(1);
    expect(handWrittenStatus("await em.nativeUpdate(Payment, { id }, { status: 'FAILED' });")).toHaveLength(1);
    // Reads, and columns that only share the word, are not writes.
    expect(handWrittenStatus("`update webhook_delivery set last_status_code = ?, attempts = attempts + 1 where status = 'PENDING'`")).toEqual([]);
    expect(handWrittenStatus("`update reader set status_changed_at = now() where id = ?`")).toEqual([]);
    expect(handWrittenStatus("if (payment.status === 'SUCCEEDED') return;")).toEqual([]);
    expect(handWrittenStatus('response.http.status = 401;')).toEqual([]);
  });

  it('no code under api/src writes a status column by hand: only lifecycle/machine.ts does', () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(150);
    const writes = files.flatMap((file) => {
      const relative = path.relative(SRC, file);
      if (WRITERS_ALLOWED[relative]) return [];
      return handWrittenStatus(fs.readFileSync(file, 'utf8')).map((w) => `${relative} ${w}`);
    });
    expect(writes).toEqual([]);
  });
});
