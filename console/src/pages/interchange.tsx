/**
 * Operator and card companies: the day's cross-city card use (互联互通, `interchangeMatrix`) over
 * every city's cleared window: each card company's net as a chart (owed to the right, owing to the
 * left in red), then each issuer → acquirer position. A card company sees the positions it is a
 * party to and its own net; the operator all of them.
 */
import { InterchangeMatrixDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { NetChart } from '../chart.tsx';
import { DEFAULT_TIME_ZONE, formatMoney } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { Table } from '../table.tsx';
import { ErrorText, Section, useLoad } from '../ui.tsx';

const today = () => new Intl.DateTimeFormat('en-CA', { timeZone: DEFAULT_TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());

export function InterchangePage() {
  const [day, setDay] = useState(today);
  const matrix = useLoad(() => apiClient().execute(InterchangeMatrixDocument, { businessDay: day }), [day]);
  const m = matrix.data?.interchangeMatrix;
  const currency = m?.multilateral[0]?.net.currency ?? 'CNY';
  return (
    <Section title={t('interchange')} id="interchange-title">
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setDay(String(new FormData(e.currentTarget as HTMLFormElement).get('day') || today()));
        }}
      >
        <label>
          {t('businessDay')}
          <input type="date" name="day" id="interchange-day" defaultValue={day} required />
        </label>
        <button type="submit">{t('show')}</button>
      </form>
      <ErrorText error={matrix.error} />
      {m ? (
        <div id="interchange" data-day={m.businessDay}>
          {m.multilateral.length ? (
            <NetChart title={t('interchangeNet')} bars={m.multilateral.map((n) => ({ label: `${n.cardCompany.name} (${n.cardCompany.cityCode})`, value: n.net.amount }))} format={(v) => formatMoney({ amount: v, currency })} />
          ) : null}
          <Table
            id="interchange-positions"
            rows={m.positions}
            rowKey={(p) => `${p.issuer.id}>${p.acquirer.id}`}
            rowAttrs={(p) => ({ 'data-position': `${p.issuer.cityCode}>${p.acquirer.cityCode}` })}
            columns={[
              { header: t('cardIssuer'), rowHeader: true, cell: (p) => `${p.issuer.name} (${p.issuer.cityCode})` },
              { header: t('usedAt'), cell: (p) => `${p.acquirer.name} (${p.acquirer.cityCode})` },
              { header: t('count'), num: true, cell: (p) => p.count },
              { header: t('gross'), num: true, cell: (p) => formatMoney(p.gross) },
              { header: t('refunds'), num: true, cell: (p) => formatMoney(p.refunds) },
              { header: t('net'), num: true, cell: (p) => formatMoney(p.net) },
            ]}
          />
        </div>
      ) : null}
    </Section>
  );
}
