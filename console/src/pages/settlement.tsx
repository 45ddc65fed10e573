/**
 * Operator: settlement windows (keyset pages, by status): close one at its cut-off, clear it (a
 * batch, its ledger entries and payouts), reconcile it with the gateway's records, and resolve each
 * reconciliation difference with a note saying what was done (长短款处理).
 */
import { ClearSettlementWindowDocument, CloseSettlementWindowDocument, ReconcileSettlementWindowDocument, ReconciliationDifferencesDocument, ResolveReconciliationDifferenceDocument, type SettlementWindowStatus } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatMoney, formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { type Connection, PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors } from '../ui.tsx';

interface WindowRow {
  id: string;
  city: string;
  cityCode: string;
  businessDay: string;
  currency: string;
  status: SettlementWindowStatus;
  cutoffAt: string;
  closedAt: string | null;
  clearedAt: string | null;
}

// The SDK's SettlementWindows operation leaves out `city` (the id closeSettlementWindow takes): asked here.
const WINDOWS = `query ConsoleSettlementWindows($first: Int, $after: String, $status: SettlementWindowStatus) {
  settlementWindows(first: $first, after: $after, status: $status) {
    edges { node { id city cityCode businessDay currency status cutoffAt closedAt clearedAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;

type Outcome = { userErrors?: readonly UserErrorView[]; error?: unknown; done?: string };

export function SettlementPage() {
  const [status, setStatus] = useState<SettlementWindowStatus | ''>('');
  const [changed, setChanged] = useState(0);
  const [selected, setSelected] = useState<string>();
  const [outcome, setOutcome] = useState<Outcome>({});
  const paged = usePaged((after) => apiClient().request<{ settlementWindows: Connection<WindowRow> }>(WINDOWS, { first: 20, after, status: status || null }), status, [changed]);

  const act = async (kind: 'close' | 'clear' | 'reconcile', w: WindowRow) => {
    setOutcome({});
    try {
      if (kind === 'close') {
        const r = await apiClient().mutate(CloseSettlementWindowDocument, { input: { city: w.city, businessDay: w.businessDay } });
        setOutcome(r.ok ? {} : { userErrors: r.userErrors });
      } else if (kind === 'clear') {
        const r = await apiClient().mutate(ClearSettlementWindowDocument, { input: { window: w.id } });
        setOutcome(r.ok ? {} : { userErrors: r.userErrors });
      } else {
        const r = await apiClient().mutate(ReconcileSettlementWindowDocument, { input: { window: w.id } });
        const run = r.data.reconcileSettlementWindow.run;
        setOutcome(r.ok && run ? { done: t('reconciled', { matched: run.matched, differences: run.differences, open: run.openDifferences }) } : { userErrors: r.userErrors });
        setSelected(w.id);
      }
    } catch (error) {
      setOutcome({ error });
    }
    setChanged((n) => n + 1);
  };

  const windows = paged.list.data?.settlementWindows;
  const chosen = windows?.edges.find((e) => e.node.id === selected)?.node;
  return (
    <>
      <Section title={t('windows')} id="windows-title">
        <div class="filters">
          <label>
            {t('status')}
            <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as SettlementWindowStatus | '')}>
              <option value="">{t('allStatuses')}</option>
              {(['OPEN', 'CLOSED', 'CLEARED', 'SETTLED'] as const).map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        </div>
        <UserErrors errors={outcome.userErrors} />
        <ErrorText error={outcome.error} />
        {outcome.done ? (
          <p class="ok" role="status" id="reconcile-done">
            {outcome.done}
          </p>
        ) : null}
        <PagedTable
          id="windows"
          paged={paged}
          connection={windows}
          rowKey={(w) => w.id}
          rowAttrs={(w) => ({ 'data-window': `${w.cityCode} ${w.businessDay}` })}
          columns={[
            { header: t('businessDay'), rowHeader: true, cell: (w) => w.businessDay },
            { header: t('city'), cell: (w) => w.cityCode },
            { header: t('status'), cell: (w) => <Status value={w.status} /> },
            { header: t('cutoff'), cell: (w) => formatTime(w.closedAt ?? w.cutoffAt) },
            { header: t('actions'), cell: (w) => <WindowActions window={w} act={act} onShow={() => setSelected(w.id)} /> },
          ]}
        />
      </Section>
      {chosen ? <Differences window={chosen} refresh={changed} /> : null}
    </>
  );
}

function Differences({ window: w, refresh }: { window: WindowRow; refresh: number }) {
  const [resolved, setResolved] = useState(0);
  const paged = usePaged((after) => apiClient().execute(ReconciliationDifferencesDocument, { window: w.id, first: 20, after }), w.id, [refresh, resolved]);
  return (
    <Section title={`${t('differences')} · ${w.cityCode} ${w.businessDay}`} id="differences-title">
      <PagedTable
        id="differences"
        paged={paged}
        connection={paged.list.data?.reconciliationDifferences}
        rowKey={(d) => d.id}
        rowAttrs={(d) => ({ 'data-difference': d.gatewayReference ?? d.ourReference ?? d.id })}
        columns={[
          { header: t('kind'), cell: (d) => d.kind },
          { header: t('reference'), cell: (d) => <code>{d.gatewayReference ?? d.ourReference}</code> },
          { header: t('ours'), num: true, cell: (d) => formatMoney(d.ourAmount) },
          { header: t('theirs'), num: true, cell: (d) => formatMoney(d.gatewayAmount) },
          { header: t('status'), cell: (d) => <Status value={d.status} /> },
          {
            header: t('note'),
            cell: (d) => (d.status === 'OPEN' ? <ResolveForm id={d.id} label={d.gatewayReference ?? d.ourReference ?? d.id} onResolved={() => setResolved((n) => n + 1)} /> : d.note),
          },
        ]}
      />
    </Section>
  );
}

/** What can be done to a window in its status: close an open one, clear a closed one, reconcile a cleared one. */
function WindowActions({ window: w, act, onShow }: { window: WindowRow; act(kind: 'close' | 'clear' | 'reconcile', w: WindowRow): void; onShow(): void }) {
  const label = `${w.cityCode} ${w.businessDay}`;
  return (
    <span class="actions">
      {w.status === 'OPEN' ? (
        <button type="button" onClick={() => act('close', w)} aria-label={`${t('close')} ${label}`}>
          {t('close')}
        </button>
      ) : null}
      {w.status === 'CLOSED' ? (
        <button type="button" onClick={() => act('clear', w)} aria-label={`${t('clear')} ${label}`}>
          {t('clear')}
        </button>
      ) : null}
      {w.status === 'CLEARED' || w.status === 'SETTLED' ? (
        <>
          <button type="button" onClick={() => act('reconcile', w)} aria-label={`${t('reconcile')} ${label}`}>
            {t('reconcile')}
          </button>
          <button type="button" onClick={onShow} aria-label={`${t('showDifferences')} ${label}`}>
            {t('showDifferences')}
          </button>
        </>
      ) : null}
    </span>
  );
}

function ResolveForm({ id, label, onResolved }: { id: string; label: string; onResolved(): void }) {
  const [note, setNote] = useState('');
  const [outcome, setOutcome] = useState<Outcome>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    try {
      const r = await apiClient().mutate(ResolveReconciliationDifferenceDocument, { input: { difference: id, note } });
      if (!r.ok) setOutcome({ userErrors: r.userErrors });
      else onResolved();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <form class="inline" onSubmit={submit}>
      <input aria-label={`${t('note')} ${label}`} value={note} maxLength={1000} required onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
      <button type="submit" aria-label={`${t('resolve')} ${label}`}>
        {t('resolve')}
      </button>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
    </form>
  );
}
