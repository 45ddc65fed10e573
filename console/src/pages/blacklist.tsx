/**
 * Card company: the blacklist (黑名单) as terminals receive it: every change to its cards' entries
 * (added when a card is blocked or reported lost, removed when unblocked or found), oldest first,
 * 100 a page. The list pages by version, the keyset terminals use (`since`), never by offset.
 */
import { BlacklistDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { Table } from '../table.tsx';
import { ErrorText, Section, Status, useLoad } from '../ui.tsx';

export function BlacklistPage() {
  // The `since` of each page seen: "First page" and "Next page" as in every other list.
  const [since, setSince] = useState<number[]>([0]);
  const delta = useLoad(() => apiClient().execute(BlacklistDocument, { first: 100, since: since[since.length - 1] }), [since]);
  const d = delta.data?.blacklist;
  return (
    <Section title={t('blacklist')} id="blacklist-title">
      <p>{d ? t('blacklistVersion', { version: d.latestVersion }) : t('loading')}</p>
      <ErrorText error={delta.error} />
      {d ? (
        <Table
          id="blacklist"
          rows={d.entries}
          rowKey={(e) => String(e.version)}
          rowAttrs={(e) => ({ 'data-asn': e.asn, 'data-action': e.action })}
          columns={[
            { header: t('version'), num: true, cell: (e) => e.version },
            { header: 'ASN', rowHeader: true, cell: (e) => <code>{e.asn}</code> },
            { header: t('change'), cell: (e) => <Status value={e.action} /> },
            { header: t('reason'), cell: (e) => e.reason ?? '—' },
            { header: t('when'), cell: (e) => formatTime(e.at) },
          ]}
        />
      ) : null}
      <nav class="pager" aria-label="pages">
        <button type="button" onClick={() => setSince([0])} disabled={since.length === 1}>
          {t('firstPage')}
        </button>
        <span>{since.length}</span>
        <button type="button" onClick={() => d && setSince((s) => [...s, d.entries[d.entries.length - 1]!.version])} disabled={!d?.hasMore}>
          {t('nextPage')}
        </button>
      </nav>
    </Section>
  );
}
