/** The few building blocks every page uses: loading data, errors, keyset paging, a status badge. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { t } from './i18n.ts';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** Runs `load` when `deps` change (and on reload()); keeps the last data while the next loads. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  const reload = useCallback(() => setRound((n) => n + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** An error from the API (OneCardError: code and message) or anything else, as an alert. */
export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as { code?: string; message?: string };
  return (
    <p class="error" role="alert">
      {t('error')}: {e.message ?? String(error)}
      {e.code ? <code> {e.code}</code> : null}
    </p>
  );
}

export interface UserErrorView {
  code: string;
  message: string;
  field?: readonly string[] | null;
}

/** A mutation's userErrors: the business refusals, each with its code. */
export function UserErrors({ errors }: { errors: readonly UserErrorView[] | undefined }) {
  if (!errors?.length) return null;
  return (
    <ul class="error" role="alert">
      {errors.map((e) => (
        <li key={`${e.code}:${e.message}`}>
          {e.message} <code>{e.code}</code>
        </li>
      ))}
    </ul>
  );
}

/**
 * Keyset paging (the API's Relay cursors): the cursor of each page seen, so "first page" and
 * "next page" need no offsets. `after` is the cursor to ask with.
 */
export function usePager(resetKey: unknown) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  useEffect(() => setCursors([null]), [resetKey]);
  return {
    after: cursors[cursors.length - 1] ?? null,
    page: cursors.length,
    next: (endCursor: string | null | undefined) => endCursor && setCursors((c) => [...c, endCursor]),
    first: () => setCursors([null]),
  };
}

export function Pager({ pager, pageInfo }: { pager: ReturnType<typeof usePager>; pageInfo: { hasNextPage: boolean; endCursor?: string | null } | undefined }) {
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" onClick={pager.first} disabled={pager.page === 1}>
        {t('firstPage')}
      </button>
      <span>{pager.page}</span>
      <button type="button" onClick={() => pager.next(pageInfo?.endCursor)} disabled={!pageInfo?.hasNextPage}>
        {t('nextPage')}
      </button>
    </nav>
  );
}

export function Status({ value }: { value: string }) {
  return <span class={`status status-${value.toLowerCase()}`}>{value}</span>;
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}
