/**
 * Card company: find a card by the number printed on it, see its purse and history, block or
 * unblock it, report it lost (its ASN goes on the blacklist).
 */
import { BlockCardDocument, CardHistoryDocument, CardsDocument, ReportCardLostDocument, UnblockCardDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatMoney, formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { ErrorText, Pager, Section, Status, type UserErrorView, UserErrors, useLoad, usePager } from '../ui.tsx';

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
  const pager = usePager(cardId);
  const list = useLoad(() => apiClient().execute(CardHistoryDocument, { card: cardId, first: 20, after: pager.after }), [cardId, pager.after, refresh]);
  const history = list.data?.card?.history;
  return (
    <Section title={t('history')} id="history-title">
      <ErrorText error={list.error} />
      {history && history.edges.length === 0 ? <p>{t('none')}</p> : null}
      {history && history.edges.length > 0 ? (
        <table id="card-history">
          <thead>
            <tr>
              <th scope="col">{t('kind')}</th>
              <th scope="col">{t('description')}</th>
              <th scope="col" class="num">
                {t('amount')}
              </th>
              <th scope="col" class="num">
                {t('balanceAfter')}
              </th>
              <th scope="col">{t('posted')}</th>
            </tr>
          </thead>
          <tbody>
            {history.edges.map(({ node: h }) => (
              <tr key={h.id}>
                <td>{h.kind}</td>
                <td>{h.description}</td>
                <td class="num">{formatMoney(h.amount)}</td>
                <td class="num">{formatMoney(h.balanceAfter)}</td>
                <td>{formatTime(h.at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager pager={pager} pageInfo={history?.pageInfo} />
    </Section>
  );
}
