/**
 * Card company: its city's settlement windows (keyset pages), and a cleared window's batch: the
 * totals, the net of each participant as a chart (who is paid, who owes), each participant's line,
 * and the interchange (cards of other cities used here, and its cards used elsewhere).
 */
import { SettlementWindowsDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { NetChart } from '../chart.tsx';
import { formatMoney, type Money } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, Table, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, useLoad } from '../ui.tsx';

interface Batch {
  id: string;
  status: string;
  itemCount: number;
  gross: Money;
  refunds: Money;
  fees: Money;
  net: Money;
  payoutTotal: Money;
  topUps: Money;
  lines: { edges: { node: { id: string; participantKind: string; participantName: string; salesCount: number; gross: Money; refunds: Money; fees: Money; net: Money; payout: Money; status: string } }[] };
  interchange: { issuer: { name: string; cityCode: string }; acquirer: { name: string; cityCode: string }; count: number; net: Money }[];
}

// The SDK's SettlementBatch operation leaves out the lines (a connection): asked here, one page of 100.
const BATCH = `query ConsoleSettlementBatch($id: ID!) {
  settlementBatch(id: $id) {
    id status itemCount
    gross { amount currency } refunds { amount currency } fees { amount currency } net { amount currency } payoutTotal { amount currency } topUps { amount currency }
    lines(first: 100) { edges { node { id participantKind participantName salesCount gross { amount currency } refunds { amount currency } fees { amount currency } net { amount currency } payout { amount currency } status } } }
    interchange { issuer { name cityCode } acquirer { name cityCode } count net { amount currency } }
  }
}`;

export function CitySettlementPage() {
  const [selected, setSelected] = useState<{ batch: string; label: string }>();
  const paged = usePaged((after) => apiClient().execute(SettlementWindowsDocument, { first: 20, after }), 'windows');
  return (
    <>
      <Section title={t('windows')} id="city-windows-title">
        <PagedTable
          id="city-windows"
          paged={paged}
          connection={paged.list.data?.settlementWindows}
          rowKey={(w) => w.id}
          rowAttrs={(w) => ({ 'data-window': `${w.cityCode} ${w.businessDay}` })}
          columns={[
            { header: t('businessDay'), rowHeader: true, cell: (w) => w.businessDay },
            { header: t('city'), cell: (w) => w.cityCode },
            { header: t('status'), cell: (w) => <Status value={w.status} /> },
            {
              header: t('actions'),
              cell: (w) =>
                w.batch ? (
                  <button type="button" aria-pressed={selected?.batch === w.batch.id} aria-label={`${t('showBatch')} ${w.cityCode} ${w.businessDay}`} onClick={() => setSelected({ batch: w.batch!.id, label: `${w.cityCode} ${w.businessDay}` })}>
                    {t('showBatch')}
                  </button>
                ) : null,
            },
          ]}
        />
      </Section>
      {selected ? <BatchView id={selected.batch} label={selected.label} /> : null}
    </>
  );
}

function BatchView({ id, label }: { id: string; label: string }) {
  const loaded = useLoad(() => apiClient().request<{ settlementBatch: Batch | null }>(BATCH, { id }), [id]);
  const b = loaded.data?.settlementBatch;
  const lines = b?.lines.edges.map((e) => e.node) ?? [];
  return (
    <Section title={`${t('batch')} · ${label}`} id="batch-title">
      <ErrorText error={loaded.error} />
      {b ? (
        <div id="batch" data-window={label}>
          <dl class="facts" id="batch-totals">
            <dt>{t('status')}</dt>
            <dd>
              <Status value={b.status} />
            </dd>
            <dt>{t('gross')}</dt>
            <dd>{formatMoney(b.gross)}</dd>
            <dt>{t('refunds')}</dt>
            <dd>{formatMoney(b.refunds)}</dd>
            <dt>{t('fees')}</dt>
            <dd>{formatMoney(b.fees)}</dd>
            <dt>{t('net')}</dt>
            <dd>{formatMoney(b.net)}</dd>
            <dt>{t('payout')}</dt>
            <dd>{formatMoney(b.payoutTotal)}</dd>
            <dt>{t('topUps')}</dt>
            <dd>{formatMoney(b.topUps)}</dd>
          </dl>
          <NetChart title={t('netPerParticipant')} bars={lines.map((l) => ({ label: l.participantName, value: l.net.amount }))} format={(v) => formatMoney({ amount: v, currency: b.net.currency })} />
          <Table
            id="batch-lines"
            rows={lines}
            rowKey={(l) => l.id}
            rowAttrs={(l) => ({ 'data-participant': l.participantName })}
            columns={[
              { header: t('participant'), rowHeader: true, cell: (l) => l.participantName },
              { header: t('kind'), cell: (l) => l.participantKind },
              { header: t('sales'), num: true, cell: (l) => l.salesCount },
              { header: t('gross'), num: true, cell: (l) => formatMoney(l.gross) },
              { header: t('refunds'), num: true, cell: (l) => formatMoney(l.refunds) },
              { header: t('fees'), num: true, cell: (l) => formatMoney(l.fees) },
              { header: t('net'), num: true, cell: (l) => formatMoney(l.net) },
              { header: t('payout'), num: true, cell: (l) => formatMoney(l.payout) },
              { header: t('status'), cell: (l) => <Status value={l.status} /> },
            ]}
          />
          <h3>{t('interchange')}</h3>
          <Table
            id="batch-interchange"
            rows={b.interchange}
            rowKey={(p) => `${p.issuer.cityCode}:${p.acquirer.cityCode}`}
            columns={[
              { header: t('cardIssuer'), cell: (p) => `${p.issuer.name} (${p.issuer.cityCode})` },
              { header: t('usedAt'), cell: (p) => `${p.acquirer.name} (${p.acquirer.cityCode})` },
              { header: t('count'), num: true, cell: (p) => p.count },
              { header: t('net'), num: true, cell: (p) => formatMoney(p.net) },
            ]}
          />
        </div>
      ) : null}
    </Section>
  );
}
