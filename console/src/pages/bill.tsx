/**
 * Biller (and operator): one bill and its payments, newest first, a keyset page at a time: each
 * payment's status, amount, card (masked), receipt and when it was paid (`Bill.payments`).
 */
import { BillPaymentsDocument } from '@onecard/sdk/browser';
import { formatMoney, formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status } from '../ui.tsx';

export function BillPage({ id }: { id: string }) {
  const paged = usePaged((after) => apiClient().execute(BillPaymentsDocument, { id, first: 20, after }), id);
  const bill = paged.list.data?.bill;
  return (
    <>
      <p>
        <a href="#/bills">← {t('bills')}</a>
      </p>
      <Section title={t('billTitle', { reference: bill?.billerReference ?? '' })} id="bill-title">
        <ErrorText error={paged.list.error} />
        {paged.list.data && !bill ? <p>{t('noSuchBill')}</p> : null}
        {bill ? (
          <dl class="facts" id="bill-facts">
            <dt>{t('account')}</dt>
            <dd>{bill.accountNumber}</dd>
            <dt>{t('period')}</dt>
            <dd>{bill.period}</dd>
            <dt>{t('status')}</dt>
            <dd>
              <Status value={bill.status} />
            </dd>
            <dt>{t('amountDue')}</dt>
            <dd>{formatMoney(bill.amountDue)}</dd>
            <dt>{t('amountPaid')}</dt>
            <dd id="bill-paid">{formatMoney(bill.amountPaid)}</dd>
            <dt>{t('dueDate')}</dt>
            <dd>{bill.dueDate}</dd>
          </dl>
        ) : null}
      </Section>
      <Section title={t('billPayments')} id="bill-payments-title">
        <PagedTable
          id="bill-payments"
          paged={paged}
          connection={bill?.payments}
          rowKey={(p) => p.id}
          rowAttrs={(p) => ({ 'data-status': p.status })}
          columns={[
            { header: t('created'), rowHeader: true, cell: (p) => formatTime(p.createdAt) },
            { header: t('status'), cell: (p) => <Status value={p.status} /> },
            { header: t('amount'), num: true, cell: (p) => formatMoney(p.amount) },
            { header: t('cardNumber'), cell: (p) => p.cardNumber ?? '—' },
            { header: t('receipt'), cell: (p) => (p.receiptNumber ? <code>{p.receiptNumber}</code> : p.failureCode ? <code>{p.failureCode}</code> : '—') },
            { header: t('paidAt'), cell: (p) => formatTime(p.paidAt) },
          ]}
        />
      </Section>
    </>
  );
}
