import type { UserErrorFieldsFragment } from './generated/graphql.js';

/** A business refusal in a mutation's payload: a code of the schema's `UserErrorCode`, the input field at fault, and a sentence for developers. */
export type UserError = UserErrorFieldsFragment;

/** The type of one user error of a result `TData`: that of the `userErrors` of any of its root fields. */
export type UserErrorOf<TData> = {
  [K in keyof TData]-?: NonNullable<TData[K]> extends { userErrors: ReadonlyArray<infer E> } ? E : never;
}[keyof TData];

/**
 * Payload fields that may be null even when the mutation succeeded, so `ok` does not narrow them:
 * `openCardSession` opens a session without a host message (the first step brings one).
 */
type NullOnSuccess = 'hostMessage';

/**
 * A payload once its mutation succeeded (no user errors): the payload is there, and so is each of its
 * objects and lists (the API returns them null only with a refusal; see the API conventions). Scalars
 * keep their type (a `secret` comes only when one was made).
 */
export type Succeeded<TPayload> = {
  [K in keyof NonNullable<TPayload>]: K extends 'userErrors' | NullOnSuccess
    ? NonNullable<TPayload>[K]
    : NonNullable<NonNullable<TPayload>[K]> extends object
      ? NonNullable<NonNullable<TPayload>[K]>
      : NonNullable<TPayload>[K];
};

/** A mutation's data once it succeeded: every root field's payload {@link Succeeded}. */
export type SucceededData<TData> = { [K in keyof TData]: Succeeded<TData[K]> };

/**
 * The outcome of {@link OneCardClient.mutate}: `ok` with the data when no root field of the result has
 * user errors; otherwise `ok: false` with every user error (in root field order) beside the data,
 * which may hold more (e.g. `publishBills`' refusals).
 *
 * `ok` narrows: inside `if (r.ok)` the payload and its objects are non-null
 * (`r.data.createPayment.payment.id`, no `!`); see {@link Succeeded}.
 */
export type MutationResult<TData> =
  | {
      ok: true;
      data: SucceededData<TData>;
      userErrors: readonly [];
      /** The idempotency key the call went with (a money mutation's: given, or made by the client). */
      idempotencyKey: string | undefined;
    }
  | {
      ok: false;
      data: TData;
      /** At least one. */
      userErrors: readonly UserErrorOf<TData>[];
      idempotencyKey: string | undefined;
    };

/** Collects the `userErrors` of each root field of `data`. */
export function toMutationResult<TData>(data: TData, idempotencyKey: string | undefined): MutationResult<TData> {
  const userErrors: UserErrorOf<TData>[] = [];
  for (const value of Object.values(data as Record<string, unknown>)) {
    const errors = (value as { userErrors?: unknown } | null)?.userErrors;
    if (Array.isArray(errors)) userErrors.push(...(errors as UserErrorOf<TData>[]));
  }
  // The API's convention (a payload's objects are null only with a refusal) is what makes `data` a SucceededData here.
  return userErrors.length === 0 ? { ok: true, data: data as SucceededData<TData>, userErrors: [], idempotencyKey } : { ok: false, data, userErrors, idempotencyKey };
}

/**
 * A Relay connection as a selection gives it: its edges' nodes, and `pageInfo` with `hasNextPage` and
 * `endCursor`.
 */
export interface Connection<TNode> {
  edges: ReadonlyArray<{ node: TNode } | null | undefined>;
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}
