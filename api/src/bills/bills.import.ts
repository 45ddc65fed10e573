import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import { type BillDraft, type BillFields, checkBill } from './bill-input.js';
import { BillError, type BillErrorCode } from './bills.errors.js';
import { callingBiller, insertBills, lockBillerBills, takenReferences } from './bills.service.js';
import { CsvSyntaxError, CsvTooManyRecordsError, parseCsv } from './csv.js';

/**
 * Importing bills from a CSV file (docs/billers.md#csv-import), all or nothing: every row is
 * checked first, and one refused row means nothing is imported; the report lists each refusal by
 * its row (the file's line, the header being row 1). Either way the import is recorded
 * (`bill_import`) with its report. The bills go in with one set-based statement per 5,000 rows,
 * inside one transaction.
 */

export const MAX_CSV_ROWS = 50_000;
export const MAX_CSV_BYTES = 10 * 1024 * 1024;
/** Refusals listed in a report; the count of refused rows stays exact beyond it. */
export const MAX_REPORTED_REFUSALS = 1_000;

/** The columns, in the order the docs show them; the first five are required, the rest may be left out. */
export const CSV_COLUMNS = ['account_number', 'period', 'amount_due', 'due_date', 'biller_reference', 'allow_partial', 'late_fee_kind', 'late_fee_amount', 'late_fee_basis_points', 'late_fee_cap'] as const;
type Column = (typeof CSV_COLUMNS)[number];
const REQUIRED: readonly Column[] = ['account_number', 'period', 'amount_due', 'due_date', 'biller_reference'];

/** A bill field's column (the checks name GraphQL fields). */
const COLUMN_OF: Record<string, Column> = {
  accountNumber: 'account_number',
  period: 'period',
  amountDue: 'amount_due',
  dueDate: 'due_date',
  billerReference: 'biller_reference',
  allowPartial: 'allow_partial',
  'lateFee.kind': 'late_fee_kind',
  'lateFee.amount': 'late_fee_amount',
  'lateFee.basisPoints': 'late_fee_basis_points',
  'lateFee.cap': 'late_fee_cap',
};

export interface ImportRefusal {
  /** The file's line the row starts on (the header is row 1); 0 for the file as a whole. */
  row: number;
  /** The column at fault, or null for the whole row or file. */
  field: string | null;
  code: BillErrorCode;
  message: string;
}

export interface BillImportRow {
  id: string;
  biller_id: string;
  file_name: string;
  status: 'IMPORTED' | 'REFUSED';
  row_count: number;
  accepted: number;
  refused: number;
  report: { refusals: ImportRefusal[]; truncated: number };
  created_by_client: string;
  created_at: Date;
}

export interface ImportOutcome {
  import: BillImportRow;
  /** Why nothing was imported: the file (INVALID_CSV, CSV_TOO_LARGE) or its rows (BILL_IMPORT_REFUSED). */
  problem: { code: BillErrorCode; message: string } | null;
}

export const billImportGlobalId = (id: string) => toGlobalId('BillImport', id);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const TRUE = new Set(['true', 'yes', 'y', '1']);
const FALSE = new Set(['false', 'no', 'n', '0']);

/** A check's message in the file's words: `amountDue` → `amount_due`. */
function inColumns(message: string): string {
  return message.replace(/\b(accountNumber|period|amountDue|dueDate|billerReference|allowPartial)\b/g, (name) => COLUMN_OF[name]!);
}

/** The header's columns by position, or what is wrong with it. */
export function readHeader(fields: string[]): { columns: Column[]; problems: string[] } {
  const names = fields.map((f) => f.trim().toLowerCase());
  const problems: string[] = [];
  const unknown = names.filter((n) => !(CSV_COLUMNS as readonly string[]).includes(n));
  if (unknown.length) problems.push(`unknown columns: ${unknown.map((n) => JSON.stringify(n)).join(', ')} (the columns are ${CSV_COLUMNS.join(',')})`);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) problems.push(`columns given twice: ${[...new Set(twice)].join(', ')}`);
  const missing = REQUIRED.filter((c) => !names.includes(c));
  if (missing.length) problems.push(`missing columns: ${missing.join(', ')}`);
  return { columns: names as Column[], problems };
}

/** One data row as a bill's fields (values trimmed; an empty optional column is left out). */
export function rowFields(columns: Column[], values: string[]): { fields: BillFields; problems: { field: string; message: string }[] } {
  const v = (c: Column) => {
    const i = columns.indexOf(c);
    return i === -1 ? '' : values[i]!.trim();
  };
  const problems: { field: string; message: string }[] = [];
  let allowPartial: boolean | undefined;
  const partial = v('allow_partial').toLowerCase();
  if (TRUE.has(partial)) allowPartial = true;
  else if (FALSE.has(partial) || partial === '') allowPartial = partial === '' ? undefined : false;
  else problems.push({ field: 'allow_partial', message: 'allow_partial is true or false (or empty: false)' });
  const kind = v('late_fee_kind').toUpperCase();
  const fields: BillFields = {
    accountNumber: v('account_number'),
    period: v('period'),
    amountDue: v('amount_due'),
    dueDate: v('due_date'),
    billerReference: v('biller_reference'),
    allowPartial,
    lateFee: { kind: kind || 'NONE', amount: v('late_fee_amount') || null, basisPoints: v('late_fee_basis_points') || null, cap: v('late_fee_cap') || null },
  };
  return { fields, problems };
}

/** Reads and checks the file; every refusal of every row, and the drafts when there is none. */
export interface CheckedCsv {
  /** Data rows read (the header and blank lines not counted). */
  rowCount: number;
  drafts: { row: number; draft: BillDraft }[];
  /** Every row's biller reference, where it has one (to check against the biller's bills). */
  references: { row: number; ref: string }[];
  refusals: ImportRefusal[];
  fileProblem: { code: BillErrorCode; message: string } | null;
}

export function checkCsv(csv: string): CheckedCsv {
  const refuseFile = (code: BillErrorCode, message: string, row = 0, rowCount = 0): CheckedCsv => ({ rowCount, drafts: [], references: [], refusals: [{ row, field: null, code, message }], fileProblem: { code, message } });
  if (Buffer.byteLength(csv, 'utf8') > MAX_CSV_BYTES) return refuseFile('CSV_TOO_LARGE', `the file is larger than ${MAX_CSV_BYTES / 1024 / 1024} MB; split it`);
  let records;
  try {
    records = parseCsv(csv, MAX_CSV_ROWS + 1);
  } catch (err) {
    if (err instanceof CsvTooManyRecordsError) return refuseFile('CSV_TOO_LARGE', `the file has more than ${MAX_CSV_ROWS} rows; split it`);
    if (err instanceof CsvSyntaxError) return refuseFile('INVALID_CSV', err.message, err.line);
    throw err;
  }
  const [header, ...rows] = records;
  if (!header) return refuseFile('INVALID_CSV', 'the file is empty: a header and at least one row');
  const { columns, problems: headerProblems } = readHeader(header.fields);
  if (headerProblems.length) {
    return refuseFile('INVALID_CSV', `the header: ${headerProblems.join('; ')}`, header.line, rows.length);
  }
  if (!rows.length) return refuseFile('INVALID_CSV', 'the file has a header and no rows', header.line);

  const refusals: ImportRefusal[] = [];
  const drafts: { row: number; draft: BillDraft }[] = [];
  const references: { row: number; ref: string }[] = [];
  const firstRow = new Map<string, number>();
  for (const record of rows) {
    const row = record.line;
    if (record.fields.length !== columns.length) {
      refusals.push({ row, field: null, code: 'INVALID_INPUT', message: `${record.fields.length} values where the header has ${columns.length} columns` });
      continue;
    }
    const { fields, problems } = rowFields(columns, record.fields);
    const checked = checkBill(fields);
    for (const p of [...problems, ...checked.problems]) refusals.push({ row, field: COLUMN_OF[p.field] ?? p.field, code: 'INVALID_INPUT', message: inColumns(p.message) });
    const ref = typeof fields.billerReference === 'string' ? fields.billerReference : '';
    if (ref) {
      references.push({ row, ref });
      const first = firstRow.get(ref);
      if (first === undefined) firstRow.set(ref, row);
      else refusals.push({ row, field: 'biller_reference', code: 'DUPLICATE_BILLER_REFERENCE', message: `biller_reference ${ref} is also on row ${first}` });
    }
    if (checked.draft && !problems.length) drafts.push({ row, draft: checked.draft });
  }
  return { rowCount: rows.length, drafts, references, refusals, fileProblem: null };
}

async function recordImport(
  em: EntityManager,
  values: { billerId: string; fileName: string; status: 'IMPORTED' | 'REFUSED'; rowCount: number; accepted: number; refused: number; refusals: ImportRefusal[]; clientId: string },
): Promise<BillImportRow> {
  const listed = values.refusals.slice(0, MAX_REPORTED_REFUSALS);
  const report = { refusals: listed, truncated: values.refusals.length - listed.length };
  const [row] = await em.execute<BillImportRow[]>(
    `insert into bill_import (id, biller_id, file_name, status, row_count, accepted, refused, report, created_by_client) values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?) returning *`,
    [randomUUID(), values.billerId, values.fileName, values.status, values.rowCount, values.accepted, values.refused, JSON.stringify(report), values.clientId],
  );
  return row!;
}

/**
 * Imports a biller's CSV file (see the top of this file). Refusals of the file or its rows are the
 * outcome's `problem` and the import's report, not exceptions; a caller that is not an ACTIVE
 * biller, or a file name out of bounds, is a BillError (and nothing is recorded).
 */
export async function importBillsCsv(em: EntityManager, principal: Principal, input: { fileName: string; csv: string }): Promise<ImportOutcome> {
  const biller = await callingBiller(em, principal);
  const fileName = input.fileName.trim();
  if (!fileName || [...fileName].length > 255) throw new BillError('INVALID_INPUT', 'a file name is 1 to 255 characters', 'fileName');
  const checked = checkCsv(input.csv);
  return em.transactional(async (tx) => {
    const record = (status: 'IMPORTED' | 'REFUSED', refusals: ImportRefusal[]) =>
      recordImport(tx, {
        billerId: biller.id,
        fileName,
        status,
        rowCount: checked.rowCount,
        accepted: status === 'IMPORTED' ? checked.drafts.length : 0,
        refused: checked.fileProblem ? checked.rowCount : new Set(refusals.map((r) => r.row)).size,
        refusals,
        clientId: principal.clientId,
      });
    if (checked.fileProblem) return { import: await record('REFUSED', checked.refusals), problem: checked.fileProblem };

    await lockBillerBills(tx, biller.id);
    const refusals = [...checked.refusals];
    const taken = await takenReferences(tx, biller.id, [...new Set(checked.references.map((r) => r.ref))]);
    for (const { row, ref } of checked.references) {
      if (taken.has(ref)) refusals.push({ row, field: 'biller_reference', code: 'DUPLICATE_BILLER_REFERENCE', message: `you already have a bill with biller_reference ${ref}` });
    }
    if (refusals.length) {
      refusals.sort((a, b) => a.row - b.row);
      const imported = await record('REFUSED', refusals);
      return { import: imported, problem: { code: 'BILL_IMPORT_REFUSED', message: `${imported.refused} of ${checked.rowCount} rows refused; nothing was imported (the import's refusals list why)` } };
    }
    await insertBills(
      tx,
      biller,
      checked.drafts.map((d) => d.draft),
      'PUBLISHED',
    );
    return { import: await record('IMPORTED', []), problem: null };
  });
}

/** One of the biller's imports (the operator: any, with bills:read); another biller's answers as missing. */
export async function findBillImportFor(em: EntityManager, principal: Principal, id: string): Promise<BillImportRow | null> {
  if (!UUID.test(id)) return null;
  const s = principal.scopes;
  if (principal.kind === 'BILLER' && principal.tenantId && UUID.test(principal.tenantId) && (s.includes('bills:read') || s.includes('bills:write'))) {
    const [row] = await em.execute<BillImportRow[]>(`select * from bill_import where id = ? and biller_id = ?`, [id, principal.tenantId]);
    return row ?? null;
  }
  if (principal.kind === 'OPERATOR' && s.includes('bills:read')) {
    const [row] = await em.execute<BillImportRow[]>(`select * from bill_import where id = ?`, [id]);
    return row ?? null;
  }
  return null;
}
