import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { MINIMUM_GROUP_SIZE } from './ridership.service.js';
import { analyticsCityFor, analyticsQuery, LINE_OF, STOP_OF, tapsParams, WITH_TAPS } from './ride-taps.js';

/**
 * The origin–destination matrix (起讫点, issue 25 item 3): where riders go, from consecutive taps of
 * the same rider. Each booked tap is paired with the rider's next tap when it comes within the
 * transfer window (inclusive) at another stop: a tap-in and tap-out on one line is a ride along it,
 * a next tap on another line is a transfer. Two taps at the same stop (a re-entry, a second
 * validator) are no trip. One set-based statement (LEAD over the rider's taps by time); pairs with
 * fewer distinct riders than MINIMUM_GROUP_SIZE are left out and counted, as ridership groups are.
 */

export type OriginDestinationLevel = 'LINE' | 'STOP';

/** The widest transfer window asked for: beyond it a "next tap" is a later journey, not this one. */
export const MAX_TRANSFER_WINDOW_MINUTES = 240;

export interface OriginDestinationPairRow {
  origin: string;
  destination: string;
  transfer: boolean;
  trips: number;
  riders: number;
}

export interface OriginDestination {
  cityId: string;
  pairs: OriginDestinationPairRow[];
  suppressedPairs: number;
}

const PLACE: Record<OriginDestinationLevel, (t: string) => string> = { LINE: LINE_OF, STOP: STOP_OF };

/** The statement of originDestinationFor (parameters: tapsParams(), then the window in minutes), and of the benchmark. */
export const originDestinationSql = (level: OriginDestinationLevel) => `${WITH_TAPS},
  placed as (
    select taps.rider, taps.local_at, ${LINE_OF('taps')} as line, ${STOP_OF('taps')} as stop, ${PLACE[level]('taps')} as place,
           lead(taps.local_at) over rider_taps as next_at, lead(${LINE_OF('taps')}) over rider_taps as next_line,
           lead(${STOP_OF('taps')}) over rider_taps as next_stop, lead(${PLACE[level]('taps')}) over rider_taps as next_place
      from taps
    window rider_taps as (partition by taps.rider order by taps.local_at, taps.tap_id)
  )
  select place as origin, next_place as destination, bool_or(line <> next_line) as transfer,
         count(*)::text as trips, count(distinct rider)::text as riders
    from placed
   where next_at <= local_at + make_interval(mins => ?::int) and next_stop <> stop
   group by 1, 2 order by 1, 2`;

/**
 * A city's origin–destination pairs between two business days (inclusive; both taps of a pair in
 * them). The operator sees every city; a card company its own (another city answers null).
 */
export async function originDestinationFor(
  em: EntityManager,
  principal: Principal,
  input: { cityId: string; from: string; to: string; level: OriginDestinationLevel; transferWindowMinutes: number },
): Promise<OriginDestination | null> {
  const city = await analyticsCityFor(em, principal, input.cityId);
  if (!city) return null;
  const rows = await analyticsQuery<{ origin: string; destination: string; transfer: boolean; trips: string; riders: string }>(em, originDestinationSql(input.level), [
    ...tapsParams(city, input.from, input.to),
    input.transferWindowMinutes,
  ]);
  const shown = rows.filter((r) => Number(r.riders) >= MINIMUM_GROUP_SIZE);
  return {
    cityId: city.id,
    pairs: shown.map((r) => ({ origin: r.origin, destination: r.destination, transfer: r.transfer, trips: Number(r.trips), riders: Number(r.riders) })),
    suppressedPairs: rows.length - shown.length,
  };
}
