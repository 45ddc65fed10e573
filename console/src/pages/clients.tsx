/**
 * OAuth clients (`oauthClients`): the operator's every client, a party admin's own party's; kind,
 * name, scopes, status and when it was made, never a secret. The operator also registers a party's
 * console sign-in client here (a public client whose redirect URI is this console, with the scopes
 * its kind may hold: `clientKindScopes`) and disables a client (its tokens refused at once).
 */
import { BillersDocument, ClientKindScopesDocument, CreateOAuthClientDocument, DisableOAuthClientDocument, MerchantsDocument, OAuthClientsDocument, type PrincipalKind } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t, type WordKey } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors, useLoad } from '../ui.tsx';

type SignInKind = 'MERCHANT' | 'BILLER' | 'ISSUER' | 'OPERATOR';
const SIGN_IN_KINDS: SignInKind[] = ['MERCHANT', 'BILLER', 'ISSUER', 'OPERATOR'];
type Outcome = { userErrors?: readonly UserErrorView[]; error?: unknown; done?: string };

// Card companies by their city (the SDK's Cities operation does not ask for the card company).
const CARD_COMPANIES = `query ConsoleCardCompanies { cities(first: 100) { edges { node { code cardCompany { id name } } } } }`;

export function ClientsPage({ operator }: { operator: boolean }) {
  const [changed, setChanged] = useState(0);
  const [kind, setKind] = useState<PrincipalKind | ''>('');
  const paged = usePaged((after) => apiClient().execute(OAuthClientsDocument, { first: 20, after, kind: kind || null }), kind, [changed]);
  const [outcome, setOutcome] = useState<Outcome>({});
  const disable = async (client: { clientId: string; name: string }) => {
    setOutcome({});
    if (!confirm(t('confirmDisableClient', { name: client.name }))) return;
    try {
      const r = await apiClient().mutate(DisableOAuthClientDocument, { input: { clientId: client.clientId } });
      setOutcome(r.ok ? { done: t('clientDisabled', { name: client.name }) } : { userErrors: r.userErrors });
      setChanged((n) => n + 1);
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <>
      {operator ? <RegisterSignInClient onRegistered={() => setChanged((n) => n + 1)} /> : null}
      <Section title={t('oauthClients')} id="clients-title">
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            {t('kind')}
            <select id="clients-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as PrincipalKind | '')}>
              <option value="">{t('allKinds')}</option>
              {[...SIGN_IN_KINDS, 'CARDHOLDER_APP' as const].map((k) => (
                <option key={k} value={k}>
                  {t(`kind_${k}` as WordKey)}
                </option>
              ))}
            </select>
          </label>
        </form>
        <UserErrors errors={outcome.userErrors} />
        <ErrorText error={outcome.error} />
        {outcome.done ? (
          <p class="ok" role="status" id="client-disabled">
            {outcome.done}
          </p>
        ) : null}
        <PagedTable
          id="clients"
          paged={paged}
          connection={paged.list.data?.oauthClients}
          rowKey={(c) => c.clientId}
          rowAttrs={(c) => ({ 'data-client': c.clientId, 'data-name': c.name })}
          columns={[
            { header: t('name'), rowHeader: true, cell: (c) => c.name },
            { header: t('kind'), cell: (c) => t(`kind_${c.kind}` as WordKey) },
            { header: t('clientId'), cell: (c) => <code>{c.clientId}</code> },
            { header: t('scopes'), cell: (c) => <small>{c.scopes.join(' ')}</small> },
            { header: t('signIn'), cell: (c) => (c.redirectUris.length ? t('signInYes') : c.tokenEndpointAuthMethod) },
            { header: t('status'), cell: (c) => <Status value={c.disabled ? 'DISABLED' : 'ENABLED'} /> },
            { header: t('created'), cell: (c) => formatTime(c.createdAt) },
            ...(operator
              ? [
                  {
                    header: t('actions'),
                    cell: (c: { clientId: string; name: string; disabled: boolean }) =>
                      c.disabled ? null : (
                        <button type="button" aria-label={`${t('disable')} ${c.name}`} onClick={() => disable(c)}>
                          {t('disable')}
                        </button>
                      ),
                  },
                ]
              : []),
          ]}
        />
      </Section>
    </>
  );
}

/** A party's console sign-in client: its kind, its tenant, a name and the scopes its kind may hold (all ticked). */
function RegisterSignInClient({ onRegistered }: { onRegistered(): void }) {
  const [kind, setKind] = useState<SignInKind>('MERCHANT');
  const scopes = useLoad(() => apiClient().execute(ClientKindScopesDocument), []);
  const tenants = useLoad(() => tenantsOf(kind), [kind]);
  const [outcome, setOutcome] = useState<Outcome>({});
  const redirectUri = `${location.origin}/console/`;
  const kindScopes = scopes.data?.clientKindScopes.find((k) => k.kind === kind)?.scopes ?? [];
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    try {
      const r = await apiClient().mutate(CreateOAuthClientDocument, {
        input: { kind, tenant: kind === 'OPERATOR' ? null : String(data.get('tenant') ?? ''), name: String(data.get('name') ?? '').trim(), scopes: data.getAll('scope').map(String), redirectUris: [redirectUri] },
      });
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      setOutcome({ done: t('signInClientMade', { name: r.data.createOAuthClient.client!.name, clientId: r.data.createOAuthClient.client!.clientId }) });
      form.reset();
      onRegistered();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('newSignInClient')} id="new-client-title">
      <p>{t('newSignInClientLead', { uri: redirectUri })}</p>
      <form class="card-form" onSubmit={submit}>
        <label>
          {t('kind')}
          <select id="client-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as SignInKind)}>
            {SIGN_IN_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(`kind_${k}` as WordKey)}
              </option>
            ))}
          </select>
        </label>
        {kind === 'OPERATOR' ? null : (
          <label>
            {t('organisation')}
            <select id="client-tenant" name="tenant" required>
              {tenants.data?.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          {t('name')}
          <input id="client-name" name="name" required maxLength={200} />
        </label>
        <fieldset id="client-scopes">
          <legend>{t('scopes')}</legend>
          {kindScopes.map((s) => (
            <label key={`${kind}:${s.name}`} class="check">
              <input type="checkbox" name="scope" value={s.name} defaultChecked /> <code>{s.name}</code> <small>{s.description}</small>
            </label>
          ))}
        </fieldset>
        <button type="submit" id="client-create">
          {t('register')}
        </button>
      </form>
      <ErrorText error={scopes.error ?? tenants.error} />
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id="client-made">
          {outcome.done}
        </p>
      ) : null}
    </Section>
  );
}

/** The organisations a sign-in client of `kind` may act for (the first 100 of each). */
async function tenantsOf(kind: SignInKind): Promise<{ id: string; name: string }[]> {
  if (kind === 'MERCHANT') return (await apiClient().execute(MerchantsDocument, { first: 100 })).merchants.edges.map((e) => ({ id: e.node.id, name: `${e.node.name} · ${e.node.city.code}` }));
  if (kind === 'BILLER') return (await apiClient().execute(BillersDocument, { first: 100 })).billers.edges.map((e) => ({ id: e.node.id, name: `${e.node.name} · ${e.node.city.code}` }));
  if (kind === 'ISSUER') {
    const data = await apiClient().request<{ cities: { edges: { node: { code: string; cardCompany: { id: string; name: string } | null } }[] } }>(CARD_COMPANIES);
    return data.cities.edges.flatMap((e) => (e.node.cardCompany ? [{ id: e.node.cardCompany.id, name: `${e.node.cardCompany.name} · ${e.node.code}` }] : []));
  }
  return [];
}
