/**
 * Biller: import a month's bills from a CSV file with the per-row report shown inline (all or
 * nothing: one refused row and nothing is imported), and the bills, a keyset page at a time.
 */
import { BillsDocument, type ImportBillsCsvMutation, ImportBillsCsvDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatMoney } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, Table, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors } from '../ui.tsx';

type BillImport = NonNullable<ImportBillsCsvMutation['importBillsCsv']['import']>;

export function BillsPage() {
  const [imported, setImported] = useState(0);
  return (
    <>
      <ImportForm onImported={() => setImported((n) => n + 1)} />
      <BillList refresh={imported} />
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

function BillList({ refresh }: { refresh: number }) {
  const paged = usePaged((after) => apiClient().execute(BillsDocument, { first: 20, after }), refresh);
  return (
    <Section title={t('bills')} id="bills-title">
      <PagedTable
        id="bills"
        paged={paged}
        connection={paged.list.data?.bills}
        rowKey={(b) => b.id}
        columns={[
          { header: t('account'), cell: (b) => b.accountNumber },
          { header: t('period'), cell: (b) => b.period },
          { header: t('status'), cell: (b) => <Status value={b.status} /> },
          { header: t('amountDue'), num: true, cell: (b) => formatMoney(b.amountDue) },
          { header: t('dueDate'), cell: (b) => b.dueDate },
          { header: t('reference'), cell: (b) => b.billerReference },
        ]}
      />
    </Section>
  );
}
