import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  isNonNullType,
  Kind,
  type OperationDefinitionNode,
  TypeInfo,
  ValidationContext,
  type ValueNode,
  visit,
} from 'graphql';
import { quoteInput } from './errors.js';

/**
 * Checks of every input of an operation, once for the whole API, after validation and before any
 * resolver runs (docs/security.md#graphql-limits). Each refuses with BAD_USER_INPUT, so bad input
 * never reaches a service, the database or a hash as an internal error:
 *
 * 1. no text holds the NUL character (PostgreSQL cannot store it in text);
 * 2. no value is nested deeper than MAX_INPUT_DEPTH (JSON metadata 5,000 deep would overflow the
 *    stack of whatever walks it: canonical JSON, jsonb);
 * 3. no `null` reaches a required place through a variable that has a default (GraphQL lets such a
 *    variable be used where a value is required, then fails when the caller sends `null`).
 *
 * Variables are checked as the caller sent them, literals in the document as written.
 */
export const MAX_INPUT_DEPTH = 32;

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
}

/** `$input.metadata.a[2]`, each name cut short: names come from the caller too. */
const describe = (path: (string | number)[]): string => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '$' : '.'}${quoteInput(p).slice(1, -1)}`)).join('');

/** Walks a variable's value as sent (parsed JSON): text without NUL, nesting at most MAX_INPUT_DEPTH. */
function checkVariableValue(value: unknown, path: (string | number)[], depth: number): void {
  if (typeof value === 'string') {
    if (value.includes('\0')) throw badInput(`Variable ${describe(path)}: text must not contain the NUL character (U+0000)`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (depth >= MAX_INPUT_DEPTH) throw badInput(`Variable ${describe(path)}: input nested deeper than ${MAX_INPUT_DEPTH} levels`);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkVariableValue(item, [...path, i], depth + 1));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\0')) throw badInput(`Variable ${describe(path)}: a key must not contain the NUL character (U+0000)`);
    checkVariableValue(item, [...path, key], depth + 1);
  }
}

/** The nesting of a literal value (an object or list in the document). */
function literalDepth(node: ValueNode): number {
  if (node.kind === Kind.OBJECT) return 1 + Math.max(0, ...node.fields.map((f) => literalDepth(f.value)));
  if (node.kind === Kind.LIST) return 1 + Math.max(0, ...node.values.map(literalDepth));
  return 0;
}

function checkLiterals(document: DocumentNode): void {
  visit(document, {
    StringValue(node) {
      if (node.value.includes('\0')) throw badInput(`A string literal at line ${node.loc ? lineOf(node.loc.source.body, node.loc.start) : '?'} must not contain the NUL character (U+0000)`);
    },
    // An argument's value is the outermost object or list: its depth covers what it holds.
    Argument(node) {
      if (literalDepth(node.value) > MAX_INPUT_DEPTH) throw badInput(`Argument ${quoteInput(node.name.value)}: input nested deeper than ${MAX_INPUT_DEPTH} levels`);
    },
  });
}

const lineOf = (body: string, offset: number): number => body.slice(0, offset).split('\n').length;

/** Refuses an explicit `null` for a variable with a default that is used where a value is required. */
function checkNullForDefault(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): void {
  const defaulted = new Set((operation.variableDefinitions ?? []).filter((v) => v.defaultValue && variables[v.variable.name.value] === null).map((v) => v.variable.name.value));
  if (defaulted.size === 0) return;
  const context = new ValidationContext(schema, document, new TypeInfo(schema), () => {});
  for (const usage of context.getRecursiveVariableUsages(operation)) {
    const name = usage.node.name.value;
    if (defaulted.has(name) && usage.type && isNonNullType(usage.type)) {
      throw badInput(`Variable "$${name}" is required where it is used (${String(usage.type)}): omit it to use its default, or send a value, not null`);
    }
  }
}

/** Runs the checks above on an operation and its variables; throws the first refusal. */
export function checkInput(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(variables)) checkVariableValue(value, [name], 0);
  checkLiterals(document);
  checkNullForDefault(schema, document, operation, variables);
}
