/**
 * The one shape of every list in the console: a table of columns, "Nothing here yet." when it is
 * empty, and for a connection of the API the keyset pager below it (cursors, never offsets).
 * A page says which columns it has; how a table looks and pages is decided here once.
 */
import type { ComponentChildren } from 'preact';
import { t } from './i18n.ts';
import { ErrorText, type Loaded, Pager, useLoad, usePager } from './ui.tsx';

export interface Column<T> {
  header: ComponentChildren;
  cell(row: T): ComponentChildren;
  /** Amounts and counts: right-aligned, tabular figures. */
  num?: boolean;
  /** The cell that names the row (`<th scope="row">`), for screen readers. */
  rowHeader?: boolean;
}

export interface TableProps<T> {
  id?: string;
  columns: Column<T>[];
  rows: readonly T[];
  rowKey(row: T): string;
  /** data-* attributes a row carries (tests and styles find rows by them). */
  rowAttrs?(row: T): Record<string, string>;
}

export function Table<T>({ id, columns, rows, rowKey, rowAttrs }: TableProps<T>) {
  if (rows.length === 0) return <p>{t('none')}</p>;
  return (
    <table id={id}>
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th key={i} scope="col" class={c.num ? 'num' : undefined}>
              {c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={rowKey(row)} {...rowAttrs?.(row)}>
            {columns.map((c, i) =>
              c.rowHeader ? (
                <th key={i} scope="row" class={c.num ? 'num' : undefined}>
                  {c.cell(row)}
                </th>
              ) : (
                <td key={i} class={c.num ? 'num' : undefined}>
                  {c.cell(row)}
                </td>
              ),
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A Relay connection as the API returns it. */
export interface Connection<T> {
  edges: readonly { node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

/**
 * One connection, a page at a time: `load(after)` asks the API for the page after that cursor.
 * The pager starts again at the first page when `resetKey` changes (a new filter); `deps` reload the
 * current page (after a change the page made).
 */
export function usePaged<C>(load: (after: string | null) => Promise<C>, resetKey: unknown, deps: unknown[] = []) {
  const pager = usePager(resetKey);
  const list = useLoad(() => load(pager.after), [pager.after, resetKey, ...deps]);
  return { pager, list };
}

/** The list's error, its rows (or "Nothing here yet.") and the pager. */
export function PagedTable<T>({ paged, connection, ...table }: Omit<TableProps<T>, 'rows'> & { paged: { pager: ReturnType<typeof usePager>; list: Loaded<unknown> }; connection: Connection<T> | null | undefined }) {
  return (
    <>
      <ErrorText error={paged.list.error} />
      {connection ? <Table {...table} rows={connection.edges.map((e) => e.node)} /> : null}
      <Pager pager={paged.pager} pageInfo={connection?.pageInfo} />
    </>
  );
}
