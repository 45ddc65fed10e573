/**
 * Merchant (and any party with webhooks:manage): its webhook endpoints, a new one with its signing
 * secret shown once, each endpoint's delivery log, and replaying an event to it; rotating an
 * endpoint's secret (the new one shown once, the old one signing beside it for 24 hours) and
 * disabling or re-enabling it.
 */
import { CreateWebhookEndpointDocument, ReplayWebhookEventDocument, RotateWebhookSecretDocument, UpdateWebhookEndpointDocument, WebhookDeliveriesDocument, WebhookEndpointsDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors } from '../ui.tsx';

type Outcome = { userErrors?: readonly UserErrorView[]; error?: unknown; done?: string };

export function WebhooksPage() {
  const [changed, setChanged] = useState(0);
  const [selected, setSelected] = useState<{ id: string; url: string }>();
  const paged = usePaged((after) => apiClient().execute(WebhookEndpointsDocument, { first: 20, after }), null, [changed]);
  const [outcome, setOutcome] = useState<Outcome & { secret?: string }>({});
  const rotate = async (endpoint: { id: string; url: string }) => {
    setOutcome({});
    if (!confirm(t('confirmRotate', { url: endpoint.url }))) return;
    try {
      const r = await apiClient().mutate(RotateWebhookSecretDocument, { input: { endpoint: endpoint.id } });
      setOutcome(r.ok ? { secret: r.data.rotateWebhookSecret.secret ?? undefined, done: t('secretRotated', { url: endpoint.url }) } : { userErrors: r.userErrors });
      setChanged((n) => n + 1);
    } catch (error) {
      setOutcome({ error });
    }
  };
  const setEnabled = async (endpoint: { id: string; url: string }, enabled: boolean) => {
    setOutcome({});
    try {
      const r = await apiClient().mutate(UpdateWebhookEndpointDocument, { input: { endpoint: endpoint.id, enabled } });
      setOutcome(r.ok ? { done: t(enabled ? 'endpointEnabled' : 'endpointDisabled', { url: endpoint.url }) } : { userErrors: r.userErrors });
      setChanged((n) => n + 1);
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <>
      <CreateEndpoint onCreated={() => setChanged((n) => n + 1)} />
      <Section title={t('webhookEndpoints')} id="endpoints-title">
        <UserErrors errors={outcome.userErrors} />
        <ErrorText error={outcome.error} />
        {outcome.done ? (
          <div role="status" class={outcome.secret ? 'secret' : undefined} id="endpoint-changed">
            <p class="ok">{outcome.done}</p>
            {outcome.secret ? (
              <>
                <p>{t('secretOnce')}</p>
                <code id="rotated-secret">{outcome.secret}</code>
              </>
            ) : null}
          </div>
        ) : null}
        <PagedTable
          id="endpoints"
          paged={paged}
          connection={paged.list.data?.webhookEndpoints}
          rowKey={(e) => e.id}
          rowAttrs={(e) => ({ 'data-endpoint': e.url })}
          columns={[
            { header: 'URL', rowHeader: true, cell: (e) => <code>{e.url}</code> },
            { header: t('eventTypes'), cell: (e) => e.eventTypes.join(', ') },
            { header: t('status'), cell: (e) => <Status value={e.enabled ? 'ENABLED' : 'DISABLED'} /> },
            { header: t('created'), cell: (e) => formatTime(e.createdAt) },
            {
              header: t('actions'),
              cell: (e) => (
                <span class="actions">
                  <button type="button" onClick={() => setSelected({ id: e.id, url: e.url })} aria-label={`${t('deliveries')} ${e.url}`}>
                    {t('deliveries')}
                  </button>
                  <button type="button" onClick={() => rotate(e)} aria-label={`${t('rotateSecret')} ${e.url}`}>
                    {t('rotateSecret')}
                  </button>
                  <button type="button" onClick={() => setEnabled(e, !e.enabled)} aria-label={`${t(e.enabled ? 'disable' : 'enable')} ${e.url}`}>
                    {t(e.enabled ? 'disable' : 'enable')}
                  </button>
                </span>
              ),
            },
          ]}
        />
      </Section>
      {selected ? <Deliveries endpoint={selected} /> : null}
    </>
  );
}

function CreateEndpoint({ onCreated }: { onCreated(): void }) {
  const [url, setUrl] = useState('');
  const [types, setTypes] = useState('*');
  const [outcome, setOutcome] = useState<Outcome & { secret?: string }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    try {
      const r = await apiClient().mutate(CreateWebhookEndpointDocument, { input: { url: url.trim(), eventTypes: types.split(/[\s,]+/).filter(Boolean) } });
      if (!r.ok) {
        setOutcome({ userErrors: r.userErrors });
        return;
      }
      setOutcome({ secret: r.data.createWebhookEndpoint.secret ?? undefined });
      setUrl('');
      onCreated();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('newEndpoint')} id="new-endpoint-title">
      <form class="card-form" onSubmit={submit}>
        <label>
          URL
          <input id="endpoint-url" type="url" required value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} placeholder="https://shop.example/onecard-webhooks" />
        </label>
        <label>
          {t('eventTypes')}
          <input id="endpoint-types" value={types} onInput={(e) => setTypes((e.target as HTMLInputElement).value)} aria-describedby="endpoint-types-hint" />
        </label>
        <small id="endpoint-types-hint">{t('eventTypesHint')}</small>
        <button type="submit" id="endpoint-create">
          {t('create')}
        </button>
      </form>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.secret ? (
        <div role="status" class="secret" id="endpoint-secret">
          <p class="ok">{t('secretOnce')}</p>
          <code>{outcome.secret}</code>
        </div>
      ) : null}
    </Section>
  );
}

function Deliveries({ endpoint }: { endpoint: { id: string; url: string } }) {
  const [replayed, setReplayed] = useState(0);
  const [outcome, setOutcome] = useState<Outcome>({});
  const paged = usePaged((after) => apiClient().execute(WebhookDeliveriesDocument, { endpoint: endpoint.id, first: 20, after }), endpoint.id, [replayed]);
  const replay = async (eventId: string) => {
    setOutcome({});
    try {
      const r = await apiClient().mutate(ReplayWebhookEventDocument, { input: { event: eventId, endpoint: endpoint.id } });
      setOutcome(r.ok ? { done: t('replayed') } : { userErrors: r.userErrors });
      setReplayed((n) => n + 1);
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={`${t('deliveries')} · ${endpoint.url}`} id="deliveries-title">
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id="replay-done">
          {outcome.done}
        </p>
      ) : null}
      <PagedTable
        id="deliveries"
        paged={paged}
        connection={paged.list.data?.webhookDeliveries}
        rowKey={(d) => d.id}
        rowAttrs={(d) => ({ 'data-event': d.event.type, 'data-replay': String(d.replay) })}
        columns={[
          {
            header: t('event'),
            cell: (d) => (
              <>
                <code>{d.event.type}</code>
                {d.replay ? ` (${t('replay')})` : ''}
              </>
            ),
          },
          { header: t('status'), cell: (d) => <Status value={d.status} /> },
          { header: t('attempts'), num: true, cell: (d) => d.attemptCount },
          { header: t('created'), cell: (d) => formatTime(d.createdAt) },
          {
            header: t('actions'),
            cell: (d) => (
              <button type="button" onClick={() => replay(d.event.id)} aria-label={`${t('replay')} ${d.event.type} ${formatTime(d.createdAt)}`}>
                {t('replay')}
              </button>
            ),
          },
        ]}
      />
    </Section>
  );
}
