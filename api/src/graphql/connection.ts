import { GraphQLError } from 'graphql';
import { ArgsType, type ClassType, Field, Int, ObjectType } from 'type-graphql';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

@ObjectType({ description: 'Where a page of a connection stands (Relay cursor connections).' })
export class PageInfo {
  @Field({ description: 'True when another page follows: pass `endCursor` as `after` to get it.' })
  hasNextPage!: boolean;

  @Field({ description: 'Always false: connections page forward only.' })
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true, description: 'The cursor of the first edge of this page; null when the page is empty.' })
  startCursor!: string | null;

  @Field(() => String, { nullable: true, description: 'The cursor of the last edge of this page: pass it as `after` for the next page; null when the page is empty.' })
  endCursor!: string | null;
}

@ArgsType()
export class ConnectionArgs {
  @Field(() => Int, { nullable: true, description: `Page size, 1 to ${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE}).` })
  first?: number | null;

  @Field(() => String, { nullable: true, description: 'The `endCursor` of the previous page.' })
  after?: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface ConnectionShape<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
}

/** Declares `<Name>Connection` and `<Name>Edge` for a node type. */
export function connectionType<T extends object>(nodeType: ClassType<T>, name: string): ClassType<ConnectionShape<T>> {
  @ObjectType(`${name}Edge`, { description: `An edge to a ${name}.` })
  class EdgeType {
    @Field({ description: 'Opaque; pass it as `after` to continue after this edge.' })
    cursor!: string;

    @Field(() => nodeType, { description: `The ${name} at this edge.` })
    node!: T;
  }

  @ObjectType(`${name}Connection`, { description: `A page of ${name} objects.` })
  class ConnectionType {
    @Field(() => [EdgeType], { description: 'The edges of this page, in the connection’s order; empty when there is nothing (more).' })
    edges!: EdgeType[];

    @Field(() => PageInfo, { description: 'Whether another page follows, and the cursor to continue after.' })
    pageInfo!: PageInfo;
  }
  return ConnectionType;
}

/** A keyset position: the sort value of a row and its id as the tie-breaker. */
export interface PagePosition {
  sortKey: string;
  id: string;
}

export interface PageRequest {
  /** Rows to fetch: one more than the page, to learn whether another page follows. */
  fetch: number;
  first: number;
  after: PagePosition | null;
}

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

function encodeCursor(position: PagePosition): string {
  return Buffer.from(JSON.stringify([position.sortKey, position.id])).toString('base64url');
}

function decodeCursor(cursor: string): PagePosition {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((p) => typeof p === 'string')) return { sortKey: parsed[0], id: parsed[1] };
  } catch {
    // falls through to the error below
  }
  throw badInput('`after` is not a cursor this connection gave out');
}

/** Validates `first`/`after` into what a service needs for a keyset query. */
export function pageRequest(args: ConnectionArgs): PageRequest {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) throw badInput(`\`first\` must be between 1 and ${MAX_PAGE_SIZE}`);
  return { first, fetch: first + 1, after: args.after ? decodeCursor(args.after) : null };
}

/** Turns the rows of a keyset query (fetched with `request.fetch`) into a connection page. */
export function toConnection<R, T>(rows: R[], request: PageRequest, positionOf: (row: R) => PagePosition, toNode: (row: R) => T): ConnectionShape<T> {
  const page = rows.slice(0, request.first);
  const edges = page.map((row) => ({ cursor: encodeCursor(positionOf(row)), node: toNode(row) }));
  return {
    edges,
    pageInfo: Object.assign(new PageInfo(), {
      hasNextPage: rows.length > request.first,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    }),
  };
}
