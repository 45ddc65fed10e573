import {
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

export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
}

export const DEFAULT_LIMITS: QueryLimits = { maxDepth: 12, maxAliases: 30, maxCost: 10_000 };

export interface QueryCost {
  cost: number;
  depth: number;
  aliases: number;
}

/**
 * Measures an operation before it runs: its depth, its aliases, and its cost: one per field,
 * times the page size (`first`, or the default) for everything under a list or connection.
 * Introspection fields are free so that tools keep working.
 */
export function measure(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Record<string, FragmentDefinitionNode>, variables: Record<string, unknown>): QueryCost {
  let aliases = 0;
  let maxDepth = 0;
  const root = operation.operation === 'mutation' ? schema.getMutationType() : operation.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();

  const pageSize = (field: FieldNode): number => {
    const first = field.arguments?.find((a) => a.name.value === 'first');
    const value = first ? valueFromASTUntyped(first.value, variables) : undefined;
    return typeof value === 'number' && value > 0 ? value : DEFAULT_PAGE_SIZE;
  };

  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | null | undefined, depth: number, seen: Set<string>): number => {
    maxDepth = Math.max(maxDepth, depth);
    let cost = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) aliases++;
        if (selection.name.value.startsWith('__')) continue;
        const fieldDef = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[selection.name.value] : undefined;
        const type = fieldDef ? getNullableType(fieldDef.type) : undefined;
        const named = type ? getNamedType(type) : undefined;
        // A connection is charged its page size once; its `edges` list is that same page.
        const isConnection = named?.name.endsWith('Connection') ?? false;
        const isEdgesOfConnection = parent?.name.endsWith('Connection') && selection.name.value === 'edges';
        const many = isConnection || (type && isListType(type) && !isEdgesOfConnection) ? pageSize(selection) : 1;
        const children = selection.selectionSet && named && isCompositeType(named) ? walk(selection.selectionSet, named, depth + 1, seen) : 0;
        cost += 1 + many * children;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const typed = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        cost += walk(selection.selectionSet, typed, depth, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments[name];
        if (!fragment || seen.has(name)) continue; // cycles are refused by validation anyway
        cost += walk(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value), depth, new Set([...seen, name]));
      }
    }
    return cost;
  };

  const cost = walk(operation.selectionSet, root, 1, new Set());
  return { cost, depth: maxDepth, aliases };
}

/** Refuses an operation over the limits with QUERY_TOO_COMPLEX, naming the limit. */
export function enforce(measured: QueryCost, limits: QueryLimits): void {
  const over =
    measured.depth > limits.maxDepth
      ? `depth ${measured.depth} exceeds ${limits.maxDepth}`
      : measured.aliases > limits.maxAliases
        ? `${measured.aliases} aliases exceed ${limits.maxAliases}`
        : measured.cost > limits.maxCost
          ? `cost ${measured.cost} exceeds ${limits.maxCost}`
          : undefined;
  if (over) {
    throw new GraphQLError(`Query too complex: ${over}`, {
      extensions: { code: 'QUERY_TOO_COMPLEX', cost: { requested: measured.cost, limit: limits.maxCost }, http: { status: 400 } },
    });
  }
}
