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
import { ErrorText, Pager, Section, Status, type UserErrorView, UserErrors, useLoad, usePager } from '../ui.tsx';

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
  const pager = usePager(status);
  const [changed, setChanged] = useState(0);
  const [selected, setSelected] = useState<string>();
  const [outcome, setOutcome] = useState<Outcome>({});
  const list = useLoad(
    () => apiClient().request<{ settlementWindows: { edges: { node: WindowRow }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(WINDOWS, { first: 20, after: pager.after, status: status || null }),
    [pager.after, status, changed],
  );

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

  const windows = list.data?.settlementWindows;
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
        <ErrorText error={list.error} />
        <UserErrors errors={outcome.userErrors} />
        <ErrorText error={outcome.error} />
        {outcome.done ? (
          <p class="ok" role="status" id="reconcile-done">
            {outcome.done}
          </p>
        ) : null}
        {windows && windows.edges.length === 0 ? <p>{t('none')}</p> : null}
        {windows && windows.edges.length > 0 ? (
          <table id="windows">
            <thead>
              <tr>
                <th scope="col">{t('businessDay')}</th>
                <th scope="col">{t('city')}</th>
                <th scope="col">{t('status')}</th>
                <th scope="col">{t('cutoff')}</th>
                <th scope="col">{t('actions')}</th>
              </tr>
            </thead>
            <tbody>
              {windows.edges.map(({ node: w }) => (
                <tr key={w.id} data-window={`${w.cityCode} ${w.businessDay}`}>
                  <th scope="row">{w.businessDay}</th>
                  <td>{w.cityCode}</td>
                  <td>
                    <Status value={w.status} />
                  </td>
                  <td>{formatTime(w.closedAt ?? w.cutoffAt)}</td>
                  <td class="actions">
                    {w.status === 'OPEN' ? (
                      <button type="button" onClick={() => act('close', w)} aria-label={`${t('close')} ${w.cityCode} ${w.businessDay}`}>
                        {t('close')}
                      </button>
                    ) : null}
                    {w.status === 'CLOSED' ? (
                      <button type="button" onClick={() => act('clear', w)} aria-label={`${t('clear')} ${w.cityCode} ${w.businessDay}`}>
                        {t('clear')}
                      </button>
                    ) : null}
                    {w.status === 'CLEARED' || w.status === 'SETTLED' ? (
                      <>
                        <button type="button" onClick={() => act('reconcile', w)} aria-label={`${t('reconcile')} ${w.cityCode} ${w.businessDay}`}>
                          {t('reconcile')}
                        </button>
                        <button type="button" onClick={() => setSelected(w.id)} aria-label={`${t('showDifferences')} ${w.cityCode} ${w.businessDay}`}>
                          {t('showDifferences')}
                        </button>
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <Pager pager={pager} pageInfo={windows?.pageInfo} />
      </Section>
      {chosen ? <Differences window={chosen} refresh={changed} /> : null}
    </>
  );
}

function Differences({ window: w, refresh }: { window: WindowRow; refresh: number }) {
  const pager = usePager(w.id);
  const [resolved, setResolved] = useState(0);
  const list = useLoad(() => apiClient().execute(ReconciliationDifferencesDocument, { window: w.id, first: 20, after: pager.after }), [w.id, pager.after, refresh, resolved]);
  const diffs = list.data?.reconciliationDifferences;
  return (
    <Section title={`${t('differences')} · ${w.cityCode} ${w.businessDay}`} id="differences-title">
      <ErrorText error={list.error} />
      {diffs && diffs.edges.length === 0 ? <p>{t('none')}</p> : null}
      {diffs && diffs.edges.length > 0 ? (
        <table id="differences">
          <thead>
            <tr>
              <th scope="col">{t('kind')}</th>
              <th scope="col">{t('reference')}</th>
              <th scope="col" class="num">
                {t('ours')}
              </th>
              <th scope="col" class="num">
                {t('theirs')}
              </th>
              <th scope="col">{t('status')}</th>
              <th scope="col">{t('note')}</th>
            </tr>
          </thead>
          <tbody>
            {diffs.edges.map(({ node: d }) => (
              <tr key={d.id} data-difference={d.gatewayReference ?? d.ourReference ?? d.id}>
                <td>{d.kind}</td>
                <td>
                  <code>{d.gatewayReference ?? d.ourReference}</code>
                </td>
                <td class="num">{formatMoney(d.ourAmount)}</td>
                <td class="num">{formatMoney(d.gatewayAmount)}</td>
                <td>
                  <Status value={d.status} />
                </td>
                <td>{d.status === 'OPEN' ? <ResolveForm id={d.id} label={d.gatewayReference ?? d.ourReference ?? d.id} onResolved={() => setResolved((n) => n + 1)} /> : d.note}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager pager={pager} pageInfo={diffs?.pageInfo} />
    </Section>
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
