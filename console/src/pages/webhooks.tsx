/**
 * Merchant (and any party with webhooks:manage): its webhook endpoints, a new one with its signing
 * secret shown once, each endpoint's delivery log, and replaying an event to it.
 */
import { CreateWebhookEndpointDocument, ReplayWebhookEventDocument, WebhookDeliveriesDocument, WebhookEndpointsDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { ErrorText, Pager, Section, Status, type UserErrorView, UserErrors, useLoad, usePager } from '../ui.tsx';

type Outcome = { userErrors?: readonly UserErrorView[]; error?: unknown; done?: string };

export function WebhooksPage() {
  const [changed, setChanged] = useState(0);
  const [selected, setSelected] = useState<{ id: string; url: string }>();
  const pager = usePager(null);
  const list = useLoad(() => apiClient().execute(WebhookEndpointsDocument, { first: 20, after: pager.after }), [pager.after, changed]);
  const endpoints = list.data?.webhookEndpoints;
  return (
    <>
      <CreateEndpoint onCreated={() => setChanged((n) => n + 1)} />
      <Section title={t('webhookEndpoints')} id="endpoints-title">
        <ErrorText error={list.error} />
        {endpoints && endpoints.edges.length === 0 ? <p>{t('none')}</p> : null}
        {endpoints && endpoints.edges.length > 0 ? (
          <table id="endpoints">
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col">{t('eventTypes')}</th>
                <th scope="col">{t('status')}</th>
                <th scope="col">{t('created')}</th>
                <th scope="col">{t('actions')}</th>
              </tr>
            </thead>
            <tbody>
              {endpoints.edges.map(({ node: e }) => (
                <tr key={e.id} data-endpoint={e.url}>
                  <th scope="row">
                    <code>{e.url}</code>
                  </th>
                  <td>{e.eventTypes.join(', ')}</td>
                  <td>
                    <Status value={e.enabled ? 'ENABLED' : 'DISABLED'} />
                  </td>
                  <td>{formatTime(e.createdAt)}</td>
                  <td>
                    <button type="button" onClick={() => setSelected({ id: e.id, url: e.url })} aria-label={`${t('deliveries')} ${e.url}`}>
                      {t('deliveries')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <Pager pager={pager} pageInfo={endpoints?.pageInfo} />
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
  const pager = usePager(endpoint.id);
  const [replayed, setReplayed] = useState(0);
  const [outcome, setOutcome] = useState<Outcome>({});
  const list = useLoad(() => apiClient().execute(WebhookDeliveriesDocument, { endpoint: endpoint.id, first: 20, after: pager.after }), [endpoint.id, pager.after, replayed]);
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
  const deliveries = list.data?.webhookDeliveries;
  return (
    <Section title={`${t('deliveries')} · ${endpoint.url}`} id="deliveries-title">
      <ErrorText error={list.error} />
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id="replay-done">
          {outcome.done}
        </p>
      ) : null}
      {deliveries && deliveries.edges.length === 0 ? <p>{t('none')}</p> : null}
      {deliveries && deliveries.edges.length > 0 ? (
        <table id="deliveries">
          <thead>
            <tr>
              <th scope="col">{t('event')}</th>
              <th scope="col">{t('status')}</th>
              <th scope="col" class="num">
                {t('attempts')}
              </th>
              <th scope="col">{t('created')}</th>
              <th scope="col">{t('actions')}</th>
            </tr>
          </thead>
          <tbody>
            {deliveries.edges.map(({ node: d }) => (
              <tr key={d.id} data-event={d.event.type} data-replay={String(d.replay)}>
                <td>
                  <code>{d.event.type}</code>
                  {d.replay ? ` (${t('replay')})` : ''}
                </td>
                <td>
                  <Status value={d.status} />
                </td>
                <td class="num">{d.attemptCount}</td>
                <td>{formatTime(d.createdAt)}</td>
                <td>
                  <button type="button" onClick={() => replay(d.event.id)} aria-label={`${t('replay')} ${d.event.type} ${formatTime(d.createdAt)}`}>
                    {t('replay')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager pager={pager} pageInfo={deliveries?.pageInfo} />
    </Section>
  );
}
