import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Money } from '../graphql/money.js';
import { UserError } from '../graphql/user-error.js';

export enum RidershipGroupingEnum {
  LINE = 'LINE',
  STOP = 'STOP',
  HOUR = 'HOUR',
  DAY = 'DAY',
}
registerEnumType(RidershipGroupingEnum, {
  name: 'RidershipGrouping',
  description: 'How ridership is grouped.',
  valuesConfig: {
    LINE: { description: 'By the line of the terminal (setTerminalLocation); “(no line)” for terminals without one.' },
    STOP: { description: 'By line and stop, “<line> / <stop>”.' },
    HOUR: { description: 'By hour of the day in the city’s time zone, “00” to “23”.' },
    DAY: { description: 'By business day in the city’s time zone, YYYY-MM-DD.' },
  },
});

@ObjectType('RidershipGroup', { description: 'Rides in one group: aggregates only, never a rider.' })
export class RidershipGroupType {
  @Field({ description: 'The group: a line, “<line> / <stop>”, an hour “HH” or a day YYYY-MM-DD.' })
  key!: string;

  @Field(() => Int, { description: 'Booked rides (QR rides and offline card fares).' })
  rides!: number;

  @Field(() => Int, { description: 'Distinct riders (transit wallets and cards); never fewer than minimumGroupSize.' })
  riders!: number;

  @Field(() => Money, { description: 'The fares booked.' })
  fares!: Money;
}

@ObjectType('Ridership', { description: 'A city’s ridership over business days, from what its terminals uploaded and the ledger booked (docs/analytics.md).' })
export class RidershipType {
  @Field(() => ID, { description: 'Global id of the City.' })
  city!: string;

  @Field({ description: 'The first business day, YYYY-MM-DD.' })
  from!: string;

  @Field({ description: 'The last business day (inclusive), YYYY-MM-DD.' })
  to!: string;

  @Field(() => RidershipGroupingEnum, { description: 'How the groups are made.' })
  groupBy!: RidershipGroupingEnum;

  @Field(() => Int, { description: 'The fewest distinct riders a group shows: smaller groups are left out, so no group points at one person’s trips.' })
  minimumGroupSize!: number;

  @Field(() => [RidershipGroupType], { description: 'The groups with at least minimumGroupSize riders, by key.' })
  groups!: RidershipGroupType[];

  @Field(() => Int, { description: 'How many groups were left out for having fewer riders than minimumGroupSize.' })
  suppressedGroups!: number;
}

export enum OriginDestinationLevelEnum {
  LINE = 'LINE',
  STOP = 'STOP',
}
registerEnumType(OriginDestinationLevelEnum, {
  name: 'OriginDestinationLevel',
  description: 'What an origin and a destination are in the origin–destination matrix.',
  valuesConfig: {
    LINE: { description: 'A line, as ridership by LINE.' },
    STOP: { description: 'A stop, “<line> / <stop>”, as ridership by STOP.' },
  },
});

@ObjectType('OriginDestinationPair', { description: 'Trips from one place to another: aggregates only, never a rider.' })
export class OriginDestinationPairType {
  @Field({ description: 'Where the trips began: the place of a rider’s tap.' })
  origin!: string;

  @Field({ description: 'Where they went: the place of the same rider’s next tap, within the transfer window, at another stop.' })
  destination!: string;

  @Field({ description: 'True when the next tap was on another line (a transfer); false for a tap-in and tap-out along one line.' })
  transfer!: boolean;

  @Field(() => Int, { description: 'Pairs of consecutive taps from origin to destination.' })
  trips!: number;

  @Field(() => Int, { description: 'Distinct riders (transit wallets and cards) who made them; never fewer than minimumGroupSize.' })
  riders!: number;
}

@ObjectType('OriginDestinationMatrix', { description: 'Where a city’s riders go: pairs of a rider’s consecutive taps within a transfer window, from what its terminals uploaded (docs/analytics.md).' })
export class OriginDestinationMatrixType {
  @Field(() => ID, { description: 'Global id of the City.' })
  city!: string;

  @Field({ description: 'The first business day, YYYY-MM-DD.' })
  from!: string;

  @Field({ description: 'The last business day (inclusive), YYYY-MM-DD.' })
  to!: string;

  @Field(() => OriginDestinationLevelEnum, { description: 'Whether places are lines or stops.' })
  level!: OriginDestinationLevelEnum;

  @Field(() => Int, { description: 'The longest time, in minutes, from a tap to the next one of the same rider that still makes a pair (inclusive).' })
  transferWindowMinutes!: number;

  @Field(() => Int, { description: 'The fewest distinct riders a pair shows: smaller pairs are left out, so no pair points at one person’s trips.' })
  minimumGroupSize!: number;

  @Field(() => [OriginDestinationPairType], { description: 'The pairs with at least minimumGroupSize riders, by origin then destination.' })
  pairs!: OriginDestinationPairType[];

  @Field(() => Int, { description: 'How many pairs were left out for having fewer riders than minimumGroupSize.' })
  suppressedPairs!: number;
}

@InputType({ description: 'Where a terminal stands, for ridership analytics.' })
export class SetTerminalLocationInput {
  @Field(() => ID, { description: 'Global id of the terminal (a Reader).' })
  reader!: string;

  @Field(() => String, { nullable: true, description: 'Its line (a bus route, a metro line), 1 to 100 characters; null clears it.' })
  line?: string | null;

  @Field(() => String, { nullable: true, description: 'Its stop or station, 1 to 100 characters; null clears it.' })
  stop?: string | null;

  @Field(() => String, { nullable: true, description: 'The vehicle of a bus validator, 1 to 100 characters; null clears it.' })
  vehicle?: string | null;
}

@ObjectType({ description: 'The result of setTerminalLocation.' })
export class SetTerminalLocationPayload {
  @Field(() => ID, { nullable: true, description: 'Global id of the terminal; null when refused.' })
  reader!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}
