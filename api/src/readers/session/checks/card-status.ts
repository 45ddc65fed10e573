import type { EntityManager } from '@mikro-orm/postgresql';
import type { ReaderRow } from '../../readers.service.js';
import type { SessionDeps } from '../step.js';
import { SessionError } from '../session.errors.js';
import type { SeenCounters } from './counters.js';

export interface CardIssuer {
  cityId: string;
  cardCompanyId: string;
  currency: string;
}

/**
 * The card's city code names a card company, and the reader's city accepts that city's cards.
 * Given the card's ASN, the same statement reads the highest counters it has proved (null: none
 * yet), for the counters check (checks/counters.ts) to use without reading them again.
 */
export async function checkCardIssuer(em: EntityManager, reader: ReaderRow, cityCode: string, asn?: string): Promise<CardIssuer & { counters?: SeenCounters | null }> {
  const [issuer] = await em.execute<{ city_id: string; card_company_id: string; currency: string; online_counter: number | null; offline_counter: number | null; counted: boolean }[]>(
    `select c.id as city_id, cc.id as card_company_id, c.currency, k.online_counter, k.offline_counter, k.asn is not null as counted
       from city c join card_company cc on cc.city_id = c.id left join card_counter k on k.asn = ?
      where c.card_city_code = ?`,
    [asn ?? null, cityCode],
  );
  if (!issuer) throw new SessionError('UNKNOWN_CARD_ISSUER', `no card company for city code ${cityCode}`).at('card-status');
  if (issuer.city_id !== reader.city_id) {
    const [allowed] = await em.execute(`select 1 from city_interoperation where card_city_id = ? and reader_city_id = ?`, [issuer.city_id, reader.city_id]);
    if (!allowed) throw new SessionError('CROSS_CITY_NOT_ALLOWED', 'this reader’s city does not accept cards of the card’s city').at('card-status');
  }
  const counters = asn === undefined ? undefined : issuer.counted ? { online_counter: issuer.online_counter!, offline_counter: issuer.offline_counter! } : null;
  return { cityId: issuer.city_id, cardCompanyId: issuer.card_company_id, currency: issuer.currency.trim(), ...(counters !== undefined ? { counters } : {}) };
}

/**
 * A card the card company has declared LOST, BLOCKED, REPLACED or EXPIRED is refused online at once,
 * before any cryptogram leaves the host. A card the registry does not know yet (issued before it
 * existed) is served as before.
 */
export async function checkCardUsable(em: EntityManager, deps: Pick<SessionDeps, 'cardStatus'>, asn: string): Promise<void> {
  const status = await deps.cardStatus(em, asn);
  if (status !== null && status !== 'ACTIVE') throw new SessionError('CARD_NOT_USABLE', `the card is ${status}`).at('card-status');
}
