/**
 * Card company: find a card by the number printed on it, see its purse and history, block or
 * unblock it, report it lost (its ASN goes on the blacklist).
 */
import { BlockCardDocument, CardHistoryDocument, CardsDocument, ReportCardLostDocument, UnblockCardDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatMoney, formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors, useLoad } from '../ui.tsx';

export function CardsPage() {
  const [typed, setTyped] = useState('');
  const [number, setNumber] = useState<string>();
  const [changed, setChanged] = useState(0);
  const [reason, setReason] = useState('');
  const [outcome, setOutcome] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown }>({});
  const found = useLoad(async () => (number ? apiClient().execute(CardsDocument, { number, first: 1 }) : undefined), [number, changed]);
  const card = found.data?.cards.edges[0]?.node;

  const act = async (kind: 'block' | 'unblock' | 'lost') => {
    if (!card) return;
    setOutcome({});
    try {
      const input = { card: card.id, reason: reason.trim() || null };
      const r =
        kind === 'block'
          ? await apiClient().mutate(BlockCardDocument, { input })
          : kind === 'unblock'
            ? await apiClient().mutate(UnblockCardDocument, { input })
            : await apiClient().mutate(ReportCardLostDocument, { input });
      if (!r.ok) setOutcome({ userErrors: r.userErrors });
      setReason('');
      setChanged((n) => n + 1);
    } catch (error) {
      setOutcome({ error });
    }
  };

  return (
    <>
      <Section title={t('cards')} id="cards-title">
        <form
          class="filters"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            setNumber(typed.replace(/\s+/g, '') || undefined);
          }}
        >
          <label>
            {t('cardNumber')}
            <input id="card-number" inputMode="numeric" autoComplete="off" value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit" id="card-search">
            {t('search')}
          </button>
        </form>
        <ErrorText error={found.error} />
        {number && found.data && !card ? (
          <p role="status" id="card-not-found">
            {t('noSuchCard', { number })}
          </p>
        ) : null}
        {card ? (
          <div id="card-found" data-status={card.status}>
            <dl class="facts">
              <dt>{t('cardNumber')}</dt>
              <dd>{card.number}</dd>
              <dt>ASN</dt>
              <dd>
                <code>{card.asn}</code>
              </dd>
              <dt>{t('status')}</dt>
              <dd>
                <Status value={card.status} />
              </dd>
              <dt>{t('purse')}</dt>
              <dd>{formatMoney(card.purseBalance)}</dd>
              <dt>{t('pendingLoad')}</dt>
              <dd>{formatMoney(card.pendingLoad)}</dd>
              <dt>{t('validity')}</dt>
              <dd>
                {card.issuedOn} – {card.expiresOn}
              </dd>
            </dl>
            <form class="inline" onSubmit={(e) => e.preventDefault()}>
              <label>
                {t('reason')}
                <input id="card-reason" value={reason} maxLength={200} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
              </label>
              {card.status === 'ACTIVE' ? (
                <>
                  <button type="button" onClick={() => act('block')}>
                    {t('block')}
                  </button>
                  <button type="button" class="danger" onClick={() => act('lost')}>
                    {t('reportLost')}
                  </button>
                </>
              ) : null}
              {card.status === 'BLOCKED' ? (
                <button type="button" onClick={() => act('unblock')}>
                  {t('unblock')}
                </button>
              ) : null}
            </form>
            <UserErrors errors={outcome.userErrors} />
            <ErrorText error={outcome.error} />
          </div>
        ) : null}
      </Section>
      {card ? <History cardId={card.id} refresh={changed} /> : null}
    </>
  );
}

function History({ cardId, refresh }: { cardId: string; refresh: number }) {
  const paged = usePaged((after) => apiClient().execute(CardHistoryDocument, { card: cardId, first: 20, after }), cardId, [refresh]);
  return (
    <Section title={t('history')} id="history-title">
      <PagedTable
        id="card-history"
        paged={paged}
        connection={paged.list.data?.card?.history}
        rowKey={(h) => h.id}
        columns={[
          { header: t('kind'), cell: (h) => h.kind },
          { header: t('description'), cell: (h) => h.description },
          { header: t('amount'), num: true, cell: (h) => formatMoney(h.amount) },
          { header: t('balanceAfter'), num: true, cell: (h) => formatMoney(h.balanceAfter) },
          { header: t('posted'), cell: (h) => formatTime(h.at) },
        ]}
      />
    </Section>
  );
}
