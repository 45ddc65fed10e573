import type { EntityManager } from '@mikro-orm/postgresql';
import type { NoticedCache } from '../../db/noticed-cache.js';
import { type CardProfile, type CardProfileInput, CardProfileRefused, DEFAULT_CARD_PROFILE, type M1Layout, mergedSelection, profileProblems, type SelectionStep } from './card-profile.js';

/** Card profiles as rows (table `card_profile`): read by the engine each session, set by a card company or the operator. */

interface ProfileRow {
  id: string;
  card_company_id: string;
  product: string | null;
  selection: SelectionStep[];
  load_key_index: number;
  purchase_key_index: number;
  algorithm_ids: number[];
  public_data_sfi: number;
  transaction_log_sfi: number;
  m1: M1Layout;
  tolerated_status_words: string[];
  updated_at: Date;
}

export type StoredCardProfile = CardProfile & { updatedAt: Date | null };

const fromRow = (r: ProfileRow): StoredCardProfile => ({
  id: r.id,
  cardCompanyId: r.card_company_id,
  product: r.product,
  selection: r.selection,
  loadKeyIndex: r.load_key_index,
  purchaseKeyIndex: r.purchase_key_index,
  algorithmIds: r.algorithm_ids.map(Number),
  publicDataSfi: r.public_data_sfi,
  transactionLogSfi: r.transaction_log_sfi,
  m1: r.m1,
  toleratedStatusWords: r.tolerated_status_words,
  updatedAt: r.updated_at,
});

/**
 * A card company's profiles, its own (product null) first; the built-in default when it has set
 * none. With `reads` (the card-session requests' cache, session-reads.ts): read once per process
 * until card_profile changes (its notice). Callers must not change what they get.
 */
export async function profilesOf(em: EntityManager, cardCompanyId: string, reads?: NoticedCache): Promise<readonly StoredCardProfile[]> {
  const read = async () => {
    const rows = await em.execute<ProfileRow[]>(`select * from card_profile where card_company_id = ? order by product nulls first`, [cardCompanyId]);
    const profiles = rows.map(fromRow);
    if (!profiles.some((p) => p.product === null)) profiles.unshift({ ...DEFAULT_CARD_PROFILE, cardCompanyId, updatedAt: null });
    return { value: profiles, keep: true };
  };
  return reads ? reads.get(`profiles:${cardCompanyId}`, read) : (await read()).value;
}

/**
 * What a reader's first batch uses before the card is known: the card company of the reader's
 * city (its key indexes, files and tolerances), selecting in the order of its profiles, then of the
 * card companies whose cards the city accepts (互联互通), so their cards are found too. The
 * card's own profile then applies (steps/cpu.ts).
 */
export async function profileForReaderCity(em: EntityManager, cityId: string, reads?: NoticedCache): Promise<CardProfile> {
  const read = async () => ({ value: await readProfileForReaderCity(em, cityId), keep: true });
  // Kept until card_profile, card_company or city_interoperation changes (their notices).
  return reads ? reads.get(`reader-city-profile:${cityId}`, read) : (await read()).value;
}

async function readProfileForReaderCity(em: EntityManager, cityId: string): Promise<CardProfile> {
  // One query for every hello: the companies in order (the city's own first), each with its rows.
  const rows = await em.execute<(Partial<ProfileRow> & { company_id: string })[]>(
    `select cc.id as company_id, p.*
       from card_company cc left join card_profile p on p.card_company_id = cc.id
      where cc.city_id = ? or cc.city_id in (select card_city_id from city_interoperation where reader_city_id = ?)
      order by (cc.city_id = ?) desc, cc.id, p.product nulls first`,
    [cityId, cityId, cityId],
  );
  const byCompany = new Map<string, CardProfile[]>();
  for (const row of rows) {
    const profiles = byCompany.get(row.company_id) ?? [];
    if (row.id) profiles.push(fromRow(row as ProfileRow));
    byCompany.set(row.company_id, profiles);
  }
  const all = [...byCompany].map(([cardCompanyId, profiles]) => (profiles.some((p) => p.product === null) ? profiles : [{ ...DEFAULT_CARD_PROFILE, cardCompanyId }, ...profiles]));
  const home = all[0]?.[0] ?? DEFAULT_CARD_PROFILE;
  // The SELECT and public data answers come before the card is known: any warning one of these profiles tolerates is read.
  const tolerated = [...new Set(all.flat().flatMap((p) => p.toleratedStatusWords))];
  return { ...home, selection: mergedSelection(all.flat()), toleratedStatusWords: tolerated };
}

export { type CardProfileInput, CardProfileRefused } from './card-profile.js';

/** Sets (creates or replaces) the profile of a card company, or of one of its products. Validated first: nothing is written when refused. */
export async function setCardProfile(em: EntityManager, cardCompanyId: string, input: CardProfileInput): Promise<StoredCardProfile> {
  const problems = profileProblems(input);
  if (problems.length) throw new CardProfileRefused(problems);
  const [row] = await em.execute<ProfileRow[]>(
    `insert into card_profile (card_company_id, product, selection, load_key_index, purchase_key_index, algorithm_ids, public_data_sfi, transaction_log_sfi, m1, tolerated_status_words)
     values (?, ?, ?::jsonb, ?, ?, ?::int[], ?, ?, ?::jsonb, ?::text[])
     on conflict (card_company_id, coalesce(product, '')) do update set
       selection = excluded.selection, load_key_index = excluded.load_key_index, purchase_key_index = excluded.purchase_key_index,
       algorithm_ids = excluded.algorithm_ids, public_data_sfi = excluded.public_data_sfi, transaction_log_sfi = excluded.transaction_log_sfi,
       m1 = excluded.m1, tolerated_status_words = excluded.tolerated_status_words, updated_at = now()
     returning *`,
    [
      cardCompanyId,
      input.product,
      JSON.stringify(input.selection),
      input.loadKeyIndex,
      input.purchaseKeyIndex,
      `{${input.algorithmIds.join(',')}}`,
      input.publicDataSfi,
      input.transactionLogSfi,
      JSON.stringify(input.m1),
      `{${input.toleratedStatusWords.join(',')}}`,
    ],
  );
  return fromRow(row!);
}

/** Today's behaviour written as a card company's row (the demo seed; the migration does the same for companies that existed). */
export async function seedDefaultProfile(em: EntityManager, cardCompanyId: string): Promise<void> {
  const d = DEFAULT_CARD_PROFILE;
  await em.execute(
    `insert into card_profile (card_company_id, product, selection, load_key_index, purchase_key_index, algorithm_ids, public_data_sfi, transaction_log_sfi, m1, tolerated_status_words)
     values (?, null, ?::jsonb, ?, ?, ?::int[], ?, ?, ?::jsonb, '{}') on conflict do nothing`,
    [cardCompanyId, JSON.stringify(d.selection), d.loadKeyIndex, d.purchaseKeyIndex, `{${d.algorithmIds.join(',')}}`, d.publicDataSfi, d.transactionLogSfi, JSON.stringify(d.m1)],
  );
}
