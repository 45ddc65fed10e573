/**
 * Biller: publish one bill, import a month's bills from a CSV file with the per-row report shown
 * inline (all or nothing: one refused row and nothing is imported), and the bills, a keyset page at
 * a time, each open one to amend (amount, due date) or withdraw; a bill's reference opens its payments.
 */
import { AmendBillDocument, type BillsQuery, BillsDocument, type ImportBillsCsvMutation, ImportBillsCsvDocument, PublishBillDocument, WithdrawBillDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { decimalToMinor, formatMoney, minorDigits, minorToDecimal } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, Table, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors, useLoad } from '../ui.tsx';

type BillImport = NonNullable<ImportBillsCsvMutation['importBillsCsv']['import']>;

type Bill = BillsQuery['bills']['edges'][number]['node'];
type Outcome = { userErrors?: readonly UserErrorView[]; error?: unknown; done?: string };

// The biller's currency, for amounts typed in the forms (the SDK's Biller operation asks for much more).
const BILLER = `query ConsoleBiller($id: ID!) { biller(id: $id) { id currency } }`;

export function BillsPage({ billerId }: { billerId: string }) {
  const [changed, setChanged] = useState(0);
  const biller = useLoad(() => apiClient().request<{ biller: { currency: string } | null }>(BILLER, { id: billerId }), [billerId]);
  const currency = biller.data?.biller?.currency;
  const refresh = () => setChanged((n) => n + 1);
  return (
    <>
      <ErrorText error={biller.error} />
      {currency ? <PublishForm currency={currency} onPublished={refresh} /> : null}
      <ImportForm onImported={refresh} />
      <BillList refresh={changed} onChanged={refresh} />
    </>
  );
}

/** An amount typed as 12.50, in minor units of the currency by digit arithmetic; undefined (and said) when it is not one. */
function amountField(text: string, currency: string, set: (o: Outcome) => void): number | undefined {
  const minor = decimalToMinor(text, currency);
  if (minor === undefined) set({ error: new Error(t('badAmount', { digits: minorDigits(currency) })) });
  return minor;
}

function PublishForm({ currency, onPublished }: { currency: string; onPublished(): void }) {
  const [outcome, setOutcome] = useState<Outcome>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const field = (name: string) => String(data.get(name) ?? '').trim();
    const amountDue = amountField(field('amount'), currency, setOutcome);
    if (amountDue === undefined) return;
    try {
      const r = await apiClient().mutate(PublishBillDocument, {
        input: { accountNumber: field('account'), period: field('period'), amountDue, dueDate: field('due'), billerReference: field('reference') },
      });
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      setOutcome({ done: t('billPublished', { reference: r.data.publishBill.bill!.billerReference }) });
      form.reset();
      onPublished();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('publishBill')} id="publish-title">
      <form class="card-form" onSubmit={submit}>
        <label>
          {t('account')}
          <input id="bill-account" name="account" required />
        </label>
        <label>
          {t('period')}
          <input id="bill-period" name="period" placeholder="2026-11" required />
        </label>
        <label>
          {t('amountDueIn', { currency })}
          <input id="bill-amount" name="amount" inputMode="decimal" placeholder="45.20" required />
        </label>
        <label>
          {t('dueDate')}
          <input id="bill-due" name="due" type="date" required />
        </label>
        <label>
          {t('reference')}
          <input id="bill-reference" name="reference" required />
        </label>
        <button type="submit" id="bill-publish">
          {t('publish')}
        </button>
      </form>
      <Said outcome={outcome} id="bill-published" />
    </Section>
  );
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

function ImportForm({ onImported }: { onImported(): void }) {
  const [csv, setCsv] = useState('');
  const [fileName, setFileName] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ report?: BillImport | null; userErrors?: readonly UserErrorView[]; error?: unknown }>({});
  const pick = async (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    setFileName(file.name);
    setCsv(await file.text());
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setResult({});
    try {
      const r = await apiClient().mutate(ImportBillsCsvDocument, { input: { csv, fileName: fileName.trim() || 'bills.csv' } });
      setResult({ report: r.data.importBillsCsv.import, userErrors: r.ok ? [] : r.userErrors });
      if (r.ok) onImported();
    } catch (error) {
      setResult({ error });
    } finally {
      setBusy(false);
    }
  };
  const report = result.report;
  return (
    <Section title={t('importCsv')} id="import-title">
      <form class="card-form" onSubmit={submit}>
        <label>
          {t('csvFile')}
          <input type="file" id="csv-file" accept=".csv,text/csv" onChange={pick} />
        </label>
        <label>
          {t('csvText')}
          <textarea id="csv-text" rows={6} value={csv} onInput={(e) => setCsv((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
        </label>
        <label>
          {t('fileName')}
          <input id="csv-file-name" value={fileName} onInput={(e) => setFileName((e.target as HTMLInputElement).value)} placeholder="2026-10.csv" />
        </label>
        <button type="submit" id="csv-import" disabled={busy || csv.trim() === ''}>
          {t('import')}
        </button>
      </form>
      <ErrorText error={result.error} />
      {report ? (
        <div id="import-report" data-status={report.status} role="status">
          <p>
            <Status value={report.status} /> {t('importReport', { accepted: report.accepted, rows: report.rowCount, refused: report.refused })}
          </p>
          {report.refused > 0 ? <p>{t('nothingImported')}</p> : null}
          {report.refusals.length > 0 ? (
            <Table
              id="import-refusals"
              rows={report.refusals}
              rowKey={(r) => `${r.row}:${r.field}:${r.code}`}
              columns={[
                { header: t('row'), num: true, cell: (r) => r.row },
                { header: t('column'), cell: (r) => <code>{r.field}</code> },
                {
                  header: t('problem'),
                  cell: (r) => (
                    <>
                      {r.message} <code>{r.code}</code>
                    </>
                  ),
                },
              ]}
            />
          ) : null}
        </div>
      ) : null}
      {report?.status === 'REFUSED' ? null : <UserErrors errors={result.userErrors} />}
    </Section>
  );
}

function BillList({ refresh, onChanged }: { refresh: number; onChanged(): void }) {
  const paged = usePaged((after) => apiClient().execute(BillsDocument, { first: 20, after }), refresh);
  const [amending, setAmending] = useState<Bill>();
  const [outcome, setOutcome] = useState<Outcome>({});
  const withdraw = async (b: Bill) => {
    setOutcome({});
    if (!confirm(t('confirmWithdraw', { reference: b.billerReference }))) return;
    try {
      // The version read: a bill changed (or paid) since is refused, not withdrawn blind.
      const r = await apiClient().mutate(WithdrawBillDocument, { input: { bill: b.id, expectedVersion: b.version } });
      setOutcome(r.ok ? { done: t('billWithdrawn', { reference: b.billerReference }) } : { userErrors: r.userErrors });
      onChanged();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('bills')} id="bills-title">
      <Said outcome={outcome} id="bill-withdrawn" />
      <PagedTable
        id="bills"
        paged={paged}
        connection={paged.list.data?.bills}
        rowKey={(b) => b.id}
        rowAttrs={(b) => ({ 'data-bill': b.billerReference, 'data-status': b.status })}
        columns={[
          { header: t('account'), cell: (b) => b.accountNumber },
          { header: t('period'), cell: (b) => b.period },
          { header: t('status'), cell: (b) => <Status value={b.status} /> },
          { header: t('amountDue'), num: true, cell: (b) => formatMoney(b.amountDue) },
          { header: t('amountPaid'), num: true, cell: (b) => formatMoney(b.amountPaid) },
          { header: t('dueDate'), cell: (b) => b.dueDate },
          { header: t('reference'), rowHeader: true, cell: (b) => <a href={`#/bills/${encodeURIComponent(b.id)}`}>{b.billerReference}</a> },
          {
            header: t('actions'),
            cell: (b) =>
              b.status === 'OPEN' ? (
                <span class="actions">
                  <button type="button" aria-label={`${t('amend')} ${b.billerReference}`} onClick={() => setAmending(b)}>
                    {t('amend')}
                  </button>
                  <button type="button" aria-label={`${t('withdraw')} ${b.billerReference}`} onClick={() => withdraw(b)}>
                    {t('withdraw')}
                  </button>
                </span>
              ) : null,
          },
        ]}
      />
      {amending ? (
        <AmendForm
          key={amending.id}
          bill={amending}
          onDone={() => {
            setAmending(undefined);
            onChanged();
          }}
        />
      ) : null}
    </Section>
  );
}

/** A new amount due and due date for an open bill, against the version read (BILL_VERSION_CONFLICT when it changed since). */
function AmendForm({ bill, onDone }: { bill: Bill; onDone(): void }) {
  const currency = bill.amountDue.currency;
  const [amount, setAmount] = useState(minorToDecimal(bill.amountDue.amount, currency));
  const [due, setDue] = useState(bill.dueDate);
  const [outcome, setOutcome] = useState<Outcome>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const amountDue = amountField(amount, currency, setOutcome);
    if (amountDue === undefined) return;
    try {
      const r = await apiClient().mutate(AmendBillDocument, { input: { bill: bill.id, amountDue, dueDate: due, expectedVersion: bill.version } });
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      onDone();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <form class="card-form" id="amend-form" onSubmit={submit} aria-labelledby="amend-title">
      <h3 id="amend-title">{t('amendBill', { reference: bill.billerReference })}</h3>
      <label>
        {t('amountDueIn', { currency })}
        <input id="amend-amount" inputMode="decimal" value={amount} required onInput={(e) => setAmount((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        {t('dueDate')}
        <input id="amend-due" type="date" value={due} required onInput={(e) => setDue((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" id="amend-submit">
        {t('amend')}
      </button>
      <Said outcome={outcome} id="amend-done" />
    </form>
  );
}
