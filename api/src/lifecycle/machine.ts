import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Lifecycles as data, moved by one helper (STYLE.md §2, after Vendure's `FSM`): each context declares
 * its machine (the states, where each may go, where rows start) in its own folder; `transition()`
 * checks the table, updates the row, writes its history row and runs what the machine does on
 * entering a state (an outbox event) — all in the caller's transaction (or, asked outside one, in
 * one of its own). Set-based moves (`transitionWhere()`) check the same table. No code writes a
 * status column by hand (api/test/lifecycles.test.ts).
 */

export type Transitions<S extends string> = Readonly<Record<S, readonly S[]>>;

/** One move of one row, as its history records it. */
export interface Move<S extends string> {
  machine: string;
  id: string;
  from: S;
  to: S;
  /** What moved it (an operation, a job, a gateway event, an OAuth client): free text for the trail. */
  cause: string | null;
  /** Why, in a person's words (a card's loss report), where the caller has one. */
  reason?: string | null;
}

export interface Machine<S extends string, R extends object = Record<string, unknown>> {
  /** Recorded in status_history.machine (by convention, the table's name). */
  name: string;
  table: string;
  /** The row's key column: `id` unless the table says otherwise (`serial`, `kid`). */
  key?: string;
  /** The status column: `status`, or `state` for card sessions. */
  column?: 'status' | 'state';
  /** The states a row is created in. */
  initial: readonly S[];
  transitions: Transitions<S>;
  /**
   * The context's own refusal of a move the table does not allow (or of a row that moved meanwhile);
   * by default an IllegalTransition, for moves no user asks for (a bug if it happens).
   */
  refuse?(from: S, to: S): Error;
  /** The row as the context's callers read it after a move (joins, casts); default `select *`. */
  reload?(em: EntityManager, id: string): Promise<R>;
  /**
   * The same row selected in the move's own statement, from the moved row (`moved` aliased as
   * `from` begins: `p join merchant m on …`), so that `transition` reads nothing back; `reload`
   * then serves `transitionWhere` only. For machines that record to status_history.
   */
  view?: { columns: string; from: string };
  /** Where a move is recorded: status_history unless the context keeps a history of its own. */
  history?(em: EntityManager, move: Move<S>): Promise<void>;
  /** What entering a state does beside the update, in the same transaction (an outbox event). */
  onEnter?: Partial<Record<S, (em: EntityManager, row: R, move: Move<S>) => Promise<void>>>;
}

/** What the table-reading helpers need of a machine. */
export type StateTable<S extends string> = Pick<Machine<S>, 'name' | 'column' | 'initial' | 'transitions'>;

/** A move the table does not allow, where the context has no refusal of its own to give. */
export class IllegalTransition extends Error {
  constructor(machine: string, from: string, to: string) {
    super(`${machine}: no move from ${from} to ${to}`);
    this.name = 'IllegalTransition';
  }
}

/** The machine's refusal of a move. */
export const refusal = <S extends string>(machine: Pick<Machine<S>, 'name' | 'refuse'>, from: S, to: S): Error => machine.refuse?.(from, to) ?? new IllegalTransition(machine.name, from, to);

/** Refuses (with the machine's refusal) a move its table does not allow, before the caller does anything else. */
export function assertMove<S extends string>(machine: Pick<Machine<S>, 'name' | 'refuse' | 'transitions'>, from: S, to: S): void {
  if (!canMove(machine, from, to)) throw refusal(machine, from, to);
}

/** A machine as data; checks at declaration that every state it names is one of its states. */
export function defineMachine<S extends string, R extends object = Record<string, unknown>>(machine: Machine<S, R>): Machine<S, R> {
  const states = Object.keys(machine.transitions);
  for (const s of [...machine.initial, ...Object.values<readonly S[]>(machine.transitions).flat()]) {
    if (!states.includes(s)) throw new Error(`machine ${machine.name}: ${s} is not one of its states`);
  }
  return machine;
}

/** A piece of SQL for a column's new value, e.g. `sql('coalesce(?, failure_code)', code)`. */
export class SqlValue {
  constructor(
    readonly text: string,
    readonly params: unknown[],
  ) {}
}
export const sql = (text: string, ...params: unknown[]) => new SqlValue(text, params);
export const NOW = sql('now()');

/** Columns written beside the status: a value (bound) or a `sql()` expression. */
export type Patch = Record<string, unknown>;

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function assignments(machine: StateTable<string>, patch: Patch): { text: string; params: unknown[] } {
  const column = machine.column ?? 'status';
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const [name, value] of Object.entries(patch)) {
    if (!IDENTIFIER.test(name) || name === column) throw new Error(`machine ${machine.name}: cannot patch column ${name}`);
    if (value instanceof SqlValue) {
      parts.push(`${name} = ${value.text}`);
      params.push(...value.params);
    } else {
      parts.push(`${name} = ?`);
      params.push(value);
    }
  }
  return { text: parts.map((p) => `, ${p}`).join(''), params };
}

/** Whether the table lets a row go from one state to another. */
export const canMove = <S extends string>(machine: Pick<Machine<S>, 'transitions'>, from: S, to: S): boolean => machine.transitions[from]?.includes(to) ?? false;

/** The states a row may enter `to` from: the `from` set of a set-based move. */
export function allowedFrom<S extends string>(machine: StateTable<S>, to: S): S[] {
  return (Object.keys(machine.transitions) as S[]).filter((from) => machine.transitions[from].includes(to));
}

/** `'A','B'` for an SQL `in (…)` of states the machine declares (never a value from outside). */
export function statesSql<S extends string>(machine: StateTable<S>, states: readonly S[]): string {
  for (const s of states) if (!(s in machine.transitions)) throw new Error(`machine ${machine.name}: ${s} is not one of its states`);
  return states.map((s) => `'${s}'`).join(',');
}

/** States no row leaves. */
export const finalStates = <S extends string>(machine: StateTable<S>): S[] => (Object.keys(machine.transitions) as S[]).filter((s) => machine.transitions[s].length === 0);

/** States the table cannot reach from its initial states (a test keeps this empty for every machine). */
export function unreachableStates<S extends string>(machine: StateTable<S>): S[] {
  const seen = new Set<S>(machine.initial);
  const queue = [...machine.initial];
  while (queue.length) for (const next of machine.transitions[queue.shift()!]) if (!seen.has(next)) (seen.add(next), queue.push(next));
  return (Object.keys(machine.transitions) as S[]).filter((s) => !seen.has(s));
}

/** Runs a move in the caller's transaction, or in one of its own: the status, its history and onEnter are written together or not at all. */
const whole = <T>(em: EntityManager, run: (tx: EntityManager) => Promise<T>): Promise<T> => (em.isInTransaction() ? run(em) : em.transactional(run));

async function recordHistory<S extends string>(em: EntityManager, machine: Pick<Machine<S>, 'history'>, moves: Move<S>[]): Promise<void> {
  if (!moves.length) return;
  if (machine.history) {
    for (const move of moves) await machine.history(em, move);
    return;
  }
  for (let i = 0; i < moves.length; i += 2000) {
    const chunk = moves.slice(i, i + 2000);
    await em.execute(
      `insert into status_history (machine, row_id, from_status, to_status, cause) values ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flatMap((m) => [m.machine, m.id, m.from, m.to, m.cause]),
    );
  }
}

const BESIDES_COLUMN = '__besides';

/**
 * Moves one row (locked by the caller's transaction) to `to`: refuses a move the table does not
 * allow with the machine's own error, writes the status and the patch only if the row is still in
 * the state the caller read (else the same refusal), records the move and runs the machine's
 * `onEnter` for `to`. Returns the row as `reload` reads it.
 */
export async function transition<S extends string, R extends object>(
  em: EntityManager,
  machine: Machine<S, R>,
  row: { id?: string } & ({ status: S } | { state: S }),
  to: S,
  patch: Patch = {},
  opts: {
    cause?: string | null;
    reason?: string | null;
    /**
     * A data-modifying statement of the caller's run in the move's own statement (as a CTE): a row's
     * own record of the move (a card session's audit row), without a second round trip. It runs
     * even when the move is then refused, so it belongs in a transaction the refusal rolls back.
     */
    alongside?: SqlValue;
    /**
     * A second such statement whose first row (or undefined) is handed to `returned` before the
     * move is checked: a request's cost charge (graphql/cost-throttle.ts) in the move that is its
     * transaction's last write. It runs even when the move is then refused, as `alongside` does.
     */
    besides?: { statement: SqlValue; returned: (row: { [column: string]: unknown } | undefined) => void };
  } = {},
): Promise<R> {
  const column = machine.column ?? 'status';
  const key = machine.key ?? 'id';
  const from = (row as Record<string, unknown>)[column] as S;
  const id = String((row as Record<string, unknown>)[key]);
  if (!canMove(machine, from, to)) throw refusal(machine, from, to);
  const set = assignments(machine, patch);
  const move: Move<S> = { machine: machine.name, id, from, to, cause: opts.cause ?? null, reason: opts.reason ?? null };
  return whole(em, async (tx) => {
    const update = { text: `update ${machine.table} set ${column} = ?${set.text} where ${key} = ? and ${column} = ? returning *`, params: [to, ...set.params, id, from] };
    const ctes = opts.alongside ? [`alongside as (${opts.alongside.text})`] : [];
    const params: unknown[] = [...(opts.alongside?.params ?? [])];
    if (opts.besides) {
      ctes.push(`besides as (${opts.besides.statement.text})`);
      params.push(...opts.besides.statement.params);
    }
    // The besides row comes back as one more column of the moved row (taken off below).
    const besides = opts.besides ? `, (select to_jsonb(b) from besides b limit 1) as ${BESIDES_COLUMN}` : '';
    let statement: string;
    if (machine.history) {
      statement = `${ctes.length ? `with ${ctes.join(', ')} ` : ''}${update.text}${besides}`;
      params.push(...update.params);
    } else {
      // status_history's row in the move's own statement, written only if the row moved: one round trip.
      ctes.push(`moved as (${update.text})`, `recorded as (insert into status_history (machine, row_id, from_status, to_status, cause) select ?::text, ?::text, ?::text, ?::text, ?::text from moved)`);
      const view = machine.view ?? { columns: '*', from: '' };
      statement = `with ${ctes.join(', ')} select ${view.columns}${besides} from moved ${view.from}`;
      params.push(...update.params, move.machine, move.id, move.from, move.to, move.cause);
    }
    const updated = await tx.execute<Array<{ [column: string]: unknown }>>(statement, params);
    if (opts.besides) {
      opts.besides.returned(updated[0]?.[BESIDES_COLUMN] as { [column: string]: unknown } | undefined);
      for (const row of updated) delete row[BESIDES_COLUMN];
    }
    if (!updated.length) throw refusal(machine, from, to);
    if (machine.history) await recordHistory(tx, machine, [move]);
    const moved = machine.reload && !(machine.view && !machine.history) ? await machine.reload(tx, id) : (updated[0] as R);
    await machine.onEnter?.[to]?.(tx, moved, move);
    return moved;
  });
}

/**
 * A set-based move: every row of `machine.table` (aliased `t`, or `alias`) in one of `from` that matches
 * `where` becomes `to`, with `patch`. Each `from` must be allowed by the table (a programming error
 * otherwise, thrown before anything is written); one statement per `from` state, so each history row
 * knows where its row came from, and each row moves at most once. `using` adds a `from` list to the
 * update (`city c`, or `sql()` with parameters). Returns the moved rows (`returning t.*`), in no
 * particular order.
 */
export async function transitionWhere<S extends string, R extends object>(
  em: EntityManager,
  machine: Machine<S, R>,
  move: { from: readonly S[]; to: S; where: string; params?: unknown[]; patch?: Patch; using?: string | SqlValue; alias?: string; cause?: string | null },
): Promise<Array<Record<string, unknown>>> {
  const column = machine.column ?? 'status';
  const key = machine.key ?? 'id';
  for (const from of move.from) if (!canMove(machine, from, move.to)) throw new IllegalTransition(machine.name, from, move.to);
  const set = assignments(machine, move.patch ?? {});
  const moved: Array<Record<string, unknown>> = [];
  const t = move.alias ?? 't';
  if (!IDENTIFIER.test(t)) throw new Error(`machine ${machine.name}: bad alias ${t}`);
  const using = typeof move.using === 'string' ? sql(move.using) : move.using;
  // Each row moves once: a state named twice runs once, and a move that keeps the state (`to` among
  // `from`, e.g. PROCESSING → PROCESSING) runs first, so rows just moved into `to` are not moved again.
  const froms = [...new Set(move.from)].sort((a, b) => Number(b === move.to) - Number(a === move.to));
  return whole(em, async (tx) => {
    for (const from of froms) {
      const update = {
        text: `update ${machine.table} ${t} set ${column} = ?${set.text}${using ? ` from ${using.text}` : ''} where ${t}.${column} = ? and (${move.where}) returning ${t}.*`,
        params: [move.to, ...set.params, ...(using?.params ?? []), from, ...(move.params ?? [])],
      };
      // status_history's rows in the move's own statement (one per row moved), unless the machine keeps its own.
      const rows = machine.history
        ? await tx.execute<Array<Record<string, unknown>>>(update.text, update.params)
        : await tx.execute<Array<Record<string, unknown>>>(
            `with moved as (${update.text}), recorded as (insert into status_history (machine, row_id, from_status, to_status, cause) select ?::text, moved.${key}::text, ?::text, ?::text, ?::text from moved) select * from moved`,
            [...update.params, machine.name, from, move.to, move.cause ?? null],
          );
      const moves = rows.map((r) => ({ machine: machine.name, id: String(r[key]), from, to: move.to, cause: move.cause ?? null }));
      if (machine.history) await recordHistory(tx, machine, moves);
      if (machine.onEnter?.[move.to]) for (const [i, r] of rows.entries()) await machine.onEnter[move.to]!(tx, machine.reload ? await machine.reload(tx, moves[i]!.id) : (r as unknown as R), moves[i]!);
      moved.push(...rows);
    }
    return moved;
  });
}

/** `transition()` for a row known by its id: locks it (in the caller's transaction) and reads its state first. */
export async function transitionById<S extends string, R extends object>(
  em: EntityManager,
  machine: Machine<S, R>,
  id: string,
  to: S,
  patch: Patch = {},
  opts: { cause?: string | null; reason?: string | null } = {},
): Promise<R> {
  const column = machine.column ?? 'status';
  const key = machine.key ?? 'id';
  const [row] = await em.execute<Array<{ state: S }>>(`select ${column} as state from ${machine.table} where ${key} = ? for update`, [id]);
  if (!row) throw new Error(`${machine.name} ${id} does not exist`);
  return transition(em, machine, { [key]: id, [column]: row.state } as unknown as { status: S }, to, patch, opts);
}
