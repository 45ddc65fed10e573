import { Field, ID, InterfaceType } from 'type-graphql';
import type { GraphQLContext } from './context.js';

@InterfaceType({ description: 'An object with a global id, fetchable with `node(id)`.' })
export abstract class Node {
  @Field(() => ID, { description: 'Global, opaque id.' })
  id!: string;
}

/** Loads one object of a type by its internal id, with the same ownership checks as its own query. */
export type NodeLoader = (ctx: GraphQLContext, id: string) => Promise<object | null>;

/** Each context registers the loaders of its node types here (in its resolver module). */
export const nodeLoaders = new Map<string, NodeLoader>();
