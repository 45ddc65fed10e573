/**
 * The console's frame: sign-in when nobody is signed in, else the pages of the party's kind
 * (MERCHANT, BILLER, ISSUER, OPERATOR: the sign-in client's kind, which the API also enforces).
 */
import { ViewerDocument } from '@onecard/sdk/browser';
import { useEffect, useState } from 'preact/hooks';
import { lang, setLang, t, type WordKey } from './i18n.ts';
import { BillPage } from './pages/bill.tsx';
import { BillsPage } from './pages/bills.tsx';
import { BlacklistPage } from './pages/blacklist.tsx';
import { CardsPage } from './pages/cards.tsx';
import { CitySettlementPage } from './pages/city-settlement.tsx';
import { ClientsPage } from './pages/clients.tsx';
import { InterchangePage } from './pages/interchange.tsx';
import { LedgerPage } from './pages/ledger.tsx';
import { ReconciliationPage } from './pages/reconciliation.tsx';
import { PaymentPage, PaymentsPage } from './pages/payments.tsx';
import { PendingLoadsPage } from './pages/pending-loads.tsx';
import { PkiPage } from './pages/pki.tsx';
import { ReadersPage } from './pages/readers.tsx';
import { SettlementPage } from './pages/settlement.tsx';
import { StatementsPage } from './pages/statements.tsx';
import { TenantsPage } from './pages/tenants.tsx';
import { UsersPage } from './pages/users.tsx';
import { WebhooksPage } from './pages/webhooks.tsx';
import { match, navigate, route } from './router.ts';
import { apiClient, beginSignIn, type Session, session, type SignInClient, signInClients, signOut } from './session.ts';
import { useSignal } from './signal.ts';
import { ErrorText, useLoad } from './ui.tsx';

type Kind = SignInClient['kind'];

/** Each kind's pages: the first is its home. */
const NAV: Record<Kind, { path: string; label: WordKey }[]> = {
  MERCHANT: [
    { path: '/payments', label: 'payments' },
    { path: '/webhooks', label: 'webhooks' },
    { path: '/statements', label: 'statements' },
    { path: '/users', label: 'users' },
    { path: '/clients', label: 'oauthClients' },
  ],
  BILLER: [
    { path: '/bills', label: 'bills' },
    { path: '/reconciliation', label: 'reconciliation' },
    { path: '/statements', label: 'statements' },
    { path: '/users', label: 'users' },
    { path: '/clients', label: 'oauthClients' },
  ],
  ISSUER: [
    { path: '/readers', label: 'readers' },
    { path: '/cards', label: 'cards' },
    { path: '/pending-loads', label: 'pendingLoads' },
    { path: '/blacklist', label: 'blacklist' },
    { path: '/city-settlement', label: 'settlement' },
    { path: '/interchange', label: 'interchange' },
    { path: '/statements', label: 'statements' },
    { path: '/users', label: 'users' },
    { path: '/clients', label: 'oauthClients' },
  ],
  OPERATOR: [
    { path: '/settlement', label: 'settlement' },
    { path: '/interchange', label: 'interchange' },
    { path: '/ledger', label: 'ledger' },
    { path: '/tenants', label: 'tenants' },
    { path: '/pki', label: 'pki' },
    { path: '/users', label: 'users' },
    { path: '/clients', label: 'oauthClients' },
  ],
};

export function App({ signInError }: { signInError?: string }) {
  useSignal(lang);
  const s = useSignal(session);
  return (
    <>
      <header class="top">
        <strong class="brand">{t('appTitle')}</strong>
        {s ? <Nav kind={s.client.kind} /> : null}
        <span class="spacer" />
        <button type="button" class="link" onClick={() => setLang(lang.get() === 'zh' ? 'en' : 'zh')} lang={lang.get() === 'zh' ? 'en' : 'zh-CN'}>
          {t('language')}
        </button>
        {s ? (
          <>
            <span class="who" id="signed-in-as">
              {s.client.name} · {t(`kind_${s.client.kind}`)}
            </span>
            <button type="button" class="link" onClick={signOut}>
              {t('signOut')}
            </button>
          </>
        ) : null}
      </header>
      <main id="main">{s ? <Pages session={s} /> : <SignIn error={signInError} />}</main>
    </>
  );
}

function Nav({ kind }: { kind: Kind }) {
  const path = useSignal(route);
  return (
    <nav aria-label="console">
      {NAV[kind].map((n) => (
        <a key={n.path} href={`#${n.path}`} aria-current={path.startsWith(n.path) ? 'page' : undefined}>
          {t(n.label)}
        </a>
      ))}
    </nav>
  );
}

function SignIn({ error }: { error?: string }) {
  const clients = useLoad(signInClients, []);
  return (
    <section class="card sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">{t('signInTitle')}</h1>
      <p>{t('signInLead')}</p>
      {error ? (
        <p class="error" role="alert">
          {t('signInFailed', { reason: error })}
        </p>
      ) : null}
      <ErrorText error={clients.error} />
      {clients.data?.length === 0 ? <p>{t('noSignInClients')}</p> : null}
      <ul class="choices">
        {clients.data?.map((c) => (
          <li key={c.clientId}>
            <button type="button" data-kind={c.kind} onClick={() => beginSignIn(c)}>
              {t('signInAs', { name: c.name })} <small>{t(`kind_${c.kind}`)}</small>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Pages({ session: s }: { session: Session }) {
  const path = useSignal(route);
  const home = NAV[s.client.kind][0]!.path;
  // The tenant comes from the API (viewer), never from the page: it is what the token acts for.
  const [tenantId, setTenantId] = useState<string | null>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    apiClient()
      .execute(ViewerDocument)
      .then((d) => setTenantId(d.viewer?.tenantId ?? null), setError);
  }, [s.client.clientId]);
  useEffect(() => {
    if (!NAV[s.client.kind].some((n) => path.startsWith(n.path))) navigate(home);
  }, [path, home, s.client.kind]);
  if (error) return <ErrorText error={error} />;
  if (tenantId === undefined) return <p class="loading">{t('loading')}</p>;
  if (path.startsWith('/users')) return <UsersPage session={s} />;
  if (path.startsWith('/interchange') && (s.client.kind === 'OPERATOR' || s.client.kind === 'ISSUER')) return <InterchangePage />;
  if (path.startsWith('/clients')) return <ClientsPage operator={s.client.kind === 'OPERATOR'} />;
  if (path.startsWith('/statements') && s.client.kind !== 'OPERATOR') return <StatementsPage />;
  const payment = match('/payments/:id', path);
  const bill = match('/bills/:id', path);
  if (s.client.kind === 'MERCHANT') return payment ? <PaymentPage id={payment.id!} /> : path.startsWith('/webhooks') ? <WebhooksPage /> : <PaymentsPage />;
  if (s.client.kind === 'BILLER') return bill ? <BillPage id={bill.id!} /> : path.startsWith('/reconciliation') ? <ReconciliationPage /> : <BillsPage billerId={tenantId!} />;
  if (s.client.kind === 'ISSUER') return path.startsWith('/cards') ? <CardsPage /> : path.startsWith('/pending-loads') ? <PendingLoadsPage /> : path.startsWith('/blacklist') ? <BlacklistPage /> : path.startsWith('/city-settlement') ? <CitySettlementPage /> : <ReadersPage cardCompanyId={tenantId!} />;
  return path.startsWith('/ledger') ? <LedgerPage /> : path.startsWith('/pki') ? <PkiPage /> : path.startsWith('/tenants') ? <TenantsPage /> : <SettlementPage />;
}
