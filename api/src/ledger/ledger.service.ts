import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { executeBound } from '../db/bound-statement.js';
import { LedgerError, LedgerErrorCode as Code } from './ledger.errors.js';
import { AccountOwnerKind, AccountType, isDebitNormal, LedgerAccount } from './ledger-account.entity.js';
import { inTransaction } from '../db/in-transaction.js';

/** One line of an entry: positive amounts debit the account, negative amounts credit it. */
export interface PostingLine {
  account: string;
  amount: bigint;
}

export const debit = (account: string, amount: bigint): PostingLine => ({ account, amount });
export const credit = (account: string, amount: bigint): PostingLine => ({ account, amount: -amount });

export interface EntryInput {
  /** Idempotency: posting the same key again returns the first entry and moves nothing. */
  key: string;
  description: string;
  lines: PostingLine[];
  metadata?: Record<string, unknown>;
}

export interface PostedLine {
  account: string;
  amount: bigint;
  currency: string;
  balanceAfter: bigint;
}

export interface PostedEntry {
  id: string;
  key: string;
  description: string;
  postedAt: Date;
  reversesId: string | null;
  lines: PostedLine[];
  /** True when the key had been posted before and this call moved nothing. */
  replayed: boolean;
}

export interface OpenAccountInput {
  code: string;
  type: AccountType;
  ownerKind: AccountOwnerKind;
  ownerId?: string | null;
  currency: string;
  nonNegative?: boolean;
}

// Far beyond any real amount, and small enough that sums of many lines stay inside BIGINT.
const MAX_LINE_AMOUNT = 10n ** 15n;
const MAX_KEY_LENGTH = 200;
// PostgreSQL's bigint: a balance beyond it is refused as an overflow.
const MAX_BALANCE = 2n ** 63n - 1n;
const CHECK_VIOLATION = '23514';
const UNIQUE_VIOLATION = '23505';
const NUMERIC_OUT_OF_RANGE = '22003';

interface AccountRow {
  id: string;
  currency: string;
  type: AccountType;
}

function sqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; sqlState?: unknown; cause?: { code?: unknown } };
  for (const candidate of [e?.code, e?.sqlState, e?.cause?.code]) if (typeof candidate === 'string' && /^[0-9A-Z]{5}$/.test(candidate)) return candidate;
  return undefined;
}

/** Refuses an account code already taken by an account with other terms. */
function checkSameTerms(account: Pick<AccountRef, 'type' | 'ownerKind' | 'currency' | 'nonNegative'> & { ownerId?: string | null }, input: OpenAccountInput): void {
  const sameTerms =
    account.type === input.type &&
    account.ownerKind === input.ownerKind &&
    (account.ownerId ?? null) === (input.ownerId ?? null) &&
    account.currency === input.currency &&
    account.nonNegative === (input.nonNegative ?? false);
  if (!sameTerms) throw new LedgerError(Code.INVALID_ACCOUNT, `account code "${input.code}" is taken by an account with other terms`);
}

function checkCurrency(input: OpenAccountInput): void {
  if (!/^[A-Z]{3}$/.test(input.currency)) throw new LedgerError(Code.INVALID_ACCOUNT, `"${input.currency}" is not an ISO 4217 currency code`);
}

/** Opens an account, or returns the existing one with the same code and the same terms (so seeds can run again). */
export async function openAccount(em: EntityManager, input: OpenAccountInput): Promise<LedgerAccount> {
  checkCurrency(input);
  // An account is opened once and looked up ever after (every refund, every load): one statement when it exists.
  let account = await em.findOne(LedgerAccount, { code: input.code }, { refresh: true });
  if (!account) {
    await insertAccount(em, input);
    account = await em.findOneOrFail(LedgerAccount, { code: input.code }, { refresh: true });
  }
  checkSameTerms(account, input);
  return account;
}

function insertAccount(em: EntityManager, input: OpenAccountInput) {
  return em.execute(
    `insert into ledger_account (id, code, type, owner_kind, owner_id, currency, non_negative)
     values (?, ?, ?, ?, ?, ?, ?) on conflict (code) do nothing`,
    [randomUUID(), input.code, input.type, input.ownerKind, input.ownerId ?? null, input.currency, input.nonNegative ?? false],
  );
}

/** What a ledger account is, without its balance: what never changes once its row is committed. */
export interface AccountRef {
  id: string;
  code: string;
  type: AccountType;
  ownerKind: AccountOwnerKind;
  ownerId: string | null;
  currency: string;
  nonNegative: boolean;
}

/**
 * Accounts this process has seen committed, by code and by id, per database (keyed by the ORM's
 * driver: a process may open two databases, and an id from one means nothing in the other). A
 * ledger account is never deleted and only its balance changes, so what is remembered here cannot
 * go stale in any process; an account seen only inside the transaction that inserted it is not
 * remembered (that transaction may still roll back). Should a remembered account's row be missing
 * all the same (a database restored to an earlier point), post() forgets it and refuses, and the
 * next call reads it afresh. Bounded: the oldest is forgotten first, and read again when next needed.
 */
const rememberedPerDatabase = new WeakMap<object, { byCode: Map<string, AccountRef>; byId: Map<string, AccountRef> }>();
const MAX_REMEMBERED = 20_000;

function rememberedIn(em: EntityManager) {
  const database = em.getDriver();
  let remembered = rememberedPerDatabase.get(database);
  if (!remembered) rememberedPerDatabase.set(database, (remembered = { byCode: new Map(), byId: new Map() }));
  return remembered;
}

function remember(em: EntityManager, account: AccountRef): void {
  const { byCode, byId } = rememberedIn(em);
  if (byCode.size >= MAX_REMEMBERED) {
    const oldest = byCode.values().next().value!;
    byCode.delete(oldest.code);
    byId.delete(oldest.id);
  }
  byCode.set(account.code, account);
  byId.set(account.id, account);
}

function forget(em: EntityManager, id: string): void {
  const { byCode, byId } = rememberedIn(em);
  const account = byId.get(id);
  if (!account) return;
  byId.delete(id);
  byCode.delete(account.code);
}

/**
 * The chart's way to open an account (ledger/accounts.ts): openAccount without the balance, so an
 * account that exists is read once per process, not once per movement (issue 20).
 */
export async function openAccountRef(em: EntityManager, input: OpenAccountInput): Promise<AccountRef> {
  checkCurrency(input);
  let account = rememberedIn(em).byCode.get(input.code);
  if (!account) {
    // A row this transaction inserted has created_at = now() (its start); a row another one inserted
    // is visible only once committed. (Another transaction started in the same microsecond: not
    // remembered, read again next time.)
    const read = () =>
      em.execute<(AccountRef & { committed: boolean })[]>(
        `select id, code, type, owner_kind as "ownerKind", owner_id as "ownerId", currency, non_negative as "nonNegative", created_at <> now() as committed
           from ledger_account where code = ?`,
        [input.code],
      );
    let [row] = await read();
    if (!row) {
      await insertAccount(em, input);
      [row] = await read();
    }
    const { committed, ...found } = row!;
    account = found;
    if (committed) remember(em, account);
  }
  checkSameTerms(account, input);
  return account;
}

function validate(input: EntryInput): void {
  if (typeof input.key !== 'string' || input.key.length === 0 || input.key.length > MAX_KEY_LENGTH) {
    throw new LedgerError(Code.INVALID_ENTRY_KEY, `an entry key is 1 to ${MAX_KEY_LENGTH} characters`);
  }
  if (typeof input.description !== 'string' || input.description.trim() === '' || input.description.length > 500) {
    throw new LedgerError(Code.INVALID_DESCRIPTION, 'an entry has a description of 1 to 500 characters');
  }
  if (input.lines.length < 2) throw new LedgerError(Code.TOO_FEW_LINES, 'an entry has at least two lines');
  for (const line of input.lines) {
    if (typeof line.amount !== 'bigint' || line.amount === 0n || line.amount > MAX_LINE_AMOUNT || line.amount < -MAX_LINE_AMOUNT) {
      throw new LedgerError(Code.INVALID_AMOUNT, `a line amount is a non-zero integer of minor units within ±${MAX_LINE_AMOUNT}`, line.account);
    }
  }
}

async function loadAccounts(em: EntityManager, ids: string[]): Promise<Map<string, AccountRow>> {
  const valid = ids.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
  // An account its caller has just opened or read through the same EntityManager (openAccount) is
  // known already: its currency and type never change, so it is not read again (issue 20: a round
  // trip on every refund and load). Its row is still locked and updated below, which proves it exists.
  const { byId: remembered } = rememberedIn(em);
  const known = valid.map((id) => remembered.get(id) ?? em.getUnitOfWork().getById(LedgerAccount, id)).filter((a) => a !== undefined);
  const unknown = valid.filter((id) => !known.some((a) => a.id === id));
  const rows = unknown.length ? await em.execute<AccountRow[]>(`select id, currency, type from ledger_account where id in (?)`, [unknown]) : [];
  const byId = new Map([...known.map((a) => [a.id, { id: a.id, currency: a.currency, type: a.type }] as const), ...rows.map((r) => [r.id, r] as const)]);
  for (const id of ids) if (!byId.has(id)) throw new LedgerError(Code.UNKNOWN_ACCOUNT, `no ledger account ${id}`, id);
  return byId;
}

function checkBalanced(lines: PostingLine[], accounts: Map<string, AccountRow>): string {
  const currencies = new Set(lines.map((l) => accounts.get(l.account)!.currency));
  if (currencies.size > 1) throw new LedgerError(Code.MIXED_CURRENCIES, `an entry is in one currency; got ${[...currencies].join(', ')}`);
  const sum = lines.reduce((acc, l) => acc + l.amount, 0n);
  if (sum !== 0n) throw new LedgerError(Code.UNBALANCED, `debits and credits differ by ${sum} minor units`);
  return [...currencies][0]!;
}

/**
 * An entry by id or key, through its key row (journal_entry_key): that gives the month that holds it,
 * so one partition is read. An entry whose month was archived has its key row only: `archived`.
 */
async function readEntry(em: EntityManager, where: { id?: string; key?: string }): Promise<PostedEntry | 'archived' | undefined> {
  const [head] = await em.execute<{ id: string | null; entry_key: string; description: string; posted_at: Date; posted_at_exact: string; reverses_id: string | null }[]>(
    `select e.id, k.entry_key, e.description, e.posted_at, k.posted_at::text as posted_at_exact, k.reverses_id
       from journal_entry_key k left join journal_entry e on e.id = k.entry_id and e.posted_at = k.posted_at
      where ${where.id ? 'k.entry_id' : 'k.entry_key'} = ?`,
    [where.id ?? where.key],
  );
  if (!head) return undefined;
  if (!head.id) return 'archived';
  const lines = await em.execute<{ account_id: string; amount: string; currency: string; balance_after: string }[]>(
    `select account_id, amount, currency, balance_after from posting where entry_id = ? and posted_at = ? order by line_no`,
    [head.id, head.posted_at_exact],
  );
  return {
    id: head.id,
    key: head.entry_key,
    description: head.description,
    postedAt: new Date(head.posted_at),
    reversesId: head.reverses_id,
    replayed: true,
    lines: lines.map((l) => ({ account: l.account_id, amount: BigInt(l.amount), currency: l.currency.trim(), balanceAfter: BigInt(l.balance_after) })),
  };
}

function sameLines(a: PostingLine[], b: PostingLine[]): boolean {
  return a.length === b.length && a.every((line, i) => line.account === b[i]!.account && line.amount === b[i]!.amount);
}

/**
 * The entry in one statement (issue 20: a round trip is the unit of cost on the hot paths, and a
 * post() was four): the key row and the entry, the accounts locked in id order, each line's
 * balance after it, every account moved once by its lines' sum, and the postings. The guard is
 * computed in the statement from the locked balances, line by line in line order, so nothing moves
 * unless every line keeps its account within its rules; the table's CHECK stays the backstop.
 * The accounts are locked as an update locks them (no key update): a row that only refers to an
 * account (the archive's openings) neither waits on it nor blocks it.
 * A key posted before inserts no key row, so the statement locks and moves nothing (a replay).
 */
const WRITE_ENTRY = `
  with k as (insert into journal_entry_key (entry_key, entry_id, reverses_id) values ($1, $2, $3)
             on conflict (entry_key) do nothing returning entry_key, entry_id, reverses_id, posted_at),
       e as (insert into journal_entry (id, entry_key, description, reverses_id, metadata, posted_at)
             select k.entry_id, k.entry_key, $4, k.reverses_id, $5::jsonb, k.posted_at from k
             returning id, posted_at),
       l as (select * from json_to_recordset($6::json) as l(line_no int, account_id uuid, amount bigint, delta bigint)),
       locked as (select a.id, a.balance, a.non_negative from ledger_account a
                   where a.id = any($7::uuid[]) and exists (select 1 from k)
                   order by a.id for no key update),
       r as (select l.line_no, l.account_id, l.amount, x.non_negative,
                    x.balance::numeric + sum(l.delta) over (partition by l.account_id order by l.line_no) as after
               from l join locked x on x.id = l.account_id),
       ok as (select coalesce((select count(*) from locked) = cardinality($7::uuid[])
                              and bool_and((not r.non_negative or r.after >= 0) and r.after between -9223372036854775808 and 9223372036854775807), false) as ok
                from r),
       moved as (update ledger_account a set balance = t.after
                   from (select distinct on (account_id) account_id, after from r order by account_id, line_no desc) t
                  where a.id = t.account_id and (select ok from ok)),
       p as (insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
             select e.id, r.line_no, r.account_id, r.amount, $8, r.after, e.posted_at from r cross join e where (select ok from ok))
  select e.posted_at, (select ok from ok) as ok,
         (select json_agg(json_build_object('id', id, 'balance', balance::text, 'non_negative', non_negative)) from locked) as before,
         (select json_agg(r.after::text order by r.line_no) from r) as after
    from e`;

interface WrittenEntry {
  posted_at: Date;
  ok: boolean;
  before: { id: string; balance: string; non_negative: boolean }[] | null;
  after: string[] | null;
}

/** An entry's lines by account id, then in line order: the order post() and postMany() check them in. */
function inAccountOrder(lines: PostingLine[]): { line: PostingLine; lineNo: number }[] {
  return lines.map((line, lineNo) => ({ line, lineNo })).sort((a, b) => (a.line.account < b.line.account ? -1 : a.line.account > b.line.account ? 1 : a.lineNo - b.lineNo));
}

/**
 * Why the statement moved nothing, as post() has always said it: the lines taken in (account,
 * line) order from the locked balances, and the first that breaks its account's rules named.
 */
function refusal(lines: PostingLine[], accounts: Map<string, AccountRow>, before: WrittenEntry['before']): LedgerError {
  const locked = new Map((before ?? []).map((b) => [b.id, { balance: BigInt(b.balance), nonNegative: b.non_negative }]));
  const order = inAccountOrder(lines);
  for (const { line } of order) {
    const account = locked.get(line.account);
    if (!account) return new LedgerError(Code.UNKNOWN_ACCOUNT, `no ledger account ${line.account}`, line.account);
    account.balance += isDebitNormal(accounts.get(line.account)!.type) ? line.amount : -line.amount;
    if (account.balance > MAX_BALANCE || account.balance < -MAX_BALANCE - 1n) return new LedgerError(Code.INVALID_AMOUNT, `the balance of account ${line.account} would overflow`, line.account);
    if (account.nonNegative && account.balance < 0n) return new LedgerError(Code.INSUFFICIENT_FUNDS, `account ${line.account} may not go below zero`, line.account);
  }
  throw new Error('the entry statement refused lines that break no rule');
}

async function write(em: EntityManager, given: EntryInput, reversesId: string | null): Promise<PostedEntry> {
  validate(given);
  // PostgreSQL prints uuids in lower case; compare in the same case.
  const input = { ...given, lines: given.lines.map((l) => ({ account: l.account.toLowerCase(), amount: l.amount })) };
  const ids = [...new Set(input.lines.map((l) => l.account))];
  const accounts = await loadAccounts(em, ids);
  const currency = checkBalanced(input.lines, accounts);

  const id = randomUUID();
  const lines = input.lines.map((l, lineNo) => ({
    line_no: lineNo,
    account_id: l.account,
    amount: l.amount.toString(),
    delta: (isDebitNormal(accounts.get(l.account)!.type) ? l.amount : -l.amount).toString(),
  }));
  let written: WrittenEntry[];
  try {
    written = await executeBound<WrittenEntry>(em, WRITE_ENTRY, [
      input.key,
      id,
      reversesId,
      input.description,
      JSON.stringify(input.metadata ?? {}),
      JSON.stringify(lines),
      ids.sort(),
      currency,
    ]);
  } catch (err) {
    if (sqlState(err) === UNIQUE_VIOLATION && reversesId) throw new LedgerError(Code.ALREADY_REVERSED, `entry ${reversesId} is already reversed`);
    // The statement's own guard refuses these first; the table's rules are the backstop.
    if (sqlState(err) === CHECK_VIOLATION) throw new LedgerError(Code.INSUFFICIENT_FUNDS, 'an account of this entry may not go below zero');
    if (sqlState(err) === NUMERIC_OUT_OF_RANGE) throw new LedgerError(Code.INVALID_AMOUNT, 'a balance of this entry would overflow');
    throw err;
  }
  const [entry] = written;
  if (!entry) {
    // The key was posted before (perhaps by a concurrent call that has committed since): a replay.
    const existing = (await readEntry(em, { key: input.key }))!;
    if (existing === 'archived') {
      throw new LedgerError(Code.ENTRY_KEY_REUSED, `entry key "${input.key}" was posted in a month since archived: nothing moved, and its lines can no longer be compared`);
    }
    if (!sameLines(existing.lines, input.lines) || existing.reversesId !== reversesId) {
      throw new LedgerError(Code.ENTRY_KEY_REUSED, `entry key "${input.key}" was posted before with other lines`);
    }
    return existing;
  }
  if (!entry.ok) {
    // The key row and the entry were written: abort the transaction, so nothing half-written can
    // commit even if the caller goes on after the refusal. An account known from the identity map
    // whose row is gone (opened in a savepoint since rolled back, or remembered from a database
    // since restored) is not remembered any more.
    const error = refusal(input.lines, accounts, entry.before);
    if (error.code === Code.UNKNOWN_ACCOUNT) forget(em, error.accountId!);
    await em.execute(`do $$ begin raise exception 'ledger entry refused'; end $$`).catch(() => undefined);
    throw error;
  }
  return {
    id,
    key: input.key,
    description: input.description,
    postedAt: new Date(entry.posted_at),
    reversesId,
    replayed: false,
    lines: input.lines.map((l, i) => ({ account: l.account, amount: l.amount, currency, balanceAfter: BigInt(entry.after![i]!) })),
  };
}

/**
 * The one way money moves (DESIGN.md §3): writes a balanced entry atomically in the caller's
 * transaction (or its own). Refuses unbalanced entries, mixed currencies, unknown accounts, and
 * anything that would take a non-negative account below zero; idempotent by `input.key`.
 * A refusal after writing has begun aborts the transaction, so nothing half-written can commit.
 */
export function post(em: EntityManager, input: EntryInput): Promise<PostedEntry> {
  return inTransaction(em, (tx) => write(tx, input, null));
}

/**
 * An account's balance right after `entry`, when this call posted it: in the poster's transaction,
 * with the account's row locked to its end, that is its balance until something else in the
 * transaction moves it. Undefined for a replay (its lines are history) or an account not in it.
 */
export function balanceAfterEntry(entry: PostedEntry, accountId: string): bigint | undefined {
  if (entry.replayed) return undefined;
  const lines = entry.lines.filter((l) => l.account === accountId.toLowerCase());
  return lines.at(-1)?.balanceAfter;
}

/** Posts the mirror image of an entry. An entry is reversed at most once. */
export function reverse(em: EntityManager, entryId: string, input: { key: string; description: string; metadata?: Record<string, unknown> }): Promise<PostedEntry> {
  return inTransaction(em, async (tx) => {
    const original = /^[0-9a-f-]{36}$/i.test(entryId) ? await readEntry(tx, { id: entryId }) : undefined;
    if (original === 'archived') throw new LedgerError(Code.UNKNOWN_ENTRY, `journal entry ${entryId} is in a month since archived: its lines are no longer here to reverse`);
    if (!original) throw new LedgerError(Code.UNKNOWN_ENTRY, `no journal entry ${entryId}`);
    const lines = original.lines.map((l) => ({ account: l.account, amount: -l.amount }));
    return write(tx, { ...input, lines }, original.id);
  });
}

/** An entry that is here: one whose month was archived is not found. */
export async function findEntry(em: EntityManager, id: string): Promise<PostedEntry | undefined> {
  const entry = /^[0-9a-f-]{36}$/i.test(id) ? await readEntry(em, { id }) : undefined;
  return entry === 'archived' ? undefined : entry;
}

/** The balance now, on the account's normal side. */
export async function balance(em: EntityManager, accountId: string): Promise<bigint> {
  const [row] = await em.execute<{ balance: string }[]>(`select balance from ledger_account where id = ?`, [accountId]);
  if (!row) throw new LedgerError(Code.UNKNOWN_ACCOUNT, `no ledger account ${accountId}`, accountId);
  return BigInt(row.balance);
}

/**
 * The balance as it stood at `at`: the account's opening at the first month kept (zero when no
 * month was archived) and every posting since, up to that instant. An instant inside an archived
 * month is refused: the postings that would answer it have left.
 */
export async function balanceAt(em: EntityManager, accountId: string, at: Date): Promise<bigint> {
  const [row] = await em.execute<{ type: AccountType; kept_from: Date | null; opening: string | null; total: string | null }[]>(
    `with kept as (select max(month) as month from ledger_opening)
     select a.type, (select month from kept)::timestamp at time zone 'UTC' as kept_from,
            (select o.balance from ledger_opening o where o.month = (select month from kept) and o.account_id = a.id) as opening,
            (select sum(p.amount) from posting p where p.account_id = a.id and p.posted_at <= ?) as total
       from ledger_account a where a.id = ?`,
    [at, accountId],
  );
  if (!row) throw new LedgerError(Code.UNKNOWN_ACCOUNT, `no ledger account ${accountId}`, accountId);
  if (row.kept_from && at < new Date(row.kept_from)) {
    throw new LedgerError(Code.MONTH_ARCHIVED, `the ledger keeps postings from ${new Date(row.kept_from).toISOString()} on: earlier months are archived`, accountId);
  }
  const debits = BigInt(row.opening ?? 0) + BigInt(row.total ?? 0);
  return isDebitNormal(row.type) ? debits : -debits;
}

export async function findAccount(em: EntityManager, id: string): Promise<LedgerAccount | null> {
  return /^[0-9a-f-]{36}$/i.test(id) ? em.findOne(LedgerAccount, { id }) : null;
}

/** A page of accounts in code order, for operators. */
export async function listAccounts(em: EntityManager, opts: { ownerKind?: AccountOwnerKind; afterCode?: string; limit: number }): Promise<LedgerAccount[]> {
  return em.find(
    LedgerAccount,
    { ...(opts.ownerKind ? { ownerKind: opts.ownerKind } : {}), ...(opts.afterCode !== undefined ? { code: { $gt: opts.afterCode } } : {}) },
    { orderBy: { code: 'asc' }, limit: opts.limit },
  );
}

/** An account as a caller that books many entries at once sees it: locked until its transaction ends. */
export interface LockedAccount {
  id: string;
  code: string;
  currency: string;
  type: AccountType;
  nonNegative: boolean;
  balance: bigint;
}

/**
 * Locks the accounts with these codes (those that exist) in one global order (by id, as post()
 * moves them) and reads their balances: what a caller booking many entries at once decides on
 * (which of them the accounts cover) before it hands them to postMany() in the same transaction.
 */
export async function lockAccounts(em: EntityManager, codes: string[]): Promise<Map<string, LockedAccount>> {
  if (codes.length === 0) return new Map();
  const rows = await executeBound<{ id: string; code: string; currency: string; type: AccountType; non_negative: boolean; balance: string }>(
    em,
    `select id, code, currency, type, non_negative, balance from ledger_account where code = any($1::text[]) order by id for update`,
    [[...new Set(codes)]],
  );
  return new Map(rows.map((r) => [r.code, { id: r.id, code: r.code, currency: r.currency.trim(), type: r.type, nonNegative: r.non_negative, balance: BigInt(r.balance) }]));
}

/**
 * Rows per statement of postMany(): JSON in one bound parameter (executeBound: sent as it is, not
 * escaped into the SQL text), so no limit on parameters; this bounds its size.
 */
const ROWS_PER_BULK_STATEMENT = 10_000;

/**
 * Many entries at once, set-based (issue 23: an offline batch books up to 5,000): the same rules
 * as post() for each entry (valid key, description and amounts, balanced, one currency, accounts
 * that exist), its lines' balance_after as if the entries were posted one by one in the given
 * order, and each account moved once by the sum of its lines, under the same CHECK. All or nothing:
 * a key posted before (or twice in the call), or an entry that would take a non-negative account
 * below zero at its turn, refuses the whole call, and a refusal after writing has begun aborts the
 * transaction. There is no replay here: the caller decides beforehand which entries are new.
 */
export function postMany(em: EntityManager, entries: EntryInput[]): Promise<{ id: string; key: string }[]> {
  return inTransaction(em, async (tx) => {
    if (entries.length === 0) return [];
    for (const entry of entries) validate(entry);
    const keys = new Set(entries.map((e) => e.key));
    if (keys.size !== entries.length) throw new LedgerError(Code.ENTRY_KEY_REUSED, 'an entry key is given twice in one call');
    const lowered = entries.map((e) => ({ ...e, lines: e.lines.map((l) => ({ account: l.account.toLowerCase(), amount: l.amount })) }));
    const ids = [...new Set(lowered.flatMap((e) => e.lines.map((l) => l.account)))].sort();
    for (const id of ids) if (!/^[0-9a-f-]{36}$/.test(id)) throw new LedgerError(Code.UNKNOWN_ACCOUNT, `no ledger account ${id}`, id);
    // Locked in id order, as post() locks: the balances below are the ones the updates will move.
    // The lock an update takes (no key update), which rows that merely refer to an account (an
    // opening, a posting) do not wait on, nor block.
    const rows = await executeBound<{ id: string; currency: string; type: AccountType; non_negative: boolean; balance: string }>(
      tx,
      `select id, currency, type, non_negative, balance from ledger_account where id = any($1::uuid[]) order by id for no key update`,
      [ids],
    );
    const accounts = new Map(rows.map((r) => [r.id, { id: r.id, currency: r.currency.trim(), type: r.type, nonNegative: r.non_negative, balance: BigInt(r.balance) }]));
    // A remembered account whose row is gone (a database restored to an earlier point) is refused, as
    // post() refuses it, and forgotten so that the next call opens it afresh instead of failing until restart.
    const missing = ids.filter((id) => !accounts.has(id));
    for (const id of missing) forget(tx, id);
    if (missing.length) throw new LedgerError(Code.UNKNOWN_ACCOUNT, `no ledger account ${missing[0]}`, missing[0]);

    const heads: { id: string; entry_key: string; description: string; metadata: Record<string, unknown> }[] = [];
    const postings: { entry_id: string; line_no: number; account_id: string; amount: string; currency: string; balance_after: string }[] = [];
    const running = new Map([...accounts].map(([id, a]) => [id, a.balance]));
    for (const entry of lowered) {
      const currency = checkBalanced(entry.lines, accounts);
      const id = randomUUID();
      heads.push({ id, entry_key: entry.key, description: entry.description, metadata: entry.metadata ?? {} });
      const order = inAccountOrder(entry.lines);
      const after = new Array<bigint>(entry.lines.length);
      for (const { line, lineNo } of order) {
        const account = accounts.get(line.account)!;
        const balance = running.get(line.account)! + (isDebitNormal(account.type) ? line.amount : -line.amount);
        if (account.nonNegative && balance < 0n) throw new LedgerError(Code.INSUFFICIENT_FUNDS, `account ${line.account} may not go below zero`, line.account);
        running.set(line.account, balance);
        after[lineNo] = balance;
      }
      entry.lines.forEach((l, lineNo) => postings.push({ entry_id: id, line_no: lineNo, account_id: l.account, amount: l.amount.toString(), currency, balance_after: after[lineNo]!.toString() }));
    }

    // One posted_at for the call, read from the database's clock by the first statement and given to
    // the rest: the entries and their postings land in the same month's partitions.
    let postedAt: string | null = null;
    try {
      for (let from = 0; from < heads.length; from += ROWS_PER_BULK_STATEMENT) {
        const [written]: { posted_at: string }[] = await executeBound<{ posted_at: string }>(
          tx,
          `with at as materialized (select coalesce($2::timestamptz, clock_timestamp()) as posted_at),
                e as (select * from json_to_recordset($1::json) as e(id uuid, entry_key text, description text, metadata jsonb)),
                k as (insert into journal_entry_key (entry_key, entry_id, posted_at) select e.entry_key, e.id, at.posted_at from e, at),
                j as (insert into journal_entry (id, entry_key, description, metadata, posted_at) select e.id, e.entry_key, e.description, e.metadata, at.posted_at from e, at)
           select posted_at::text as posted_at from at`,
          [JSON.stringify(heads.slice(from, from + ROWS_PER_BULK_STATEMENT)), postedAt],
        );
        postedAt = written!.posted_at;
      }
    } catch (err) {
      if (sqlState(err) === UNIQUE_VIOLATION) throw new LedgerError(Code.ENTRY_KEY_REUSED, 'an entry key of this call was posted before');
      throw err;
    }
    for (let from = 0; from < postings.length; from += ROWS_PER_BULK_STATEMENT) {
      await executeBound(
        tx,
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
         select entry_id, line_no, account_id, amount, currency, balance_after, $2::timestamptz
           from json_to_recordset($1::json) as p(entry_id uuid, line_no int, account_id uuid, amount bigint, currency text, balance_after bigint)`,
        [JSON.stringify(postings.slice(from, from + ROWS_PER_BULK_STATEMENT)), postedAt],
      );
    }
    // Each account once, by its entries' sum; the table's CHECK stays the backstop.
    const moved = ids.filter((id) => running.get(id) !== accounts.get(id)!.balance).map((id) => ({ id, delta: (running.get(id)! - accounts.get(id)!.balance).toString() }));
    if (moved.length) {
      await executeBound(tx, `update ledger_account a set balance = a.balance + d.delta from json_to_recordset($1::json) as d(id uuid, delta bigint) where a.id = d.id`, [JSON.stringify(moved)]);
    }
    return heads.map((h) => ({ id: h.id, key: h.entry_key }));
  });
}
