/**
 * Card company: find a card by the number printed on it, see its purse and history, block or
 * unblock it, report it lost (its ASN goes on the blacklist), replace it (补卡) with a new card.
 */
import { BlockCardDocument, CardHistoryDocument, CardsDocument, type CardType, ReplaceCardDocument, ReportCardLostDocument, UnblockCardDocument } from '@onecard/sdk/browser';
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
  // What the last replacement answered: it outlives the form, which goes with the card's new status.
  const [replaced, setReplaced] = useState<string>();
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
            setReplaced(undefined);
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
      {replaced ? (
        <p class="ok" role="status" id="replace-done">
          {replaced}
        </p>
      ) : null}
      {card && ['ACTIVE', 'LOST', 'BLOCKED'].includes(card.status) ? (
        <ReplaceForm
          key={card.id}
          card={card}
          onReplaced={(said) => {
            setReplaced(said);
            setChanged((n) => n + 1);
          }}
        />
      ) : null}
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

/**
 * 补卡: the new card's number, ASN, chip, key version and validity. The old card becomes REPLACED
 * (and goes on the blacklist); its purse moves to the new card when the wait for its offline
 * transactions is over, which the answer says.
 */
function ReplaceForm({ card, onReplaced }: { card: { id: string; number: string; cardType: CardType }; onReplaced(said: string): void }) {
  const [outcome, setOutcome] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const data = new FormData(e.currentTarget as HTMLFormElement);
    const field = (name: string) => String(data.get(name) ?? '').trim();
    try {
      const r = await apiClient().mutate(ReplaceCardDocument, {
        input: {
          card: card.id,
          reason: field('reason') || null,
          newCard: { cardNumber: field('number').replace(/\s+/g, ''), asn: field('asn'), cardType: field('type') as CardType, keyVersion: Number(field('keyVersion')), issuedOn: field('issuedOn'), expiresOn: field('expiresOn') },
        },
      });
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      const { card: made, balanceTransfer } = r.data.replaceCard;
      onReplaced(t('replaced', { number: made!.number, amount: formatMoney(balanceTransfer?.amount), dueAt: formatTime(balanceTransfer?.dueAt) }));
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('replaceCard', { number: card.number })} id="replace-title">
      <form class="card-form" onSubmit={submit}>
        <label>
          {t('newCardNumber')}
          <input id="replace-number" name="number" inputMode="numeric" required autoComplete="off" />
        </label>
        <label>
          ASN
          <input id="replace-asn" name="asn" required spellcheck={false} autoComplete="off" />
        </label>
        <label>
          {t('chip')}
          <select id="replace-type" name="type" defaultValue={card.cardType}>
            <option value="CPU">CPU</option>
            <option value="M1">M1</option>
          </select>
        </label>
        <label>
          {t('keyVersion')}
          <input id="replace-key-version" name="keyVersion" type="number" min={1} defaultValue="1" required />
        </label>
        <label>
          {t('issuedOn')}
          <input id="replace-issued" name="issuedOn" type="date" required />
        </label>
        <label>
          {t('expiresOn')}
          <input id="replace-expires" name="expiresOn" type="date" required />
        </label>
        <label>
          {t('reason')}
          <input id="replace-reason" name="reason" maxLength={200} />
        </label>
        <button type="submit" id="replace-submit">
          {t('replace')}
        </button>
      </form>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
    </Section>
  );
}
