/**
 * Card company: its pending loads (`pendingLoads`), oldest first. UNRESOLVED ones (a write onto the
 * card started, MAC2 issued, no reader writing it now) are settled here with what the back office
 * found out: *Loaded* books it onto the card, *Not loaded* releases it to be written again or
 * refunded (resolvePendingLoad, with a note kept in the load's history). WAITING ones wait for the
 * card's next tap and offer nothing.
 */
import { PendingLoadsDocument, type PendingLoadStatus, ResolvePendingLoadDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatMoney, formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors } from '../ui.tsx';

export function PendingLoadsPage() {
  const [status, setStatus] = useState<PendingLoadStatus>('UNRESOLVED');
  const [changed, setChanged] = useState(0);
  const [outcome, setOutcome] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown; done?: string }>({});
  const paged = usePaged((after) => apiClient().execute(PendingLoadsDocument, { status, first: 20, after }), status, [changed]);
  // One idempotency key per load being settled, kept until an answer comes: a double click or a
  // retry after a lost answer settles once. A refusal is an answer too: the clerk's next try (the other
  // button, another note) is a new request, not the refusal replayed or IDEMPOTENCY_KEY_REUSED.
  const [keys] = useState(() => new Map<string, string>());
  const [notes, setNotes] = useState<Record<string, string>>({});

  const resolve = async (topUp: string, cardNumber: string, loaded: boolean) => {
    setOutcome({});
    const note = (notes[topUp] ?? '').trim();
    if (!note) return setOutcome({ error: new Error(t('noteRequired')) });
    if (!keys.has(topUp)) keys.set(topUp, crypto.randomUUID());
    try {
      const r = await apiClient().mutate(ResolvePendingLoadDocument, { input: { topUp, loaded, note, idempotencyKey: keys.get(topUp)! } });
      keys.delete(topUp);
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      setOutcome({ done: t(loaded ? 'loadSettledLoaded' : 'loadSettledReleased', { number: cardNumber }) });
      setChanged((n) => n + 1);
    } catch (error) {
      setOutcome({ error });
    }
  };

  return (
    <Section title={t('pendingLoads')} id="pending-loads-title">
      <p>{t('pendingLoadsLead')}</p>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          {t('status')}
          <select id="pending-status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as PendingLoadStatus)}>
            <option value="UNRESOLVED">{t('pendingUnresolved')}</option>
            <option value="WAITING">{t('pendingWaiting')}</option>
          </select>
        </label>
      </form>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id="pending-settled">
          {outcome.done}
        </p>
      ) : null}
      <PagedTable
        id="pending-loads"
        paged={paged}
        connection={paged.list.data?.pendingLoads}
        rowKey={(l) => l.topUp.id}
        rowAttrs={(l) => ({ 'data-card': l.cardNumber, 'data-status': l.status })}
        columns={[
          { header: t('cardNumber'), rowHeader: true, cell: (l) => <code>{l.cardNumber}</code> },
          { header: t('amount'), num: true, cell: (l) => formatMoney(l.amount) },
          { header: t('origin'), cell: (l) => l.topUp.origin },
          { header: t('status'), cell: (l) => <Status value={l.status} /> },
          { header: t('writeStarted'), cell: (l) => formatTime(l.writeStartedAt) },
          { header: t('created'), cell: (l) => formatTime(l.topUp.createdAt) },
          {
            header: t('actions'),
            cell: (l) =>
              l.status === 'UNRESOLVED' ? (
                <form
                  class="actions"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void resolve(l.topUp.id, l.cardNumber, false);
                  }}
                >
                  <label>
                    {t('note')}
                    <input name="note" aria-label={`${t('note')} ${l.cardNumber}`} value={notes[l.topUp.id] ?? ''} maxLength={500} onInput={(e) => setNotes((n) => ({ ...n, [l.topUp.id]: (e.target as HTMLInputElement).value }))} />
                  </label>
                  <button type="button" aria-label={`${t('markLoaded')} ${l.cardNumber}`} onClick={() => resolve(l.topUp.id, l.cardNumber, true)}>
                    {t('markLoaded')}
                  </button>
                  <button type="submit" aria-label={`${t('markNotLoaded')} ${l.cardNumber}`}>
                    {t('markNotLoaded')}
                  </button>
                </form>
              ) : null,
          },
        ]}
      />
    </Section>
  );
}
