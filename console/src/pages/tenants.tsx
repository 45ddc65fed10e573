/**
 * Operator: the tenants (docs/tenancy.md): the fee plans; the cities with their card company,
 * currency and time zone; the merchants, a keyset page at a time, each time shown in its own city's
 * zone; a new city (with its card company), merchant or biller, each refusal of the API shown in the
 * form; and Edit on each city, merchant and biller, its refusals beside their field.
 */
import {
  type BillerKind,
  BillersDocument,
  CitiesDocument,
  CityDocument,
  CreateBillerDocument,
  CreateCityDocument,
  CreateMerchantDocument,
  MerchantsDocument,
  type TenantStatus,
  UpdateBillerDocument,
  UpdateCityDocument,
  UpdateMerchantDocument,
} from '@onecard/sdk/browser';
import { useMemo, useState } from 'preact/hooks';
import { Field, FormOutcome, SaveOrCancel, type Sent, useFieldForm, useFocusOnOpen } from '../fields.tsx';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, useLoad, type UserErrorView, UserErrors } from '../ui.tsx';
import { FeePlans } from './fee-plans.tsx';

export function TenantsPage() {
  const [changed, setChanged] = useState(0);
  const cities = usePaged((after) => apiClient().execute(CitiesDocument, { first: 50, after }), 'cities', [changed]);
  const cityList = cities.list.data?.cities;
  // Each tenant's times in its own city's zone.
  const zoneOf = useMemo(() => new Map(cityList?.edges.map((e) => [e.node.id, e.node.timeZone]) ?? []), [cityList]);
  const merchants = usePaged((after) => apiClient().execute(MerchantsDocument, { first: 20, after }), 'merchants', [changed]);
  const billers = usePaged((after) => apiClient().execute(BillersDocument, { first: 20, after }), 'billers', [changed]);
  const made = () => setChanged((n) => n + 1);
  // The one row whose Edit form is open.
  const [editing, setEditing] = useState<Editing | null>(null);
  const close = () => setEditing(null);
  const editButton = (open: Editing, name: string) => (
    <button type="button" class="link" onClick={() => setEditing(open)} aria-label={t('editNamed', { name })}>
      {t('edit')}
    </button>
  );
  return (
    <>
      <FeePlans />
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
            { header: t('actions'), cell: (c) => editButton({ what: 'city', id: c.id }, c.name) },
          ]}
        />
        {editing?.what === 'city' ? <EditCity key={editing.id} id={editing.id} onSaved={made} onClose={close} /> : null}
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
            { header: t('actions'), cell: (m) => editButton({ what: 'merchant', id: m.id, name: m.name, status: m.status }, m.name) },
          ]}
        />
        {editing?.what === 'merchant' ? <EditTenant key={editing.id} tenant={editing} onSaved={made} onClose={close} /> : null}
      </Section>
      <Section title={t('billers')} id="billers-title">
        <PagedTable
          id="billers"
          paged={billers}
          connection={billers.list.data?.billers}
          rowKey={(b) => b.id}
          rowAttrs={(b) => ({ 'data-biller': b.name })}
          columns={[
            { header: t('name'), rowHeader: true, cell: (b) => b.name },
            { header: t('kind'), cell: (b) => b.kind },
            { header: t('city'), cell: (b) => b.city.code },
            { header: t('currency'), cell: (b) => b.currency },
            { header: t('status'), cell: (b) => <Status value={b.status} /> },
            { header: t('actions'), cell: (b) => editButton({ what: 'biller', id: b.id, name: b.name, status: b.status }, b.name) },
          ]}
        />
        {editing?.what === 'biller' ? <EditTenant key={editing.id} tenant={editing} onSaved={made} onClose={close} /> : null}
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

type Editing = { what: 'city'; id: string } | { what: 'merchant' | 'biller'; id: string; name: string; status: TenantStatus };

/** A city's name, its card company's name and its time zone (updateCity); code and currency never change. */
function EditCity({ id, onSaved, onClose }: { id: string; onSaved(): void; onClose(): void }) {
  // The list has no card company; the city itself does.
  const city = useLoad(() => apiClient().execute(CityDocument, { id }), [id]).data?.city;
  const { outcome, submit } = useFieldForm(
    ['name', 'cardCompanyName', 'timeZone'],
    async (data): Promise<Sent> => {
      const r = await apiClient().mutate(UpdateCityDocument, { input: { city: id, name: text(data, 'name'), cardCompanyName: text(data, 'cardCompanyName'), timeZone: text(data, 'timeZone') } });
      return r.ok ? { done: t('citySaved', { code: r.data.updateCity.city!.code }) } : { userErrors: r.userErrors };
    },
    onSaved,
  );
  if (!city) return null;
  return (
    <form onSubmit={submit} aria-labelledby="edit-city-title" id="edit-city">
      <h3 id="edit-city-title">{t('editNamed', { name: `${city.code} · ${city.name}` })}</h3>
      <FocusFirst id="edit-city-name" />
      <div class="filters">
        <Field id="edit-city-name" name="name" label={t('name')} outcome={outcome} required maxLength={200} defaultValue={city.name} />
        <Field id="edit-city-card-company" name="cardCompanyName" label={t('cardCompanyName')} outcome={outcome} required maxLength={200} defaultValue={city.cardCompany?.name ?? ''} />
        <Field id="edit-city-time-zone" name="timeZone" label={t('timeZone')} outcome={outcome} required defaultValue={city.timeZone} />
        <SaveOrCancel id="edit-city-save" onClose={onClose} />
      </div>
      <FormOutcome outcome={outcome} id="city-saved" />
    </form>
  );
}

/** Focuses a field once it is on the page (a form that waits for its data renders later). */
function FocusFirst({ id }: { id: string }) {
  useFocusOnOpen(id);
  return null;
}

const STATUSES: TenantStatus[] = ['ACTIVE', 'SUSPENDED'];

/** A merchant's or a biller's name and status (updateMerchant, updateBiller): SUSPENDED stops new payments. */
function EditTenant({ tenant, onSaved, onClose }: { tenant: Extract<Editing, { what: 'merchant' | 'biller' }>; onSaved(): void; onClose(): void }) {
  const prefix = `edit-${tenant.what}`;
  useFocusOnOpen(`${prefix}-name`);
  const { outcome, submit } = useFieldForm(
    ['name', 'status'],
    async (data): Promise<Sent> => {
      const changes = { name: text(data, 'name'), status: text(data, 'status') as TenantStatus };
      if (tenant.what === 'merchant') {
        const r = await apiClient().mutate(UpdateMerchantDocument, { input: { merchant: tenant.id, ...changes } });
        return r.ok ? { done: t('merchantSaved', { name: r.data.updateMerchant.merchant!.name }) } : { userErrors: r.userErrors };
      }
      const r = await apiClient().mutate(UpdateBillerDocument, { input: { biller: tenant.id, ...changes } });
      return r.ok ? { done: t('billerSaved', { name: r.data.updateBiller.biller!.name }) } : { userErrors: r.userErrors };
    },
    onSaved,
  );
  return (
    <form onSubmit={submit} aria-labelledby={`${prefix}-title`} id={prefix}>
      <h3 id={`${prefix}-title`}>{t('editNamed', { name: tenant.name })}</h3>
      <div class="filters">
        <Field id={`${prefix}-name`} name="name" label={t('name')} outcome={outcome} required maxLength={200} defaultValue={tenant.name} />
        <label>
          {t('status')}
          <select id={`${prefix}-status`} name="status" defaultValue={tenant.status}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          {outcome.fieldErrors?.status ? <span class="field-error" role="alert">{outcome.fieldErrors.status}</span> : null}
        </label>
        <SaveOrCancel id={`${prefix}-save`} onClose={onClose} />
      </div>
      <FormOutcome outcome={outcome} id={`${tenant.what}-saved`} />
    </form>
  );
}
