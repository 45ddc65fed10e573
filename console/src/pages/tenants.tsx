/**
 * Operator: the tenants (docs/tenancy.md): the cities with their card company, currency and time
 * zone; the merchants, a keyset page at a time, each time shown in its own city's zone; and a new
 * city (with its card company), merchant or biller, each refusal of the API shown in the form.
 */
import { type BillerKind, BillersDocument, CitiesDocument, CreateBillerDocument, CreateCityDocument, CreateMerchantDocument, MerchantsDocument } from '@onecard/sdk/browser';
import { useMemo, useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors } from '../ui.tsx';

export function TenantsPage() {
  const [changed, setChanged] = useState(0);
  const cities = usePaged((after) => apiClient().execute(CitiesDocument, { first: 50, after }), 'cities', [changed]);
  const cityList = cities.list.data?.cities;
  // Each tenant's times in its own city's zone.
  const zoneOf = useMemo(() => new Map(cityList?.edges.map((e) => [e.node.id, e.node.timeZone]) ?? []), [cityList]);
  const merchants = usePaged((after) => apiClient().execute(MerchantsDocument, { first: 20, after }), 'merchants', [changed]);
  const billers = usePaged((after) => apiClient().execute(BillersDocument, { first: 20, after }), 'billers', [changed]);
  const made = () => setChanged((n) => n + 1);
  return (
    <>
      <Section title={t('cities')} id="cities-title">
        <PagedTable
          id="cities"
          paged={cities}
          connection={cityList}
          rowKey={(c) => c.id}
          rowAttrs={(c) => ({ 'data-city': c.code })}
          columns={[
            { header: t('code'), cell: (c) => <code>{c.code}</code> },
            { header: t('name'), rowHeader: true, cell: (c) => c.name },
            { header: t('currency'), cell: (c) => c.currency },
            { header: t('timeZone'), cell: (c) => c.timeZone },
          ]}
        />
      </Section>
      <NewCity onMade={made} />
      {cityList ? <NewMerchant cities={cityList.edges.map((e) => e.node)} onMade={made} /> : null}
      {cityList ? <NewBiller cities={cityList.edges.map((e) => e.node)} onMade={made} /> : null}
      <Section title={t('merchants')} id="merchants-title">
        <PagedTable
          id="merchants"
          paged={merchants}
          connection={merchants.list.data?.merchants}
          rowKey={(m) => m.id}
          rowAttrs={(m) => ({ 'data-merchant': m.name })}
          columns={[
            { header: t('name'), rowHeader: true, cell: (m) => m.name },
            { header: t('city'), cell: (m) => m.city.code },
            { header: t('currency'), cell: (m) => m.currency },
            { header: t('status'), cell: (m) => <Status value={m.status} /> },
            { header: t('created'), cell: (m) => formatTime(m.createdAt, zoneOf.get(m.city.id)) },
          ]}
        />
      </Section>
      <Section title={t('billers')} id="billers-title">
        <PagedTable
          id="billers"
          paged={billers}
          connection={billers.list.data?.billers}
          rowKey={(b) => b.id}
          columns={[
            { header: t('name'), rowHeader: true, cell: (b) => b.name },
            { header: t('kind'), cell: (b) => b.kind },
            { header: t('city'), cell: (b) => b.city.code },
            { header: t('currency'), cell: (b) => b.currency },
            { header: t('status'), cell: (b) => <Status value={b.status} /> },
          ]}
        />
      </Section>
    </>
  );
}

function NewMerchant({ cities, onMade }: { cities: { id: string; code: string; name: string }[]; onMade(): void }) {
  const [outcome, setOutcome] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown; done?: string }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    try {
      const r = await apiClient().mutate(CreateMerchantDocument, { input: { city: String(data.get('city')), name: String(data.get('name') ?? '').trim() } });
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      setOutcome({ done: t('merchantMade', { name: r.data.createMerchant.merchant!.name }) });
      form.reset();
      onMade();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('newMerchant')} id="new-merchant-title">
      <form class="filters" onSubmit={submit}>
        <label>
          {t('city')}
          <select id="merchant-city" name="city" required>
            {cities.map((c) => (
              <option key={c.id} value={c.id}>
                {c.code} · {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('name')}
          <input id="merchant-name" name="name" required maxLength={200} />
        </label>
        <button type="submit" id="merchant-create">
          {t('create')}
        </button>
      </form>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id="merchant-made">
          {outcome.done}
        </p>
      ) : null}
    </Section>
  );
}

type Outcome = { userErrors?: readonly UserErrorView[]; error?: unknown; done?: string };

/** A form whose submit calls the API: the refusals (userErrors with their codes) shown under it, or what was made. */
function useMaker(make: (data: FormData) => Promise<{ userErrors?: readonly UserErrorView[]; done?: string }>, onMade: () => void) {
  const [outcome, setOutcome] = useState<Outcome>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const form = e.currentTarget as HTMLFormElement;
    try {
      const r = await make(new FormData(form));
      setOutcome(r);
      if (r.done) {
        form.reset();
        onMade();
      }
    } catch (error) {
      setOutcome({ error });
    }
  };
  return { outcome, submit };
}

function Said({ outcome, id }: { outcome: Outcome; id: string }) {
  return (
    <>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id={id}>
          {outcome.done}
        </p>
      ) : null}
    </>
  );
}

const text = (data: FormData, name: string) => String(data.get(name) ?? '').trim();

/** A city and its card company (one per city): code, names, currency, time zone (createCity). */
function NewCity({ onMade }: { onMade(): void }) {
  const { outcome, submit } = useMaker(async (data) => {
    const r = await apiClient().mutate(CreateCityDocument, {
      input: { code: text(data, 'code'), name: text(data, 'name'), cardCompanyName: text(data, 'cardCompany'), currency: text(data, 'currency'), timeZone: text(data, 'timeZone') },
    });
    return r.ok ? { done: t('cityMade', { code: r.data.createCity.city!.code }) } : { userErrors: r.userErrors };
  }, onMade);
  return (
    <Section title={t('newCity')} id="new-city-title">
      <form class="filters" onSubmit={submit}>
        <label>
          {t('code')}
          <input id="city-code" name="code" required placeholder="HZ" />
        </label>
        <label>
          {t('name')}
          <input id="city-name" name="name" required />
        </label>
        <label>
          {t('cardCompanyName')}
          <input id="city-card-company" name="cardCompany" required />
        </label>
        <label>
          {t('currency')}
          <input id="city-currency" name="currency" required defaultValue="CNY" />
        </label>
        <label>
          {t('timeZone')}
          <input id="city-time-zone" name="timeZone" required defaultValue="Asia/Shanghai" />
        </label>
        <button type="submit" id="city-create">
          {t('create')}
        </button>
      </form>
      <Said outcome={outcome} id="city-made" />
    </Section>
  );
}

const BILLER_KINDS: BillerKind[] = ['WATER', 'ELECTRICITY', 'GAS', 'HEATING', 'TELECOM'];

/** A biller (utility) in a city (createBiller). */
function NewBiller({ cities, onMade }: { cities: { id: string; code: string; name: string }[]; onMade(): void }) {
  const { outcome, submit } = useMaker(async (data) => {
    const r = await apiClient().mutate(CreateBillerDocument, { input: { city: text(data, 'city'), name: text(data, 'name'), kind: text(data, 'kind') as BillerKind } });
    return r.ok ? { done: t('billerMade', { name: r.data.createBiller.biller!.name }) } : { userErrors: r.userErrors };
  }, onMade);
  return (
    <Section title={t('newBiller')} id="new-biller-title">
      <form class="filters" onSubmit={submit}>
        <label>
          {t('city')}
          <select id="biller-city" name="city" required>
            {cities.map((c) => (
              <option key={c.id} value={c.id}>
                {c.code} · {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('name')}
          <input id="biller-name" name="name" required maxLength={200} />
        </label>
        <label>
          {t('kind')}
          <select id="biller-kind" name="kind">
            {BILLER_KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" id="biller-create">
          {t('create')}
        </button>
      </form>
      <Said outcome={outcome} id="biller-made" />
    </Section>
  );
}
