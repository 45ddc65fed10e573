/**
 * Biller: the daily reconciliation (对账) of one business day: how many payments and their total,
 * the ledger's total beside it (they must agree), the payments by hour as a chart, each payment,
 * and the day's CSV file to download.
 */
import { BillerReconciliationDocument } from '@onecard/sdk/browser';
import { useMemo, useState } from 'preact/hooks';
import { BarChart } from '../chart.tsx';
import { DEFAULT_TIME_ZONE, formatMoney, formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { Table } from '../table.tsx';
import { ErrorText, Section, Status, useLoad } from '../ui.tsx';

/** Today in the city: the default business day. */
const today = (timeZone = DEFAULT_TIME_ZONE) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
const hourIn = (iso: string, timeZone = DEFAULT_TIME_ZONE) => Number(new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', hourCycle: 'h23' }).format(new Date(iso)));

export function ReconciliationPage() {
  const [day, setDay] = useState(today());
  const report = useLoad(() => apiClient().execute(BillerReconciliationDocument, { businessDay: day }), [day]);
  const r = report.data?.billerReconciliation;
  const byHour = useMemo(() => {
    const sums = Array.from({ length: 24 }, (_, h) => ({ label: String(h).padStart(2, '0'), value: 0 }));
    for (const p of r?.payments ?? []) if (p.paidAt) sums[hourIn(p.paidAt)]!.value += p.amount.amount;
    return sums;
  }, [r]);
  const csvUrl = useMemo(() => (r ? URL.createObjectURL(new Blob([r.csv], { type: 'text/csv' })) : undefined), [r]);
  const agree = r && r.total.amount === r.ledgerTotal.amount && r.total.currency === r.ledgerTotal.currency;
  return (
    <Section title={t('reconciliation')} id="reconciliation-title">
      <div class="filters">
        <label>
          {t('businessDay')}
          <input type="date" id="reconciliation-day" value={day} onChange={(e) => setDay((e.target as HTMLInputElement).value || today())} />
        </label>
      </div>
      <ErrorText error={report.error} />
      {r ? (
        <>
          <dl class="facts" id="reconciliation-totals">
            <dt>{t('paymentsCount')}</dt>
            <dd>{r.count}</dd>
            <dt>{t('total')}</dt>
            <dd>{formatMoney(r.total)}</dd>
            <dt>{t('ledgerTotal')}</dt>
            <dd>
              {formatMoney(r.ledgerTotal)} <span class={agree ? 'ok' : 'error'}>{agree ? t('agrees') : t('disagrees')}</span>
            </dd>
          </dl>
          <BarChart title={t('byHour')} bars={byHour} format={(v) => formatMoney({ amount: v, currency: r.total.currency })} />
          <p>
            <a href={csvUrl} download={`reconciliation-${r.businessDay}.csv`} id="reconciliation-csv">
              {t('downloadCsv')}
            </a>
          </p>
          <Table
            id="reconciliation-payments"
            rows={r.payments}
            rowKey={(p) => p.id}
            columns={[
              { header: t('account'), cell: (p) => p.accountNumber },
              { header: t('period'), cell: (p) => p.period },
              { header: t('status'), cell: (p) => <Status value={p.status} /> },
              { header: t('amount'), num: true, cell: (p) => formatMoney(p.amount) },
              { header: t('receipt'), cell: (p) => p.receiptNumber ?? '—' },
              { header: t('paidAt'), cell: (p) => formatTime(p.paidAt) },
            ]}
          />
        </>
      ) : null}
    </Section>
  );
}
