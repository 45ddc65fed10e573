/**
 * The organisation's console users (docs/console.md#party-users): an admin user makes another
 * person of the same organisation (the operator: of any organisation, naming its sign-in client).
 * The answer's initial password is shown this once; the person replaces it at the first sign-in.
 */
import { CreatePartyUserDocument, type CreatePartyUserMutation } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { t } from '../i18n.ts';
import { apiClient, type Session } from '../session.ts';
import { ErrorText, Section, type UserErrorView, UserErrors } from '../ui.tsx';

type Made = NonNullable<CreatePartyUserMutation['createPartyUser']['user']> & { initialPassword: string };

export function UsersPage({ session }: { session: Session }) {
  const operator = session.client.kind === 'OPERATOR';
  const [made, setMade] = useState<Made>();
  const [outcome, setOutcome] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setMade(undefined);
    setOutcome({});
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const field = (name: string) => String(data.get(name) ?? '').trim();
    try {
      const r = await apiClient().mutate(CreatePartyUserDocument, {
        // A party's admin makes users of its own sign-in client, the one this console signed in through.
        input: { signInClient: operator ? field('client') : session.client.clientId, username: field('username'), displayName: field('name'), admin: data.get('admin') === 'on' },
      });
      if (!r.ok) return setOutcome({ userErrors: r.userErrors });
      setMade({ ...r.data.createPartyUser.user!, initialPassword: r.data.createPartyUser.initialPassword! });
      form.reset();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return (
    <Section title={t('newUser')} id="users-title">
      <p>{t('newUserLead')}</p>
      <form class="card-form" onSubmit={submit}>
        {operator ? (
          <label>
            {t('signInClient')}
            <input id="user-client" name="client" required placeholder="oc_merchant_…" />
          </label>
        ) : null}
        <label>
          {t('username')}
          <input id="user-username" name="username" required minLength={3} maxLength={64} autoComplete="off" />
        </label>
        <label>
          {t('displayName')}
          <input id="user-name" name="name" required maxLength={100} />
        </label>
        <label class="check">
          <input id="user-admin" name="admin" type="checkbox" /> {t('userIsAdmin')}
        </label>
        <button type="submit" id="user-create">
          {t('create')}
        </button>
      </form>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {made ? (
        <div class="ok" role="status" id="user-made" data-username={made.username}>
          <p>{t('userMade', { username: made.username })}</p>
          <p>
            {t('initialPasswordOnce')} <code id="user-initial-password">{made.initialPassword}</code>
          </p>
        </div>
      ) : null}
    </Section>
  );
}
