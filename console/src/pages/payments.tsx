/**
 * Merchant: payments (filter by status and order reference, keyset pages), a payment's detail with
 * its refunds and ledger entries, and a refund, whole or partial, showing what remains refundable.
 */
import { PaymentDocument, type PaymentQuery, PaymentsDocument, type PaymentStatus, RefundPaymentDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { decimalToMinor, DEFAULT_TIME_ZONE, formatMoney, formatTime, minorDigits } from '../format.ts';
import { t } from '../i18n.ts';
import { navigate } from '../router.ts';
import { apiClient } from '../session.ts';
import { PagedTable, Table, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors, useLoad } from '../ui.tsx';

const STATUSES: PaymentStatus[] = ['SUCCEEDED', 'REQUIRES_CARD', 'PROCESSING', 'FAILED', 'CANCELED'];

type Filters = { status: PaymentStatus | ''; orderReference: string; from: string; to: string };

/** The API's filter for what the form says: days are the city's, `to` included (createdTo is exclusive). */
function paymentFilter(f: Filters) {
  return {
    ...(f.status ? { status: [f.status] } : {}),
    ...(f.orderReference ? { orderReference: f.orderReference } : {}),
    ...(f.from ? { createdFrom: startOfCityDay(f.from) } : {}),
    ...(f.to ? { createdTo: startOfCityDay(f.to, 1) } : {}),
  };
}

export function PaymentsPage() {
  const [status, setStatus] = useState<PaymentStatus | ''>('');
  const [orderReference, setOrderReference] = useState('');
  const [applied, setApplied] = useState<Filters>({ status: '', orderReference: '', from: '', to: '' });
  const paged = usePaged((after) => apiClient().execute(PaymentsDocument, { first: 20, after, filter: paymentFilter(applied) }), JSON.stringify(applied));
  return (
    <Section title={t('payments')} id="payments-title">
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget as HTMLFormElement);
          setApplied({ status, orderReference: orderReference.trim(), from: String(data.get('from') ?? ''), to: String(data.get('to') ?? '') });
        }}
      >
        <label>
          {t('status')}
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as PaymentStatus | '')}>
            <option value="">{t('allStatuses')}</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('order')}
          <input value={orderReference} onInput={(e) => setOrderReference((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t('from')}
          <input type="date" name="from" id="payments-from" />
        </label>
        <label>
          {t('to')}
          <input type="date" name="to" id="payments-to" />
        </label>
        <button type="submit">{t('filter')}</button>
        <PaymentsCsv filters={applied} />
      </form>
      <PagedTable
        paged={paged}
        connection={paged.list.data?.payments}
        rowKey={(p) => p.id}
        rowAttrs={(p) => ({ 'data-payment': p.id })}
        columns={[
          { header: t('order'), cell: (p) => <a href={`#/payments/${encodeURIComponent(p.id)}`}>{p.orderReference}</a> },
          { header: t('status'), cell: (p) => <Status value={p.status} /> },
          { header: t('amount'), num: true, cell: (p) => formatMoney(p.amount) },
          { header: t('refunded'), num: true, cell: (p) => formatMoney(p.refundedAmount) },
          { header: t('created'), cell: (p) => formatTime(p.createdAt) },
        ]}
      />
    </Section>
  );
}

/** The instant a day (YYYY-MM-DD) starts in the city's zone, `plusDays` later: the zone's offset as Intl knows it. */
function startOfCityDay(day: string, plusDays = 0, timeZone = DEFAULT_TIME_ZONE): string {
  const noon = new Date(`${day}T12:00:00Z`);
  noon.setUTCDate(noon.getUTCDate() + plusDays);
  const offset = new Intl.DateTimeFormat('en', { timeZone, timeZoneName: 'longOffset' }).formatToParts(noon).find((p) => p.type === 'timeZoneName')!.value.replace('GMT', '') || '+00:00';
  return `${noon.toISOString().slice(0, 10)}T00:00:00${offset}`;
}

/** A CSV cell: quoted when needed, and text a spreadsheet would take for a formula made inert (as the API's CSV writer does). */
const csvCell = (v: string | number) => {
  const text = typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : String(v);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

const CSV_MAX_PAGES = 50;

/** Every payment of the filter (up to 5000, 100 a page through the cursors) as a CSV file: amounts in minor units. */
function PaymentsCsv({ filters }: { filters: Filters }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const download = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const lines = ['order_reference,status,amount,refunded,currency,created_at,payment_id'];
      let after: string | null = null;
      for (let page = 0; page < CSV_MAX_PAGES; page++) {
        const data: Awaited<ReturnType<typeof fetchPage>> = await fetchPage(filters, after);
        for (const { node: p } of data.payments.edges) lines.push([p.orderReference, p.status, p.amount.amount, p.refundedAmount.amount, p.amount.currency, p.createdAt, p.id].map(csvCell).join(','));
        if (!data.payments.pageInfo.hasNextPage) break;
        after = data.payments.pageInfo.endCursor ?? null;
      }
      const url = URL.createObjectURL(new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' }));
      const a = Object.assign(document.createElement('a'), { href: url, download: `payments${filters.from ? `-${filters.from}` : ''}${filters.to ? `-to-${filters.to}` : ''}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" id="payments-csv" onClick={download} disabled={busy}>
        {t('downloadPaymentsCsv')}
      </button>
      <ErrorText error={error} />
    </>
  );
}

// The CSV's columns only: the SDK's Payments operation asks for refunds and entries too, over the cost limit at 100 a page.
const PAYMENTS_CSV = `query ConsolePaymentsCsv($first: Int, $after: String, $filter: PaymentFilterInput) {
  payments(first: $first, after: $after, filter: $filter) {
    edges { node { id orderReference status createdAt amount { amount currency } refundedAmount { amount } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface CsvPage {
  payments: {
    edges: { node: { id: string; orderReference: string; status: string; createdAt: string; amount: { amount: number; currency: string }; refundedAmount: { amount: number } } }[];
    pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  };
}

const fetchPage = (filters: Filters, after: string | null) => apiClient().request<CsvPage>(PAYMENTS_CSV, { first: 100, after, filter: paymentFilter(filters) });

type Payment = NonNullable<PaymentQuery['payment']>;

const remainingOf = (p: Pick<Payment, 'amount' | 'refundedAmount'>) => ({ amount: p.amount.amount - p.refundedAmount.amount, currency: p.amount.currency });

export function PaymentPage({ id }: { id: string }) {
  const detail = useLoad(() => apiClient().execute(PaymentDocument, { id }), [id]);
  const payment = detail.data?.payment;
  return (
    <Section title={`${t('payment')} ${payment?.orderReference ?? ''}`} id="payment-title">
      <p>
        <a
          href="#/payments"
          onClick={(e) => {
            e.preventDefault();
            navigate('/payments');
          }}
        >
          ← {t('back')}
        </a>
      </p>
      <ErrorText error={detail.error} />
      {payment ? (
        <>
          <dl class="facts">
            <dt>{t('status')}</dt>
            <dd>
              <Status value={payment.status} />
            </dd>
            <dt>{t('amount')}</dt>
            <dd id="payment-amount">{formatMoney(payment.amount)}</dd>
            <dt>{t('refunded')}</dt>
            <dd id="payment-refunded">{formatMoney(payment.refundedAmount)}</dd>
            <dt>{t('remaining')}</dt>
            <dd id="payment-remaining">{formatMoney(remainingOf(payment))}</dd>
            <dt>{t('created')}</dt>
            <dd>{formatTime(payment.createdAt)}</dd>
          </dl>
          {payment.status === 'SUCCEEDED' ? <RefundForm payment={payment} onDone={detail.reload} /> : null}
          <h3>{t('refunds')}</h3>
          <Table
            id="refunds"
            rows={payment.refunds}
            rowKey={(r) => r.id}
            columns={[
              { header: t('amount'), num: true, cell: (r) => formatMoney(r.amount) },
              { header: t('reason'), cell: (r) => r.reason ?? '—' },
              { header: t('created'), cell: (r) => formatTime(r.createdAt) },
            ]}
          />
          <h3>{t('ledgerEntries')}</h3>
          <Table
            id="ledger-entries"
            rows={payment.ledgerEntries}
            rowKey={(e) => e.key}
            columns={[
              { header: t('kind'), cell: (e) => e.kind },
              { header: t('description'), cell: (e) => e.description },
              { header: t('amount'), num: true, cell: (e) => formatMoney(e.amount) },
              { header: t('posted'), cell: (e) => formatTime(e.postedAt) },
            ]}
          />
        </>
      ) : null}
    </Section>
  );
}

/** A refund: the amount typed as 12.50 is turned into minor units exactly; one idempotency key per refund, so a double click refunds once. */
function RefundForm({ payment, onDone }: { payment: Payment; onDone(): void }) {
  const currency = payment.amount.currency;
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown; invalid?: string }>({});
  const [done, setDone] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    const minor = amount.trim() === '' ? null : decimalToMinor(amount, currency);
    if (minor === undefined) {
      setProblem({ invalid: t('badAmount', { digits: minorDigits(currency) }) });
      return;
    }
    setBusy(true);
    setProblem({});
    try {
      const r = await apiClient().mutate(RefundPaymentDocument, { input: { payment: payment.id, amount: minor, reason: reason.trim() || null, idempotencyKey: key } });
      if (!r.ok) {
        setProblem({ userErrors: r.userErrors });
        return;
      }
      const after = r.data.refundPayment.payment!;
      setDone(t('refundDone', { amount: formatMoney(r.data.refundPayment.refund!.amount), remaining: formatMoney(remainingOf(after)) }));
      setAmount('');
      setReason('');
      setKey(crypto.randomUUID());
      onDone();
    } catch (error) {
      setProblem({ error });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card-form" onSubmit={submit} aria-labelledby="refund-title">
      <h3 id="refund-title">{t('refund')}</h3>
      <label>
        {t('refundAmount', { currency })}
        <input id="refund-amount" inputMode="decimal" value={amount} onInput={(e) => setAmount((e.target as HTMLInputElement).value)} aria-describedby="refund-hint" />
      </label>
      <small id="refund-hint">{t('refundAmountHint')}</small>
      <label>
        {t('reason')}
        <input id="refund-reason" value={reason} maxLength={200} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" id="refund-submit" disabled={busy || remainingOf(payment).amount <= 0}>
        {t('refund')}
      </button>
      {problem.invalid ? (
        <p class="error" role="alert">
          {problem.invalid}
        </p>
      ) : null}
      <UserErrors errors={problem.userErrors} />
      <ErrorText error={problem.error} />
      {done ? (
        <p class="ok" role="status" id="refund-done">
          {done}
        </p>
      ) : null}
    </form>
  );
}
