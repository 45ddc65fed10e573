/**
 * Operator: the ledger check (the invariants of ledger.md: every entry sums to zero per currency,
 * every balance equals its postings, no non-negative account below zero), run on demand.
 */
import { LedgerProblemsDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { Table } from '../table.tsx';
import { ErrorText, Section, useLoad } from '../ui.tsx';

export function LedgerPage() {
  const [round, setRound] = useState(0);
  const check = useLoad(async () => ({ ...(await apiClient().execute(LedgerProblemsDocument)), at: new Date().toISOString() }), [round]);
  const problems = check.data?.ledgerProblems;
  return (
    <Section title={t('ledgerCheck')} id="ledger-title">
      <button type="button" id="ledger-run" onClick={() => setRound((n) => n + 1)} disabled={check.loading}>
        {t('runLedgerCheck')}
      </button>
      <ErrorText error={check.error} />
      {problems ? (
        <div id="ledger-result" role="status" data-problems={problems.length}>
          <p class={problems.length === 0 ? 'ok' : 'error'}>
            {problems.length === 0 ? t('ledgerBalances') : t('ledgerProblems', { count: problems.length })} ({formatTime(check.data!.at)})
          </p>
          {problems.length > 0 ? (
            <Table
              rows={problems}
              rowKey={(p) => `${p.rule}:${p.subject}`}
              columns={[
                { header: t('rule'), cell: (p) => <code>{p.rule}</code> },
                { header: t('subject'), cell: (p) => <code>{p.subject}</code> },
                { header: t('details'), cell: (p) => p.detail },
              ]}
            />
          ) : null}
        </div>
      ) : null}
    </Section>
  );
}
