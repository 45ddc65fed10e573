import {
  type DirectiveNode,
  type FieldNode,
  type FragmentDefinitionNode,
  getNamedType,
  getNullableType,
  GraphQLError,
  type GraphQLNamedType,
  type GraphQLSchema,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  valueFromASTUntyped,
} from 'graphql';
import { DEFAULT_PAGE_SIZE } from './connection.js';

/**
 * What one operation may ask for (docs/security.md#graphql-limits). Each is no looser than
 * graphql-armor's default (depth 6, aliases 15, tokens 1,000, directives 50, cost 5,000), except
 * where the schema needs more: depth 7, with a Relay `edges { node }` pair as one level, for a
 * settlement window's batch lines' amounts (`settlementWindows { edges { node { batch { lines {
 * edges { node { gross { amount } } } } } } } }`); and introspection (`__schema`, `__type` and the
 * `__…` types under them) has its own depth for GraphiQL's query.
 */
export interface QueryLimits {
  maxDepth: number;
  /** Depth of a field of an introspection type; GraphiQL’s introspection query reaches 15. */
  maxIntrospectionDepth: number;
  maxAliases: number;
  maxDirectives: number;
  /** Lexical tokens in the document; enforced by graphql's parser while it parses. */
  maxTokens: number;
  maxCost: number;
}

export const DEFAULT_LIMITS: QueryLimits = { maxDepth: 7, maxIntrospectionDepth: 15, maxAliases: 15, maxDirectives: 50, maxTokens: 1_000, maxCost: 5_000 };

export interface QueryCost {
  cost: number;
  depth: number;
  aliases: number;
  directives: number;
}

/** What a selection set (or a fragment, measured once) adds, its depths relative to where it is used. */
interface Measure {
  cost: number;
  /** Deepest ordinary field, and deepest introspection field, below the set's own level (0: none). */
  depth: number;
  introspectionDepth: number;
  aliases: number;
  directives: number;
}

const isIntrospectionType = (type: GraphQLNamedType | null | undefined): boolean => !!type && type.name.startsWith('__');

function tooComplex(over: string, cost: number | undefined, limits: QueryLimits): GraphQLError {
  return new GraphQLError(`Query too complex: ${over}`, {
    extensions: { code: 'QUERY_TOO_COMPLEX', cost: { requested: cost, limit: limits.maxCost }, http: { status: 400 } },
  });
}

/**
 * Measures an operation before it runs and refuses it (QUERY_TOO_COMPLEX) over any limit: its
 * depth, aliases, directives, and its cost: one per field, times the page size (`first`, or the
 * default) for everything under a list or connection. Introspection fields count like any field,
 * except that their lists are not multiplied: they are read from the schema in memory, bounded by
 * its size, and GraphiQL's own introspection query must stay within the cost limit.
 *
 * Time is linear in the document: each fragment is measured once and its measure reused at every
 * spread (a fragment's selections are resolved against its own type condition, so its measure does
 * not depend on where it is spread). Measuring stops at the first limit passed: costs only grow as
 * they are combined, so a part over a limit means the whole is over it.
 */
export function measure(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Record<string, FragmentDefinitionNode>, variables: Record<string, unknown>, limits: QueryLimits = DEFAULT_LIMITS): QueryCost {
  const root = operation.operation === 'mutation' ? schema.getMutationType() : operation.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  const measuredFragments = new Map<string, Measure>();
  const inProgress = new Set<string>();

  const pageSize = (field: FieldNode): number => {
    const first = field.arguments?.find((a) => a.name.value === 'first');
    const value = first ? valueFromASTUntyped(first.value, variables) : undefined;
    return typeof value === 'number' && value > 0 ? value : DEFAULT_PAGE_SIZE;
  };

  // Checked on every partial measure: a part over a limit is enough to refuse the whole.
  const check = (m: Measure, level: number): Measure => {
    if (m.depth > 0 && level + m.depth > limits.maxDepth) throw tooComplex(`depth ${level + m.depth} exceeds ${limits.maxDepth}`, undefined, limits);
    if (m.introspectionDepth > 0 && level + m.introspectionDepth > limits.maxIntrospectionDepth) throw tooComplex(`introspection depth ${level + m.introspectionDepth} exceeds ${limits.maxIntrospectionDepth}`, undefined, limits);
    if (m.aliases > limits.maxAliases) throw tooComplex(`${m.aliases} aliases exceed ${limits.maxAliases}`, undefined, limits);
    if (m.directives > limits.maxDirectives) throw tooComplex(`${m.directives} directives exceed ${limits.maxDirectives}`, undefined, limits);
    if (m.cost > limits.maxCost) throw tooComplex(`cost exceeds ${limits.maxCost} (at least ${m.cost})`, m.cost, limits);
    return m;
  };

  const add = (into: Measure, part: Measure): void => {
    into.cost += part.cost;
    into.depth = Math.max(into.depth, part.depth);
    into.introspectionDepth = Math.max(into.introspectionDepth, part.introspectionDepth);
    into.aliases += part.aliases;
    into.directives += part.directives;
  };

  const countDirectives = (directives: readonly DirectiveNode[] | undefined): number => directives?.length ?? 0;

  const fragmentMeasure = (name: string, level: number): Measure | undefined => {
    const known = measuredFragments.get(name);
    if (known) return known;
    const fragment = fragments[name];
    if (!fragment || inProgress.has(name)) return undefined; // cycles are refused by validation anyway
    inProgress.add(name);
    const m = walk(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value), level);
    inProgress.delete(name);
    measuredFragments.set(name, m);
    return m;
  };

  /** The measure of a selection set whose fields are at depth 1 relative to `level` (the depth of its parent field). */
  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | null | undefined, level: number): Measure => {
    const total: Measure = { cost: 0, depth: 0, introspectionDepth: 0, aliases: 0, directives: 0 };
    for (const selection of set.selections) {
      const part: Measure = { cost: 0, depth: 0, introspectionDepth: 0, aliases: 0, directives: countDirectives(selection.directives) };
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) part.aliases++;
        const fieldDef =
          selection.name.value === '__schema' || selection.name.value === '__type'
            ? schema.getQueryType()?.getFields()[selection.name.value] // meta fields are not in getFields
            : parent && (isObjectType(parent) || isInterfaceType(parent))
              ? parent.getFields()[selection.name.value]
              : undefined;
        const introspection = isIntrospectionType(parent) || selection.name.value === '__schema' || selection.name.value === '__type';
        const metaDef = selection.name.value === '__schema' ? schema.getType('__Schema') : selection.name.value === '__type' ? schema.getType('__Type') : undefined;
        const type = fieldDef ? getNullableType(fieldDef.type) : undefined;
        const named = metaDef ?? (type ? getNamedType(type) : undefined);
        // A connection is charged its page size once; its `edges` list is that same page.
        const isConnection = named?.name.endsWith('Connection') ?? false;
        const isEdgesOfConnection = !!parent?.name.endsWith('Connection') && selection.name.value === 'edges';
        const many = introspection ? 1 : isConnection || (type && isListType(type) && !isEdgesOfConnection) ? pageSize(selection) : 1;
        // Relay's `edges { node }` is one level: `node` sits at the depth of `edges`.
        const nodeOfEdge = !!parent?.name.endsWith('Edge') && selection.name.value === 'node';
        const own = nodeOfEdge ? 0 : 1;
        if (introspection) part.introspectionDepth = own;
        else part.depth = own;
        if (selection.selectionSet && named && isCompositeType(named)) {
          const children = walk(selection.selectionSet, named, level + own);
          part.cost = 1 + many * children.cost;
          part.depth = Math.max(part.depth, children.depth && own + children.depth);
          part.introspectionDepth = Math.max(part.introspectionDepth, children.introspectionDepth && own + children.introspectionDepth);
          part.aliases += children.aliases;
          part.directives += children.directives;
        } else {
          part.cost = 1;
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const typed = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        add(part, walk(selection.selectionSet, typed, level));
      } else {
        const fragment = fragmentMeasure(selection.name.value, level);
        if (fragment) add(part, fragment);
      }
      add(total, part);
      check(total, level);
    }
    return total;
  };

  const m = walk(operation.selectionSet, root, 0);
  m.directives += countDirectives(operation.directives) + (operation.variableDefinitions ?? []).reduce((n, v) => n + countDirectives(v.directives), 0);
  check(m, 0);
  return { cost: m.cost, depth: m.depth, aliases: m.aliases, directives: m.directives };
}
