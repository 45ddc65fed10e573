import { Arg, Ctx, Field, ID, ObjectType, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from './context.js';
import { fromGlobalId } from './global-id.js';
import { Node, nodeLoaders } from './node.js';
import { DateTimeScalar } from './scalars.js';

export const API_VERSION = '0.1.0';

@ObjectType({ description: 'About this OneCard deployment. Public.' })
class ServerInfo {
  @Field({ description: 'Version of the API.' })
  version!: string;

  @Field({ description: 'The base URL links and the OAuth issuer are built on.' })
  publicUrl!: string;

  @Field(() => DateTimeScalar, { description: 'The server clock, so a client can spot skew before it signs requests.' })
  time!: Date;

  @Field({ description: 'Whether this is a sandbox (any environment but production): test cards, the sandbox payment gateway, `onecard trigger`.' })
  sandbox!: boolean;
}

@Resolver()
export class RootResolver {
  @Query(() => ServerInfo, { description: 'Version, public URL and clock of this deployment. Public: needs no token.' })
  serverInfo(@Ctx() ctx: GraphQLContext): ServerInfo {
    return { version: API_VERSION, publicUrl: ctx.config.publicUrl, time: new Date(), sandbox: ctx.config.env !== 'production' };
  }

  @Query(() => Node, { nullable: true, description: 'Any object by its global id; null when it does not exist or is not yours.' })
  async node(@Arg('id', () => ID, { description: 'A global id, as returned in any `id` field.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<object | null> {
    const { type, id: internal } = fromGlobalId(id);
    const load = nodeLoaders.get(type);
    return load ? load(ctx, internal) : null;
  }
}
