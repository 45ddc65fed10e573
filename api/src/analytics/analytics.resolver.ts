import { GraphQLError } from 'graphql';
import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../graphql/context.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { findReaderFor } from '../readers/readers.service.js';
import { MINIMUM_GROUP_SIZE, ridershipFor, setTerminalLocation } from './ridership.service.js';
import { RidershipGroupingEnum, RidershipGroupType, RidershipType, SetTerminalLocationInput, SetTerminalLocationPayload } from './analytics.types.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function day(value: string, name: string): string {
  if (!DAY.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) throw new GraphQLError(`\`${name}\` is a date YYYY-MM-DD`, { extensions: { code: 'BAD_USER_INPUT' } });
  return value;
}

/** Ridership analytics (issue 25 item 3): for the card company of the city and the operator only. */
@Resolver()
export class AnalyticsResolver {
  @Authorized('OPERATOR', 'ISSUER', 'settlements:read')
  @Query(() => RidershipType, { nullable: true, description: 'A city’s ridership between two business days, by line, stop, hour or day: rides, distinct riders and fares, groups of fewer than minimumGroupSize riders left out. The operator, or the card company of the city (scope settlements:read); another city answers null.' })
  async ridership(
    @Arg('city', () => ID, { description: 'Global id of the City.' }) city: string,
    @Arg('from', { description: 'The first business day, YYYY-MM-DD.' }) from: string,
    @Arg('to', { description: 'The last business day (inclusive), YYYY-MM-DD, at most 366 days after from.' }) to: string,
    @Arg('groupBy', () => RidershipGroupingEnum, { description: 'How to group.' }) groupBy: RidershipGroupingEnum,
    @Ctx() ctx: GraphQLContext,
  ): Promise<RidershipType | null> {
    const [first, last] = [day(from, 'from'), day(to, 'to')];
    const span = (Date.parse(last) - Date.parse(first)) / 86_400_000;
    if (span < 0 || span > 366) throw new GraphQLError('`to` is from to 366 days after `from`', { extensions: { code: 'BAD_USER_INPUT' } });
    const found = await ridershipFor(ctx.em, ctx.principal!, { cityId: fromGlobalId(city, 'City').id, from: first, to: last, groupBy });
    if (!found) return null;
    return Object.assign(new RidershipType(), {
      city: toGlobalId('City', found.cityId),
      from: first,
      to: last,
      groupBy,
      minimumGroupSize: MINIMUM_GROUP_SIZE,
      groups: found.groups.map((g) => Object.assign(new RidershipGroupType(), { key: g.key, rides: g.rides, riders: g.riders, fares: Money.of(g.fares, found.currency) })),
      suppressedGroups: found.suppressedGroups,
    });
  }

  @Authorized('OPERATOR', 'ISSUER', 'readers:manage')
  @Mutation(() => SetTerminalLocationPayload, { description: 'Sets the line, stop and vehicle of a terminal, for ridership analytics. The operator, or the card company of its city; scope readers:manage.' })
  async setTerminalLocation(@Arg('input', () => SetTerminalLocationInput, { description: 'The terminal and where it stands.' }) input: SetTerminalLocationInput, @Ctx() ctx: GraphQLContext): Promise<SetTerminalLocationPayload> {
    const reader = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.reader, 'Reader').id);
    if (!reader) return { reader: null, userErrors: [userError(UserErrorCode.NOT_FOUND, `no reader ${input.reader} you manage`, ['input', 'reader'])] };
    return withUserErrors<SetTerminalLocationPayload>(async () => {
      await setTerminalLocation(ctx.em, reader.id, { line: input.line ?? null, stop: input.stop ?? null, vehicle: input.vehicle ?? null });
      return { reader: toGlobalId('Reader', reader.id), userErrors: [] };
    }, { reader: null });
  }
}
