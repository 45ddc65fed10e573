/**
 * Operator: the fee plans (docs/tenancy.md), listed by name, made and changed. A rate is typed in
 * per cent ("0.60" for 60 basis points) and fees as amounts ("0.50"); the page turns them into
 * basis points and minor units by digits, never through a float, and says beside the field what
 * it cannot read before anything is sent. The API's refusals land beside their field too.
 */
import { CreateFeePlanDocument, FeePlansDocument, UpdateFeePlanDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { Field, type FieldErrors, FormOutcome, SaveOrCancel, type Sent, useFieldForm, useFocusOnOpen } from '../fields.tsx';
import { basisPointsToPercent, decimalToMinor, formatMoney, minorDigits, minorToDecimal, percentToBasisPoints } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';

interface Plan {
  id: string;
  name: string;
  currency: string;
  basisPoints: number;
  fixedFee: { amount: number; currency: string };
  minimumFee: { amount: number; currency: string };
}

const PLAN_FIELDS = ['name', 'currency', 'basisPoints', 'fixedFee', 'minimumFee'] as const;
const text = (data: FormData, name: string) => String(data.get(name) ?? '').trim();

/** The plan's terms read from the form; what the page cannot read, by field. */
function termsOf(data: FormData, currency: string): { terms?: { name: string; basisPoints: number; fixedFee: number; minimumFee: number }; fieldErrors?: FieldErrors } {
  const basisPoints = percentToBasisPoints(text(data, 'basisPoints'));
  // An empty fee is no fee.
  const fee = (name: string) => decimalToMinor(text(data, name) || '0', currency);
  const fixedFee = fee('fixedFee');
  const minimumFee = fee('minimumFee');
  const bad = t('badAmount', { digits: minorDigits(currency) });
  const fieldErrors: FieldErrors = {
    ...(basisPoints === undefined ? { basisPoints: t('badRate') } : {}),
    ...(fixedFee === undefined ? { fixedFee: bad } : {}),
    ...(minimumFee === undefined ? { minimumFee: bad } : {}),
  };
  if (basisPoints === undefined || fixedFee === undefined || minimumFee === undefined) return { fieldErrors };
  return { terms: { name: text(data, 'name'), basisPoints, fixedFee, minimumFee } };
}

function knownCurrency(code: string): boolean {
  try {
    minorDigits(code);
    return /^[A-Z]{3}$/.test(code);
  } catch {
    return false;
  }
}

export function FeePlans() {
  const [changed, setChanged] = useState(0);
  const [editing, setEditing] = useState<Plan | null>(null);
  const plans = usePaged((after) => apiClient().execute(FeePlansDocument, { first: 20, after }), 'fee-plans', [changed]);
  const done = () => setChanged((n) => n + 1);
  return (
    <section class="card" aria-labelledby="fee-plans-title">
      <h2 id="fee-plans-title">{t('feePlans')}</h2>
      <PagedTable
        id="fee-plans"
        paged={plans}
        connection={plans.list.data?.feePlans}
        rowKey={(p) => p.id}
        rowAttrs={(p) => ({ 'data-plan': p.name })}
        columns={[
          { header: t('name'), rowHeader: true, cell: (p) => p.name },
          { header: t('currency'), cell: (p) => p.currency },
          { header: t('rate'), num: true, cell: (p) => `${basisPointsToPercent(p.basisPoints)} %` },
          { header: t('fixedFee'), num: true, cell: (p) => formatMoney(p.fixedFee) },
          { header: t('minimumFee'), num: true, cell: (p) => formatMoney(p.minimumFee) },
          {
            header: t('actions'),
            cell: (p) => (
              <button type="button" class="link" onClick={() => setEditing(p)} aria-label={t('editNamed', { name: p.name })}>
                {t('edit')}
              </button>
            ),
          },
        ]}
      />
      {editing ? (
        <EditFeePlan
          key={editing.id}
          plan={editing}
          onSaved={done}
          onClose={() => setEditing(null)}
        />
      ) : null}
      <NewFeePlan onMade={done} />
    </section>
  );
}

function NewFeePlan({ onMade }: { onMade(): void }) {
  const { outcome, submit } = useFieldForm(
    PLAN_FIELDS,
    async (data): Promise<Sent> => {
      const currency = text(data, 'currency').toUpperCase();
      if (!knownCurrency(currency)) return { fieldErrors: { currency: t('badCurrency') } };
      const { terms, fieldErrors } = termsOf(data, currency);
      if (!terms) return { fieldErrors };
      const r = await apiClient().mutate(CreateFeePlanDocument, { input: { ...terms, currency } });
      return r.ok ? { done: t('feePlanMade', { name: r.data.createFeePlan.feePlan!.name }) } : { userErrors: r.userErrors };
    },
    onMade,
    true,
  );
  return (
    <form onSubmit={submit} aria-labelledby="new-fee-plan-title">
      <h3 id="new-fee-plan-title">{t('newFeePlan')}</h3>
      <div class="filters">
        <Field id="fee-plan-name" name="name" label={t('name')} outcome={outcome} required maxLength={200} />
        <Field id="fee-plan-currency" name="currency" label={t('currency')} outcome={outcome} required defaultValue="CNY" size={5} />
        <Field id="fee-plan-rate" name="basisPoints" label={t('ratePercent')} outcome={outcome} required placeholder="0.60" inputMode="decimal" size={8} />
        <Field id="fee-plan-fixed" name="fixedFee" label={t('fixedFee')} outcome={outcome} placeholder="0.00" inputMode="decimal" size={10} />
        <Field id="fee-plan-minimum" name="minimumFee" label={t('minimumFee')} outcome={outcome} placeholder="0.00" inputMode="decimal" size={10} />
        <button type="submit" id="fee-plan-create">
          {t('create')}
        </button>
      </div>
      <FormOutcome outcome={outcome} id="fee-plan-made" />
    </form>
  );
}

/** The plan's current terms in a form; Save sends them (updateFeePlan), Cancel closes it. */
function EditFeePlan({ plan, onSaved, onClose }: { plan: Plan; onSaved(): void; onClose(): void }) {
  useFocusOnOpen('edit-fee-plan-name');
  const { outcome, submit } = useFieldForm(
    PLAN_FIELDS,
    async (data): Promise<Sent> => {
      const { terms, fieldErrors } = termsOf(data, plan.currency);
      if (!terms) return { fieldErrors };
      const r = await apiClient().mutate(UpdateFeePlanDocument, { input: { feePlan: plan.id, ...terms } });
      return r.ok ? { done: t('feePlanSaved', { name: r.data.updateFeePlan.feePlan!.name }) } : { userErrors: r.userErrors };
    },
    onSaved,
  );
  return (
    <form onSubmit={submit} aria-labelledby="edit-fee-plan-title" id="edit-fee-plan">
      <h3 id="edit-fee-plan-title">{t('editNamed', { name: plan.name })}</h3>
      <div class="filters">
        <Field id="edit-fee-plan-name" name="name" label={t('name')} outcome={outcome} required maxLength={200} defaultValue={plan.name} />
        <Field id="edit-fee-plan-rate" name="basisPoints" label={t('ratePercent')} outcome={outcome} required defaultValue={basisPointsToPercent(plan.basisPoints)} inputMode="decimal" size={8} />
        <Field id="edit-fee-plan-fixed" name="fixedFee" label={`${t('fixedFee')} (${plan.currency})`} outcome={outcome} defaultValue={minorToDecimal(plan.fixedFee.amount, plan.currency)} inputMode="decimal" size={10} />
        <Field id="edit-fee-plan-minimum" name="minimumFee" label={`${t('minimumFee')} (${plan.currency})`} outcome={outcome} defaultValue={minorToDecimal(plan.minimumFee.amount, plan.currency)} inputMode="decimal" size={10} />
        <SaveOrCancel id="edit-fee-plan-save" onClose={onClose} />
      </div>
      <FormOutcome outcome={outcome} id="fee-plan-saved" />
    </form>
  );
}
