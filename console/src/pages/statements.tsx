/**
 * Merchant and biller: settlement statements (结算单), one line per cleared window the party took part in,
 * newest first, a keyset page at a time; a statement's transactions by hour (city time) and channel
 * as a chart; and the period's statements as the CSV file of GET /settlement/statements.csv.
 */
import { type ClearingKind, SettlementStatementsDocument } from '@onecard/sdk/browser';
import { useMemo, useState } from 'preact/hooks';
import { StackedBarChart } from '../chart.tsx';
import { DEFAULT_TIME_ZONE, formatMoney } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient, session } from '../session.ts';
import { PagedTable, Table, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, useLoad } from '../ui.tsx';

/** A day in the city, `days` before today: the default period is the last 31 days. */
const cityDay = (daysAgo = 0, timeZone = DEFAULT_TIME_ZONE) =>
  new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(Date.now() - daysAgo * 86_400_000));

// A statement's volume is asked through `node` by hand: a hand-written SDK operation on `node` would
// replace the SDK's generated `Node` operation.
const VOLUME = `query ConsoleStatementVolume($id: ID!) {
  node(id: $id) { ... on SettlementLine { id volumeByHour { hour kind count amount { amount currency } } } }
}`;

interface VolumeRow {
  hour: number;
  kind: ClearingKind;
  count: number;
  amount: { amount: number; currency: string };
}

export function StatementsPage() {
  const [period, setPeriod] = useState({ from: cityDay(30), to: cityDay() });
  const [selected, setSelected] = useState<string>();
  const paged = usePaged((after) => apiClient().execute(SettlementStatementsDocument, { first: 20, after, from: period.from, to: period.to }), `${period.from}/${period.to}`);
  const lines = paged.list.data?.settlementStatements;
  // The chart shows the chosen statement, else the newest on the page.
  const shown = lines?.edges.find((e) => e.node.id === selected)?.node ?? lines?.edges[0]?.node;
  return (
    <>
      <Section title={t('statements')} id="statements-title">
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            const data = new FormData(e.currentTarget as HTMLFormElement);
            setPeriod({ from: String(data.get('from') || cityDay(30)), to: String(data.get('to') || cityDay()) });
          }}
        >
          <label>
            {t('from')}
            <input type="date" name="from" id="statements-from" defaultValue={period.from} />
          </label>
          <label>
            {t('to')}
            <input type="date" name="to" id="statements-to" defaultValue={period.to} />
          </label>
          <button type="submit">{t('filter')}</button>
          <CsvDownload from={period.from} to={period.to} />
        </form>
        <PagedTable
          id="statements"
          paged={paged}
          connection={lines}
          rowKey={(l) => l.id}
          rowAttrs={(l) => ({ 'data-statement': `${l.cityCode} ${l.businessDay}`, 'data-status': l.status })}
          columns={[
            { header: t('businessDay'), rowHeader: true, cell: (l) => l.businessDay },
            { header: t('city'), cell: (l) => l.cityCode },
            { header: t('status'), cell: (l) => <Status value={l.status} /> },
            { header: t('sales'), num: true, cell: (l) => l.salesCount },
            { header: t('gross'), num: true, cell: (l) => formatMoney(l.gross) },
            { header: t('refunds'), num: true, cell: (l) => formatMoney(l.refunds) },
            { header: t('fees'), num: true, cell: (l) => formatMoney(l.fees) },
            { header: t('net'), num: true, cell: (l) => formatMoney(l.net) },
            { header: t('carriedIn'), num: true, cell: (l) => formatMoney(l.carriedIn) },
            { header: t('payout'), num: true, cell: (l) => formatMoney(l.payout) },
            {
              header: t('chart'),
              cell: (l) => (
                <button type="button" aria-pressed={l.id === shown?.id} aria-label={`${t('showChart')} ${l.cityCode} ${l.businessDay}`} onClick={() => setSelected(l.id)}>
                  {t('showChart')}
                </button>
              ),
            },
          ]}
        />
      </Section>
      {shown ? <StatementVolume id={shown.id} label={`${shown.cityCode} ${shown.businessDay}`} currency={shown.gross.currency} /> : null}
    </>
  );
}

/** One statement's transactions by local hour, stacked by channel, and the channel totals. */
function StatementVolume({ id, label, currency }: { id: string; label: string; currency: string }) {
  const volume = useLoad(() => apiClient().request<{ node: { volumeByHour: VolumeRow[] } | null }>(VOLUME, { id }), [id]);
  const rows = volume.data?.node?.volumeByHour;
  const chart = useMemo(() => {
    const kinds = [...new Set((rows ?? []).map((r) => r.kind))].sort();
    return {
      labels: Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0')),
      series: kinds.map((kind) => ({ name: kind, values: Array.from({ length: 24 }, (_, h) => (rows ?? []).filter((r) => r.kind === kind && r.hour === h).reduce((sum, r) => sum + r.amount.amount, 0)) })),
      totals: kinds.map((kind) => {
        const of = (rows ?? []).filter((r) => r.kind === kind);
        return { kind, count: of.reduce((n, r) => n + r.count, 0), amount: { amount: of.reduce((sum, r) => sum + r.amount.amount, 0), currency } };
      }),
    };
  }, [rows, currency]);
  return (
    <Section title={`${t('volumeByHour')} · ${label}`} id="statement-volume-title">
      <ErrorText error={volume.error} />
      {rows ? (
        <div id="statement-volume" data-statement={label}>
          <StackedBarChart title={t('volumeByHourCaption')} labels={chart.labels} series={chart.series} format={(v) => formatMoney({ amount: v, currency })} />
          <Table
            id="statement-channels"
            rows={chart.totals}
            rowKey={(r) => r.kind}
            columns={[
              { header: t('channel'), rowHeader: true, cell: (r) => r.kind },
              { header: t('count'), num: true, cell: (r) => r.count },
              { header: t('amount'), num: true, cell: (r) => formatMoney(r.amount) },
            ]}
          />
        </div>
      ) : null}
    </Section>
  );
}

/**
 * The period's statements as CSV. The file needs the access token (an <a href> cannot send it), so
 * it is fetched and handed to the browser as a download.
 */
function CsvDownload({ from, to }: { from: string; to: string }) {
  const [error, setError] = useState<unknown>();
  const download = async () => {
    setError(undefined);
    try {
      const token = session.get()?.token.accessToken;
      const res = await fetch(`/settlement/statements.csv?${new URLSearchParams({ from, to })}`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      const url = URL.createObjectURL(await res.blob());
      const a = Object.assign(document.createElement('a'), { href: url, download: `settlement-statements-${from}-to-${to}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <button type="button" id="statements-csv" onClick={download}>
        {t('downloadStatementsCsv')}
      </button>
      <ErrorText error={error} />
    </>
  );
}
