import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse, print, type ArgumentNode, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { IDEMPOTENT_MUTATIONS } from './generated/idempotency.js';

/** A GraphQL operation: a typed document (e.g. `CreatePaymentDocument`), any `DocumentNode`, or its text. */
export type GraphQLDocument<TData = unknown, TVariables = Record<string, unknown>> = TypedDocumentNode<TData, TVariables> | DocumentNode | string;

/** The result type of a typed document. */
export type ResultOf<D> = D extends TypedDocumentNode<infer TData, infer _TVariables> ? TData : never;
/** The variables type of a typed document. */
export type VariablesOf<D> = D extends TypedDocumentNode<infer _TData, infer TVariables> ? TVariables : never;

/** An input with `idempotencyKey`, where the key may be left out: the client then makes one. */
type KeyOptional<T> = T extends { idempotencyKey: string } ? { [K in keyof T as K extends 'idempotencyKey' ? never : K]: T[K] } & { idempotencyKey?: string | null } : T;

/**
 * The variables a caller passes for an operation whose variables are `V`: as generated, except that a
 * money mutation's `idempotencyKey` (in a variable's input object, or a variable of its own) may be
 * left out.
 */
export type OperationVariables<V> = KeyOptional<{ [K in keyof V]: KeyOptional<V[K]> }>;

/** What the client sends for one logical call, and how it may retry it. */
export interface PreparedOperation {
  /** The operation text. */
  query: string;
  /** The variables to send, with any idempotency keys the client added. */
  variables: Record<string, unknown> | undefined;
  /** `query`, `mutation`, `subscription`, or undefined when the document could not be read here. */
  kind: 'query' | 'mutation' | 'subscription' | undefined;
  /** The money mutations' idempotency keys, in document order (given or made). */
  idempotencyKeys: string[];
  /**
   * Whether sending it again cannot do more than sending it once: a query, or a mutation whose every
   * root field is a money mutation with an idempotency key.
   */
  idempotent: boolean;
}

const printed = new WeakMap<DocumentNode, string>();
const parsed = new Map<string, DocumentNode | null>();
const PARSE_CACHE_SIZE = 200;

function documentOf(document: GraphQLDocument<unknown, unknown>): { query: string; ast: DocumentNode | null } {
  if (typeof document !== 'string') {
    let query = printed.get(document);
    if (query === undefined) printed.set(document, (query = print(document)));
    return { query, ast: document };
  }
  let ast = parsed.get(document);
  if (ast === undefined) {
    try {
      ast = parse(document, { noLocation: true });
    } catch {
      ast = null; // the server will say what is wrong with it
    }
    if (parsed.size >= PARSE_CACHE_SIZE) parsed.delete(parsed.keys().next().value!);
    parsed.set(document, ast);
  }
  return { query: document, ast };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a document and fills in the idempotency keys of its money mutations (those whose input has
 * `idempotencyKey`, per the schema) where the caller gave none: `key` if given, else `newKey()` for
 * each one missing. The caller's variables are not changed: what is sent is a copy.
 */
export function prepareOperation(
  document: GraphQLDocument<unknown, unknown>,
  variables: Record<string, unknown> | undefined,
  newKey: () => string,
  key?: string,
): PreparedOperation {
  const { query, ast } = documentOf(document);
  const operations = (ast?.definitions ?? []).filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
  const operation = operations.length === 1 ? operations[0]! : undefined;
  const kind = operation?.operation;
  if (!operation || kind !== 'mutation') {
    if (key !== undefined) throw new TypeError('OneCardClient: idempotencyKey was given for an operation that is not a money mutation');
    return { query, variables, kind, idempotencyKeys: [], idempotent: kind === 'query' };
  }

  const vars: Record<string, unknown> = { ...variables };
  /** Each place a key goes, in document order: the key the caller gave, or a function that sets one. */
  const slots: ({ given: string } | { set: (value: string) => void })[] = [];
  let everyFieldKeyed = true;
  /** Variables already given a slot: one variable used by two fields is one key. */
  const seen = new Map<string, boolean>();

  const slot = (variable: string, into: () => Record<string, unknown>, field: string) => {
    const known = seen.get(variable);
    if (known !== undefined) return known;
    const ok = addSlot(into(), field);
    seen.set(variable, ok);
    return ok;
  };
  const addSlot = (into: Record<string, unknown>, field: string) => {
    const value = into[field];
    if (value === undefined || value === null || value === '') slots.push({ set: (key) => (into[field] = key) });
    else if (typeof value === 'string') slots.push({ given: value });
    else return false; // not a string: the server will refuse it
    return true;
  };

  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== 'Field') {
      everyFieldKeyed = false; // a fragment at the root: not read here
      continue;
    }
    if (selection.name.value === '__typename') continue;
    const keyedArgs = IDEMPOTENT_MUTATIONS[selection.name.value];
    if (!keyedArgs) {
      everyFieldKeyed = false;
      continue;
    }
    for (const argName of keyedArgs) {
      const arg: ArgumentNode | undefined = selection.arguments?.find((a) => a.name.value === argName);
      let keyed = false;
      if (arg?.value.kind === 'Variable') {
        // `createPayment(input: $input)`: the key goes into the variable's object (a copy).
        const name = arg.value.name.value;
        const value = vars[name];
        if (isObject(value)) keyed = slot(`$${name}.idempotencyKey`, () => (vars[name] = { ...value }), 'idempotencyKey');
      } else if (arg?.value.kind === 'ObjectValue') {
        // `createPayment(input: { …, idempotencyKey: $key })`, or a literal key.
        const field = arg.value.fields.find((f) => f.name.value === 'idempotencyKey');
        if (field?.value.kind === 'Variable') keyed = slot(`$${field.value.name.value}`, () => vars, field.value.name.value);
        else if (field?.value.kind === 'StringValue') keyed = !!slots.push({ given: field.value.value });
      }
      if (!keyed) everyFieldKeyed = false;
    }
  }

  const unset = slots.filter((s) => 'set' in s).length;
  if (key !== undefined && unset !== 1) {
    throw new TypeError(
      unset === 0
        ? 'OneCardClient: idempotencyKey was given, but the operation has its key(s) already'
        : `OneCardClient: idempotencyKey was given, but the operation has ${unset} money mutations without a key: put a key in each input`,
    );
  }
  const keys = slots.map((s) => {
    if ('given' in s) return s.given;
    const value = key ?? newKey();
    s.set(value);
    return value;
  });
  return { query, variables: variables === undefined && unset === 0 ? undefined : vars, kind, idempotencyKeys: keys, idempotent: everyFieldKeyed && keys.length > 0 };
}
