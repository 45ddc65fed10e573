import { GraphQLError } from 'graphql';
import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../graphql/context.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { findReaderFor } from '../readers/readers.service.js';
import { MINIMUM_GROUP_SIZE, ridershipFor, setTerminalLocation } from './ridership.service.js';
import { AnalyticsInputError, checkedPeriod, checkedTransferWindow } from './analytics-input.js';
import { OriginDestinationLevelEnum, OriginDestinationMatrixType, OriginDestinationPairType, RidershipGroupingEnum, RidershipGroupType, RidershipType, SetTerminalLocationInput, SetTerminalLocationPayload } from './analytics.types.js';
import { originDestinationFor } from './origin-destination.service.js';

/** Bad arguments as GraphQL's BAD_USER_INPUT. */
function argued<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof AnalyticsInputError) throw new GraphQLError(err.message, { extensions: { code: 'BAD_USER_INPUT' } });
    throw err;
  }
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
    const { from: first, to: last } = argued(() => checkedPeriod(from, to));
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

  @Authorized('OPERATOR', 'ISSUER', 'settlements:read')
  @Query(() => OriginDestinationMatrixType, { nullable: true, description: 'Where a city’s riders go between two business days: pairs of a rider’s consecutive taps within the transfer window (a tap-in and tap-out along a line, or a transfer to another line), with trips and distinct riders, pairs of fewer than minimumGroupSize riders left out. The operator, or the card company of the city (scope settlements:read); another city answers null.' })
  async originDestination(
    @Arg('city', () => ID, { description: 'Global id of the City.' }) city: string,
    @Arg('from', { description: 'The first business day, YYYY-MM-DD.' }) from: string,
    @Arg('to', { description: 'The last business day (inclusive), YYYY-MM-DD, at most 366 days after from.' }) to: string,
    @Arg('level', () => OriginDestinationLevelEnum, { description: 'Whether places are lines or stops.' }) level: OriginDestinationLevelEnum,
    @Arg('transferWindowMinutes', () => Int, { defaultValue: 30, description: 'The longest time from a tap to the same rider’s next one that still makes a pair, 1 to 240 minutes (inclusive).' }) transferWindowMinutes: number,
    @Ctx() ctx: GraphQLContext,
  ): Promise<OriginDestinationMatrixType | null> {
    const period = argued(() => checkedPeriod(from, to));
    const window = argued(() => checkedTransferWindow(transferWindowMinutes));
    const found = await originDestinationFor(ctx.em, ctx.principal!, { cityId: fromGlobalId(city, 'City').id, ...period, level, transferWindowMinutes: window });
    if (!found) return null;
    return Object.assign(new OriginDestinationMatrixType(), {
      city: toGlobalId('City', found.cityId),
      ...period,
      level,
      transferWindowMinutes: window,
      minimumGroupSize: MINIMUM_GROUP_SIZE,
      pairs: found.pairs.map((p) => Object.assign(new OriginDestinationPairType(), p)),
      suppressedPairs: found.suppressedPairs,
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
